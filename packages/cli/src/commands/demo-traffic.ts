import { HourglassClient, EventGenerator, type ClientEvent } from '@hourglass/client';
import type { SchemaRegistry } from '@hourglass/schemas';

/**
 * The demo's traffic: a realistic mix of every event type at a steady rate, plus a few
 * bad events on purpose (wrong field type, unknown type) so the rejections are visible.
 */
export interface DemoTrafficOptions {
  registry: SchemaRegistry;
  url: string;
  apiKey: string;
  ratePerSec: number;
  say: (line: string) => void;
}

const TICK_MS = 200;
const REPORT_EVERY_MS = 15_000;

export function badEvents(): ClientEvent[] {
  return [
    { type: 'track_played', payload: { user_id: 'u-bad', track_id: 't', ms_played: 'a lot' } },
    { type: 'song_liked', payload: { user_id: 'u-bad' } },
  ];
}

export function runDemoTraffic(o: DemoTrafficOptions): () => Promise<void> {
  const client = new HourglassClient({
    url: o.url,
    apiKey: o.apiKey,
    batchSize: 500,
    concurrency: 4,
    deadlineMs: 120_000,
  });
  const generator = new EventGenerator(o.registry);
  const totals = { sent: 0, accepted: 0, rejected: 0, failed: 0 };
  let running = true;
  let lastReport = Date.now();
  let ticks = 0;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      const batch = generator.batch(Math.max(1, Math.round((o.ratePerSec * TICK_MS) / 1000)));
      if (++ticks % 25 === 0) batch.push(...badEvents());
      const report = await client.send(batch);
      totals.sent += report.sent;
      totals.accepted += report.accepted;
      totals.rejected += report.rejected;
      totals.failed += report.failed;
      if (Date.now() - lastReport >= REPORT_EVERY_MS) {
        lastReport = Date.now();
        o.say(
          `traffic: sent ${totals.sent}, accepted ${totals.accepted}, rejected ${totals.rejected} (bad on purpose), failed ${totals.failed}`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.max(0, TICK_MS - (Date.now() - started))));
    }
  })();
  return async () => {
    running = false;
    await loop.catch(() => undefined);
    client.close();
  };
}

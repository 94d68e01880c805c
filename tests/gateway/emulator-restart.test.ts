import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Defaults, ms, systemClock } from '@hourglass/common';
import { HourglassClient, EventGenerator, type SendReport } from '@hourglass/client';
import { freePort, startEmulator, type RunningEmulator } from '@hourglass/emulator';
import { PubSubPublisher, type Gateway } from '@hourglass/gateway';
import {
  TOKENS,
  TcpRelay,
  provision,
  pullEvents,
  registry,
  send,
  portOf,
  startTestGateway,
  uniquePrefix,
  type FoundEvent,
} from './support';

/**
 * Pub/Sub goes away mid-load and comes back empty (the emulator keeps nothing across a
 * restart). While it is gone the gateway answers `retry`, never `accepted`; the client
 * retries with the same ids and, after the restart, every retried event lands.
 *
 * What can be counted: the emulator loses its messages when it stops, so the events on
 * it are pulled just before the stop. To make "just before" exact, the gateway reaches
 * the emulator through a TCP relay: cutting the relay is the moment Pub/Sub becomes
 * unreachable for the gateway, after which the test drains the old emulator directly
 * (nothing the gateway could still call `accepted` can arrive later), then stops it.
 *
 *   accepted ⊆ (pulled before the stop) ∪ (pulled after the restart)   → lost = 0
 */
jest.setTimeout(180_000);

describe('Pub/Sub stops and restarts mid-load', () => {
  let emulator: RunningEmulator | undefined;
  let relay: TcpRelay | undefined;
  let gateway: Gateway | undefined;
  let client: HourglassClient | undefined;

  afterAll(async () => {
    client?.close();
    await gateway?.close();
    await relay?.cut();
    await emulator?.stop();
  });

  test('answers say retry while it is gone, and every client retry lands after the restart', async () => {
    const prefix = uniquePrefix('restart');
    const emulatorPort = await freePort();
    const logFile = join(tmpdir(), `hourglass-gateway-restart-${emulatorPort}.log`);
    emulator = await startEmulator({ port: emulatorPort, heapMb: 512, logFile });
    relay = new TcpRelay(await freePort(), emulatorPort);
    await relay.open();
    const subsBefore = await provision(prefix, { apiEndpoint: emulator.host });

    const publishTimeout = ms(2000);
    gateway = await startTestGateway({
      prefix,
      clock: systemClock,
      config: { publishTimeout },
      publisher: new PubSubPublisher({
        projectId: Defaults.projectId,
        prefix,
        publishTimeout,
        batchMaxMessages: Defaults.pubsubBatchMaxMessages,
        batchMaxDelay: Defaults.pubsubBatchMaxDelay,
        apiEndpoint: relay.host,
      }),
    });
    const port = await portOf(gateway);
    client = new HourglassClient({
      url: `http://127.0.0.1:${port}`,
      apiKey: TOKENS.all,
      batchSize: 50,
      concurrency: 4,
      deadlineMs: 90_000,
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
    });

    // Four producers send batches back to back until enough batches went through after the restart.
    const generator = new EventGenerator(registry, { seed: 7 });
    const reports: SendReport[] = [];
    let phase: 'before' | 'outage' | 'after' = 'before';
    let batchesAfterRestart = 0;
    let outage: Promise<FoundEvent[]> | undefined;
    const restart = async (): Promise<FoundEvent[]> => {
      await relay!.cut();
      const before = await pullEvents(subsBefore, emulator!.host);
      await emulator!.stop();
      emulator = await startEmulator({ port: emulatorPort, heapMb: 512, logFile });
      subsAfter = await provision(prefix, { apiEndpoint: emulator.host });
      await relay!.open();
      phase = 'after';
      return before;
    };
    let subsAfter = new Map<string, string>();
    const producer = async () => {
      while (batchesAfterRestart < 12) {
        const startedIn = phase;
        const report = await client!.send(generator.batch(50));
        reports.push(report);
        if (startedIn === 'after') batchesAfterRestart++;
        if (phase === 'before' && reports.length >= 12) {
          phase = 'outage';
          outage = restart();
        }
      }
    };
    await Promise.all([producer(), producer(), producer(), producer()]);
    const before = await outage!;
    const after = await pullEvents(subsAfter, emulator.host);

    const metricsText = (await send(gateway, { method: 'GET', url: '/metrics' })).body;
    const retryAnswers = metricsText
      .split('\n')
      .filter((l) => l.startsWith('hourglass_gateway_events_total{') && l.includes('result="retry"'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    const outcomes = reports.flatMap((r) => r.outcomes);
    const accepted = outcomes.filter((o) => o.status === 'accepted');
    const retried = outcomes.filter((o) => o.attempts > 1);
    const counts = new Map<string, number>();
    for (const f of [...before, ...after]) counts.set(f.id, (counts.get(f.id) ?? 0) + 1);
    const lost = accepted.filter((o) => !counts.has(o.id)).length;
    const duplicatedWithoutRetry = accepted.filter((o) => (counts.get(o.id) ?? 0) > 1 && o.attempts === 1).length;
    const retriedLanded = retried.filter((o) => counts.has(o.id)).length;
    const summary = {
      sent: outcomes.length,
      accepted: accepted.length,
      rejected: outcomes.filter((o) => o.status === 'rejected').length,
      failed: outcomes.filter((o) => o.status === 'failed').length,
      retried: retried.length,
      retryAnswers,
      retriedLanded,
      foundBefore: before.length,
      foundAfter: after.length,
      lost,
      duplicatedWithoutRetry,
    };
    process.stdout.write(`emulator restart: ${JSON.stringify(summary)}\n`);

    expect(summary.sent).toBeGreaterThanOrEqual(50 * 24);
    expect(summary.failed).toBe(0);
    expect(summary.rejected).toBe(0);
    expect(summary.accepted).toBe(summary.sent);
    // The outage was real: events were answered retry (or their request failed) and re-sent.
    expect(summary.retried).toBeGreaterThan(0);
    expect(summary.retryAnswers).toBeGreaterThan(0);
    expect(summary.retriedLanded).toBe(summary.retried);
    // Events accepted before the cut are on the old emulator, all others on the new one.
    expect(summary.foundBefore).toBeGreaterThan(0);
    expect(summary.foundAfter).toBeGreaterThan(0);
    expect(summary.lost).toBe(0);
    // A duplicate can only come from a retry whose first publish landed after all.
    expect(summary.duplicatedWithoutRetry).toBe(0);
  });
});

import { ManualClock, silentLogger } from '@hourglass/common';
import { consumerConfig, startConsumer, type RunningConsumer } from '@hourglass/consumer';
import type { Gateway } from '@hourglass/gateway';
import { LocalDirectoryStore } from '@hourglass/storage';
import type { Page } from 'playwright-core';
import { FAST_CONSUMER, MINUTE, auditType, countAgainst, driveUntil, tempDir } from '../consumer/support';
import { T0, provision, pullEvents, startTestGateway, uniquePrefix, urlOf } from '../gateway/support';
import { launchBrowser, startPageServer, type Browser } from './browser-support';
import { PUBLISHABLE, keysWithPublishable } from './support';

/**
 * The browser client in a real browser (Debian's chromium), on a page whose origin differs
 * from the gateway's, against a real gateway on the Pub/Sub emulator and the consumer
 * in-process: a normal send, a tab closed mid-batch (delivered by its beacon), a network cut
 * and restored (the queue survives, across a reload too). At the end the one-minute window
 * is closed and read back: every id the pages generated is in it exactly once.
 */
jest.setTimeout(90_000);

const TYPE = 'page_viewed';
const START = T0 + 10_000; // gateway_ts of every event: one window, [T0, T0 + 1 min)

interface PageClient {
  track(type: string, payload: Record<string, unknown>): string;
  stats: { accepted: number; rejected: number; requests: number; beaconed: number };
}
declare const hg: PageClient;

describe('the browser client against a real gateway and consumer', () => {
  const prefix = uniquePrefix('web');
  const clock = new ManualClock(START);
  const generated: string[] = [];
  let subs: Map<string, string>;
  let browser: Browser;
  let pages: Awaited<ReturnType<typeof startPageServer>>;
  let gateway: Gateway;
  let consumer: RunningConsumer;
  const store = new LocalDirectoryStore(tempDir('web'));

  beforeAll(async () => {
    subs = await provision(prefix, { types: [TYPE] });
    [browser, pages] = await Promise.all([launchBrowser(), startPageServer()]);
    gateway = await startTestGateway({ prefix, clock, apiKeys: keysWithPublishable([pages.origin]) });
    const config = consumerConfig({
      prefix,
      pull: 'unary',
      eventTypes: [TYPE],
      replicaId: 'web',
      host: '127.0.0.1',
      port: 0,
      ...FAST_CONSUMER,
    });
    consumer = await startConsumer(config, { clock, store, logger: silentLogger, autoTick: false, http: false });
  });
  afterAll(async () => {
    await consumer?.stop();
    await browser?.close();
    await pages?.close();
    await gateway?.close();
  });

  async function open(storage: string, batch: number, intervalMs: number): Promise<Page> {
    const page = await browser.context.newPage();
    const q = new URLSearchParams({
      gateway: await urlOf(gateway),
      key: PUBLISHABLE.token,
      storage,
      batch: String(batch),
      interval: String(intervalMs),
    });
    await page.goto(`${pages.origin}/?${q}`);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    return page;
  }

  async function track(page: Page, n: number): Promise<string[]> {
    const ids = await page.evaluate(
      (n) =>
        Array.from({ length: n }, (_, i) =>
          hg.track('page_viewed', { user_id: null, page: `p${i}`, referrer: null, duration_ms: i, platform: 'WEB' }),
        ),
      n,
    );
    generated.push(...ids);
    return ids;
  }

  /** Reads the counting subscription until every id is on the topic (real delivery, bounded). */
  const onTopic = new Set<string>();
  async function expectOnTopic(ids: readonly string[]): Promise<void> {
    await driveUntil(
      () => ids.every((id) => onTopic.has(id)),
      async () => {
        for (const found of await pullEvents(subs)) onTopic.add(found.id);
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  }

  test('a page sends its events in batches by count and time', async () => {
    const page = await open('normal', 5, 300);
    const ids = await track(page, 12); // two full batches at once, the rest after 300 ms
    await page.waitForFunction(() => hg.stats.accepted === 12, undefined, { timeout: 20_000 });
    const stats = await page.evaluate(() => hg.stats);
    expect(stats).toMatchObject({ accepted: 12, rejected: 0 });
    expect(stats.requests).toBeGreaterThanOrEqual(3); // 5 + 5 at once, 2 by the timer; more only after a retry
    await expectOnTopic(ids);
    await page.close();
  });

  test('a tab closed mid-batch still delivers through its beacon', async () => {
    const page = await open('closed', 5, 60_000);
    const ids = await track(page, 7); // five go by fetch now; two wait for a timer that never fires
    await page.close({ runBeforeUnload: true });
    await expectOnTopic(ids);
  });

  test('a network cut and restored delivers the queue, also across a reload', async () => {
    const page = await open('offline', 5, 300);
    await browser.context.setOffline(true);
    const cut = await track(page, 8);
    await page.waitForFunction(() => hg.stats.requests >= 2, undefined, { timeout: 20_000 });
    expect(await page.evaluate(() => hg.stats.accepted)).toBe(0);
    await browser.context.setOffline(false);
    await page.waitForFunction(() => hg.stats.accepted === 8, undefined, { timeout: 20_000 });
    await expectOnTopic(cut);

    // Queued while offline, the page closed while still offline: the next page load sends them.
    await browser.context.setOffline(true);
    const queued = await track(page, 4);
    // close({ runBeforeUnload }) does not wait for the page to go: setOffline on a page still
    // closing failed once in CI ("Target page, context or browser has been closed")
    const gone = page.waitForEvent('close');
    await page.close({ runBeforeUnload: true });
    await gone;
    await browser.context.setOffline(false);
    const reloaded = await open('offline', 5, 300);
    await reloaded.waitForFunction(() => hg.stats.accepted === 4, undefined, { timeout: 20_000 });
    await expectOnTopic(queued);
    await reloaded.close();
  });

  test('every generated id is in the closed window exactly once', async () => {
    expect(generated.length).toBe(12 + 7 + 8 + 4);
    const status = () => consumer.status().find((s) => s.eventType === TYPE)!;
    // Everything the gateway accepted reaches the consumer (copies from beacons and re-sends too).
    await driveUntil(
      () => status().stats.events >= generated.length && status().heldEvents === 0,
      async () => {
        clock.advance(100);
        await consumer.tick();
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    ).catch((e) => {
      throw new Error(`${String(e)}: ${JSON.stringify(status())}`);
    });
    await driveUntil(
      () => consumer.closedWindows().some((c) => c.eventType === TYPE && c.window.start === T0),
      async () => {
        clock.advance(1000);
        await consumer.tick();
      },
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    const counts = countAgainst(
      audit,
      generated.map((id) => ({ id, ts: START })),
    );
    expect(counts).toEqual({ expected: 31, present: 31, lost: 0, duplicated: 0, unexpected: 0 });
    expect(audit.late).toBe(0);
  });
});

import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { PubSub } from '@google-cloud/pubsub';
import { provisionTopology } from '@hourglass/cli';
import { Defaults, ManualClock, seconds, silentLogger } from '@hourglass/common';
import { consumerConfig, startConsumer, type RunningConsumer } from '@hourglass/consumer';
import { StatusCollector } from '@hourglass/consumer/status/collector';
import { registerStatusRoutes } from '@hourglass/consumer/status/routes';
import { encodeRecords } from '@hourglass/schemas';
import { LocalDirectoryStore } from '@hourglass/storage';
import { FAST_CONSUMER, MINUTE, T0, driveUntil, makeRecord, publishRaw, tempDir } from '../consumer/support';
import { registry, uniquePrefix } from '../gateway/support';
import { GRACE, win, writeType } from '../unit/consumer/status-store';
import { launchBrowser, type Browser } from './browser-support';

/**
 * The status page in a real browser (Debian's chromium): what a person sees on a running consumer
 * as a window closes (its cell turns closed, its link opens the manifest, a dead-lettered message
 * shows its reason), and a page of 100 types: summary first, problems first and open, the others
 * one line each until opened, and the filter.
 */
jest.setTimeout(120_000);

const TYPE = 'page_viewed';

describe('status page in chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test('a window closes: its cell turns closed, links to its manifest; a dead letter shows its reason', async () => {
    const prefix = uniquePrefix('status');
    await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE], ackDeadline: seconds(10) });
    const clock = new ManualClock(T0 + 10_000);
    const store = new LocalDirectoryStore(tempDir('status-web'));
    const config = consumerConfig({
      prefix,
      pull: 'unary',
      eventTypes: [TYPE],
      replicaId: 'status',
      host: '127.0.0.1',
      port: 0,
      ...FAST_CONSUMER,
    });
    const consumer: RunningConsumer = await startConsumer(config, {
      clock,
      store,
      logger: silentLogger,
      autoTick: false,
    });
    const pubsub = new PubSub({ projectId: Defaults.projectId });
    const page = await browser.context.newPage();
    try {
      const v = registry.get(TYPE).latest;
      const records = Array.from({ length: 50 }, (_, i) => makeRecord(v, randomUUID(), T0 + 10_000 + i, i));
      const good = encodeRecords(v, records, 'null');
      await publishRaw(pubsub, prefix, TYPE, good.data, good.attributes);
      // the same attributes on bytes that are no Avro: dead-lettered, in the window of its gateway_ts
      await publishRaw(pubsub, prefix, TYPE, Buffer.from('not avro at all'), good.attributes);
      const stats = () => consumer.status()[0]!;
      await driveUntil(
        () => stats().stats.acked >= 2 && stats().heldEvents === 0 && stats().stats.deadLettered === 1,
        async () => {
          clock.advance(100);
          await consumer.tick();
        },
        { timeoutMs: 30_000, intervalMs: 50 },
      ).catch((e) => {
        throw new Error(`${String(e)}: ${JSON.stringify(stats())}`);
      });
      const [deadLetter] = await store.list(`_deadletter/${TYPE}/`);
      expect(deadLetter!.name).toMatch(/^_deadletter\/page_viewed\/dt=2026-01-01\/.+\.json$/);
      const reason = (JSON.parse((await store.get(deadLetter!.name))!.toString()) as { reason: { code: string } })
        .reason;

      const statusUrl = `http://127.0.0.1:${consumer.port}/status`;
      await page.goto(statusUrl);
      const cell = page.locator(`details[data-type="${TYPE}"] .grid > [title^="00:00 "]`);
      await expect(cell.getAttribute('title')).resolves.toMatch(/^00:00 open/);
      expect(await cell.evaluate((e) => e.tagName)).toBe('SPAN'); // no manifest, no link
      // the dead letter's reason is on the page, and its count in the type's line
      await expect(page.getByText(reason.code, { exact: true }).isVisible()).resolves.toBe(true);
      expect(await page.locator(`details[data-type="${TYPE}"] summary`).innerText()).toContain('1 dead');

      await driveUntil(
        () => consumer.closedWindows().some((c) => c.window.start === T0),
        async () => {
          clock.advance(1000);
          await consumer.tick();
        },
        { timeoutMs: 30_000, intervalMs: 20 },
      );
      await page.reload();
      const title = (await cell.getAttribute('title'))!;
      expect(title).toMatch(/^00:00 closed · 50 records/);
      expect(title).toContain('1 dead letters');
      expect(await cell.evaluate((e) => [e.tagName, e.className, e.textContent])).toEqual(['A', 'c', '!']);
      expect(await cell.evaluate((e) => getComputedStyle(e).backgroundColor)).toBe('rgb(42, 138, 62)');

      await cell.click();
      await page.waitForURL(/\/status\/manifest\/page_viewed\/\d+$/);
      const manifest = JSON.parse(await page.locator('body').innerText()) as {
        eventType: string;
        window: { startMs: number };
        counts: { records: number };
      };
      expect(manifest).toMatchObject({ eventType: TYPE, window: { startMs: T0 }, counts: { records: 50 } });
      // a browser on the page does not hold up the consumer's stop (it waited 65 s for idle keep-alives)
      const stopping = Date.now();
      await consumer.stop();
      expect(Date.now() - stopping).toBeLessThan(10_000);
    } finally {
      await page.close();
      await consumer.stop();
      await pubsub.close();
    }
  });

  test('100 types: summary, problems first and open, the rest collapsed until opened, the filter', async () => {
    const store = new LocalDirectoryStore(tempDir('status-100'));
    const types = Array.from({ length: 100 }, (_, i) => `type_${String(i).padStart(3, '0')}`);
    // type_042 has no replica; type_077's replica stopped renewing (stale)
    const clock = new ManualClock(win(10).end + GRACE + 5_000);
    // one after another: each type is added to the replicas' one lease (read, then rewritten)
    for (const t of types) await writeType(store, t, t === 'type_042' ? 0 : t === 'type_077' ? 2 : 1, clock.now());
    const collector = new StatusCollector({
      store,
      clock,
      eventTypes: types,
      windowMs: MINUTE,
      graceFor: () => GRACE,
      replicaId: 'status-test',
      ttlMs: 5_000,
    });
    const app: FastifyInstance = Fastify({ forceCloseConnections: true });
    registerStatusRoutes(app, collector);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const page = await browser.context.newPage();
    try {
      const address = app.server.address() as { port: number };
      const response = await page.goto(`http://127.0.0.1:${address.port}/status`);
      const bytes = (await response!.body()).length;
      process.stdout.write(`status page of 100 types: ${bytes} bytes as the browser received it\n`);
      expect(bytes).toBeLessThan(200_000);
      expect(await page.locator('#summary').innerText()).toMatch(/^100 types · 2 with problems · /);
      const sections = page.locator('details.type');
      expect(await sections.count()).toBe(100);
      expect(
        await sections.evaluateAll((ds) => ds.slice(0, 3).map((d) => [d.dataset.type, (d as HTMLDetailsElement).open])),
      ).toEqual([
        ['type_042', true],
        ['type_077', true],
        ['type_000', false],
      ]);
      await expect(page.getByText('no live replica: the watermark cannot move').first().isVisible()).resolves.toBe(
        true,
      );
      // a healthy type is one line; a click opens its leases
      const healthy = page.locator('details[data-type="type_050"]');
      await expect(healthy.locator('.body').isVisible()).resolves.toBe(false);
      await healthy.locator('summary .name').click();
      await expect(healthy.locator('td', { hasText: 'r0.inc' }).isVisible()).resolves.toBe(true);
      // the filter: by name, then problems only
      await page.fill('input[name="q"]', 'type_099');
      await page.click('button');
      await page.waitForURL(/q=type_099/);
      expect(await page.locator('#shown').innerText()).toBe('showing 1 of 100 types');
      await expect(page.locator('details[data-type="type_099"] .body').isVisible()).resolves.toBe(true);
      await page.fill('input[name="q"]', '');
      await page.check('input[name="problems"]');
      await page.click('button');
      await page.waitForURL(/problems=1/);
      expect(await page.locator('#shown').innerText()).toBe('showing 2 of 100 types');
    } finally {
      await page.close();
      await app.close();
    }
  });
});

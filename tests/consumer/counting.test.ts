import { provisionTopology } from '@hourglass/cli';
import { Defaults, ManualClock, seconds, silentLogger } from '@hourglass/common';
import { SchemaRegistry, encodeRecords } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import { type RunningConsumer, consumerConfig, startConsumer } from '@hourglass/consumer';
import {
  FAST_CONSUMER,
  MINUTE,
  T0,
  auditType,
  countAgainst,
  driveUntil,
  generateBundles,
  makeRecord,
  newPubSub,
  publishBundles,
  publishRaw,
  tempDir,
  uniquePrefix,
  type PublishedEvent,
  publishedOf,
} from './support';
import { replicaLeaseOf } from './process-support';

/**
 * Jepsen-style count on the real emulator and the real filesystem: bundles of various sizes,
 * duplicate event ids, out-of-order gateway_ts and two writer versions are published straight
 * to the topics; one consumer (ManualClock driving watermarks, Pub/Sub delivery real) stages
 * and closes one-minute windows; then every closed window is read back. Every distinct event
 * must be in exactly one closed window: lost = 0, duplicated = 0, unexpected = 0.
 */
jest.setTimeout(120_000);

const registry = SchemaRegistry.load('schemas');
const TYPES = ['track_played', 'page_viewed'];
const pubsub = newPubSub();
afterAll(() => pubsub.close());

function config(prefix: string, pull: 'unary' | 'streaming') {
  return consumerConfig({
    prefix,
    pull,
    eventTypes: TYPES,
    replicaId: 'solo',
    host: '127.0.0.1',
    port: 0,
    ...FAST_CONSUMER,
  });
}

function acked(consumer: RunningConsumer, type: string): number {
  return consumer.status().find((s) => s.eventType === type)!.stats.acked;
}

function closedThrough(consumer: RunningConsumer, type: string): number {
  const closed = consumer.closedWindows().filter((c) => c.eventType === type);
  return closed.length === 0 ? -Infinity : Math.max(...closed.map((c) => c.window.start));
}

// Both pull modes: unary (the default, and the one every fault test runs) and streaming.
describe.each(['unary', 'streaming'] as const)('%s pull', (pull) => {
  const prefix = uniquePrefix();
  beforeAll(async () => {
    await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: TYPES, ackDeadline: seconds(10) });
  });

  test('every event exactly once across closed windows: on time, late, duplicated, dead-lettered', async () => {
    const store: ObjectStore = new LocalDirectoryStore(tempDir('count'));
    const clock = new ManualClock(T0 + 5 * MINUTE + 30_000);
    const published: Record<string, PublishedEvent[]> = { track_played: [], page_viewed: [] };
    const messages: Record<string, number> = { track_played: 0, page_viewed: 0 };

    // phase 1: five windows of history, shuffled, 5% duplicates, bundles of 1..150
    const tp = generateBundles(registry, 'track_played', {
      events: 6000,
      start: T0,
      spanMs: 5 * MINUTE,
      maxBundle: 150,
      dupRate: 0.05,
      seed: 1,
    });
    const pv = generateBundles(registry, 'page_viewed', {
      events: 400,
      start: T0,
      spanMs: 5 * MINUTE,
      maxBundle: 20,
      dupRate: 0.1,
      seed: 2,
    });
    messages.track_played! += await publishBundles(pubsub, prefix, 'track_played', tp.bundles);
    messages.page_viewed! += await publishBundles(pubsub, prefix, 'page_viewed', pv.bundles);
    published.track_played!.push(...tp.distinct);
    published.page_viewed!.push(...pv.distinct);
    // two undecodable messages: dead-lettered and acked, never in a window
    const good = encodeRecords(registry.get('track_played').latest, [
      makeRecord(registry.get('track_played').latest, 'x', T0),
    ]);
    await publishRaw(pubsub, prefix, 'track_played', Buffer.from('garbage'), good.attributes);
    await publishRaw(pubsub, prefix, 'track_played', good.data, { ...good.attributes, schema_fingerprint: 'bad' });
    messages.track_played! += 2;

    const consumer = await startConsumer(config(prefix, pull), { clock, store, logger: silentLogger, autoTick: false });
    const step = async (advance: number): Promise<void> => {
      clock.advance(advance);
      await consumer.tick();
    };
    try {
      await driveUntil(
        () =>
          TYPES.every((t) => acked(consumer, t) >= messages[t]!) && consumer.status().every((s) => s.heldEvents === 0),
        () => step(100),
      );
      // idle: the watermark follows the clock and windows 0..4 close
      await driveUntil(
        () => TYPES.every((t) => closedThrough(consumer, t) >= T0 + 4 * MINUTE),
        () => step(500),
      );

      // phase 2: late events for closed windows, late copies of closed events, and on-time events
      const v2 = registry.get('track_played').latest;
      const lateNew = Array.from({ length: 100 }, (_, i) =>
        makeRecord(v2, crypto.randomUUID(), T0 + MINUTE + i * 1000, i),
      );
      const lateCopies = tp.distinct.slice(0, 100).map((e, i) => makeRecord(v2, e.id, e.ts, i));
      const onTime = Array.from({ length: 200 }, (_, i) =>
        makeRecord(v2, crypto.randomUUID(), T0 + 5 * MINUTE + i * 100, i),
      );
      const phase2 = [...lateNew, ...lateCopies, ...onTime].sort(() => 0); // keep a stable order
      const bundles = [];
      for (let i = 0; i < phase2.length; i += 40) bundles.push({ writer: v2, records: phase2.slice(i, i + 40) });
      messages.track_played! += await publishBundles(pubsub, prefix, 'track_played', bundles);
      published.track_played!.push(...publishedOf([...lateNew, ...onTime]));
      await driveUntil(
        () =>
          acked(consumer, 'track_played') >= messages.track_played! &&
          consumer.status().every((s) => s.heldEvents === 0),
        () => step(100),
      );
      // the health endpoints answer while running
      const base = `http://127.0.0.1:${consumer.port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const metricsText = await (await fetch(`${base}/metrics`)).text();
      expect(metricsText).toMatch(/hourglass_consumer_events_staged_total\{[^}]*event_type="track_played"/);
      expect(metricsText).toMatch(/hourglass_consumer_watermark_lag_seconds\{event_type="page_viewed"/);

      clock.set(T0 + 8 * MINUTE);
      await driveUntil(
        () => TYPES.every((t) => closedThrough(consumer, t) >= T0 + 6 * MINUTE),
        () => step(500),
      );

      for (const type of TYPES) {
        const audit = await auditType(store, type, MINUTE);
        expect(audit.problems).toEqual([]);
        const count = countAgainst(audit, published[type]!);
        expect(count).toEqual({
          expected: published[type]!.length,
          present: published[type]!.length,
          lost: 0,
          duplicated: 0,
          unexpected: 0,
        });
        // windows 0..6 all closed, empty ones too
        expect(audit.windows.map((w) => w.manifest.window.startMs)).toEqual(
          Array.from({ length: 7 }, (_, i) => T0 + i * MINUTE),
        );
      }
      const tpAudit = await auditType(store, 'track_played', MINUTE);
      const lateIds = new Set(lateNew.map((r) => r.meta.event_id));
      const lateRecords = tpAudit.windows.flatMap((w) => w.records.filter((r) => r.late));
      expect(lateRecords.filter((r) => lateIds.has(r.id))).toHaveLength(100);
      const closedDuplicates = tpAudit.windows.reduce((n, w) => n + w.manifest.counts.duplicatesOfClosedWindows, 0);
      expect(closedDuplicates).toBeGreaterThanOrEqual(100);
      expect(await store.list('_deadletter/track_played/')).toHaveLength(2);
      expect(await store.list('_staging/')).toEqual([]);
    } finally {
      await consumer.stop();
    }
    // after a graceful stop the lease says the replica is gone (ttl 0) and serves no type
    const lease = (await replicaLeaseOf(store, 'solo'))!;
    expect(lease.ttlMs).toBe(0);
    expect(Object.keys(lease.watermarks)).toEqual([]);
  });
});

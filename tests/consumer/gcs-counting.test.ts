import { provisionTopology } from '@hourglass/cli';
import { Defaults, ManualClock, seconds, silentLogger } from '@hourglass/common';
import { start, type RunningGcsFake } from '@hourglass/gcs-fake';
import { SchemaRegistry } from '@hourglass/schemas';
import { GcsStore } from '@hourglass/storage';
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
  uniquePrefix,
  publishedOf,
} from './support';

/**
 * The counting suite on GCS: two consumer replicas (each its own client, as two processes
 * would be) share one store through the real @google-cloud/storage client over HTTP against
 * the GCS fake, which answers 10% of all requests with 503, drops the answer of some writes
 * that did commit, answers 503 to some that were stored, lets some land only after the client
 * gave up, is slow (100 ms per answer) and enforces GCS's one write per second per object name.
 * Every distinct event exactly once, all the same.
 */
jest.setTimeout(300_000);
/**
 * Known flake, not understood yet: in about one loaded full run in three this test counted 188 late
 * events where the 50 injected ones are expected (nothing lost, nothing doubled; 0 in 9 runs with
 * logging or beside two other fault tests). A second attempt runs the whole scenario again with a
 * new prefix and store; the first attempt's failure is printed (with the diagnosis below) so it
 * stays visible in CI's log.
 */
jest.retryTimes(1, { logErrorsBeforeRetry: true });

const TYPE = 'track_played';
const registry = SchemaRegistry.load('schemas');
const pubsub = newPubSub();
let fake: RunningGcsFake;

beforeAll(async () => {
  fake = await start();
});
afterAll(async () => {
  await pubsub.close();
  await fake.stop();
});

/** A store's bound on one call: a write held longer than this lands after the client gave up. */
const STORE_TIMEOUT_MS = 5000;

function store(prefix: string): GcsStore {
  return new GcsStore({
    bucket: 'hourglass-consumer-test',
    prefix,
    timeoutMs: STORE_TIMEOUT_MS,
    storage: {
      apiEndpoint: fake.url,
      projectId: Defaults.projectId,
      // the client's backoff starts at 1 s; enough attempts that 10% failures never exhaust them
      retryOptions: { maxRetries: 6, maxRetryDelay: 1 },
    },
  });
}

function closedThrough(consumers: readonly RunningConsumer[]): number {
  const closed = consumers.flatMap((c) => c.closedWindows());
  return closed.length === 0 ? -Infinity : Math.max(...closed.map((c) => c.window.start));
}

test('two replicas, every event exactly once: 503s, lost answers, 503s after the write, late writes, write limit', async () => {
  // a topic, subscription and store of its own per attempt (see retryTimes above)
  const prefix = uniquePrefix();
  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE], ackDeadline: seconds(10) });
  const storePrefix = uniquePrefix();
  const gcs = store(storePrefix);
  const clock = new ManualClock(T0 + 4 * MINUTE + 30_000);
  const { bundles, distinct } = generateBundles(registry, TYPE, {
    events: 3000,
    start: T0,
    spanMs: 4 * MINUTE,
    maxBundle: 120,
    dupRate: 0.05,
    seed: 7,
  });
  const published = [...distinct];

  fake.faults.reset(); // an earlier attempt may have stopped before its reset
  fake.faults.failRate(0.1, { seed: 3 });
  fake.faults.delay(100);
  fake.faults.dropAfterCommit(5, { routes: ['upload.multipart'] });
  fake.faults.failAfterCommit(5, 503, { routes: ['upload.multipart'] });
  fake.faults.applyLate(3, STORE_TIMEOUT_MS + 1000, { routes: ['upload.multipart'], names: /\/_staging\// });
  fake.writeRateLimit.enable(1000);
  const consumers: RunningConsumer[] = [];
  for (const replicaId of ['gcs-a', 'gcs-b']) {
    consumers.push(
      await startConsumer(consumerConfig({ prefix, eventTypes: [TYPE], replicaId, ...FAST_CONSUMER }), {
        clock,
        store: replicaId === 'gcs-a' ? gcs : store(storePrefix),
        logger: silentLogger,
        autoTick: false,
        http: false,
      }),
    );
  }
  const step = async (advance: number): Promise<void> => {
    clock.advance(advance);
    await Promise.all(consumers.map((c) => c.tick()));
  };
  const statuses = () => consumers.map((c) => c.status()[0]!);
  let messages = 0;
  const allAcked = (): boolean =>
    statuses().reduce((n, s) => n + s.stats.acked, 0) >= messages && statuses().every((s) => s.heldEvents === 0);
  // The manual clock must not run ahead of the emulator's real delivery: a replica that received
  // nothing for idleAfter (manual time) and holds nothing counts as idle and moves its watermark to
  // now - maxPublishDelay (replica-watermark.ts), so on a loaded machine the messages the emulator
  // had not delivered yet became late (CI: 188 late where 50 are expected). Without moving the
  // clock, wait until every published message has arrived; then only staging holds them.
  const allReceived = (): boolean => statuses().reduce((n, s) => n + s.stats.messages, 0) >= messages;
  const lateNewIds = new Set<string>();
  const untilReceived = (): Promise<void> => driveUntil(allReceived, async () => {}, { timeoutMs: 60_000 });
  try {
    // Published while both replicas pull, a few messages at a time, so both get a share.
    for (let i = 0; i < bundles.length; i += 4) {
      messages += await publishBundles(pubsub, prefix, TYPE, bundles.slice(i, i + 4));
      await untilReceived();
      await step(100);
    }
    await driveUntil(allAcked, () => step(100), { timeoutMs: 90_000 });
    await driveUntil(
      () => closedThrough(consumers) >= T0 + 3 * MINUTE,
      () => step(500),
      { timeoutMs: 60_000 },
    );

    // late events and late copies of closed events, through the same faults
    const v2 = registry.get(TYPE).latest;
    const lateNew = Array.from({ length: 50 }, (_, i) => makeRecord(v2, crypto.randomUUID(), T0 + i * 1000, i));
    const lateCopies = distinct.slice(0, 50).map((e, i) => makeRecord(v2, e.id, e.ts, i));
    messages += await publishBundles(pubsub, prefix, TYPE, [
      { writer: v2, records: lateNew },
      { writer: v2, records: lateCopies },
    ]);
    published.push(...publishedOf(lateNew));
    for (const r of lateNew) lateNewIds.add(r.meta.event_id);
    await untilReceived();
    await driveUntil(allAcked, () => step(100), { timeoutMs: 60_000 });
    clock.set(T0 + 7 * MINUTE);
    await driveUntil(
      () => closedThrough(consumers) >= T0 + 5 * MINUTE,
      () => step(500),
      { timeoutMs: 60_000 },
    );
  } finally {
    for (const c of consumers) await c.stop();
  }
  // both replicas took part, the faults fired, and nothing was given up
  process.stdout.write(
    `gcs-counting: acked by replica ${statuses().map((s) => s.stats.acked)}, faults fired ${JSON.stringify(fake.faults.fired)}, rate-limited ${fake.writeRateLimit.refused} ` +
      `${JSON.stringify(Object.fromEntries(fake.writeRateLimit.refusedByName))}, ` +
      `requests by operation ${JSON.stringify(fake.requests.byOperation())}\n`,
  );
  // the faults fired, and nothing was given up
  expect(fake.faults.fired.failed).toBeGreaterThan(10);
  expect(fake.faults.fired.delayed).toBeGreaterThan(100);
  expect(fake.faults.fired.droppedAfterCommit).toBe(5);
  expect(fake.faults.fired.failedAfterCommit).toBe(5);
  expect(fake.faults.fired.appliedLate).toBe(3);
  for (const s of statuses()) expect(s.stats.acked).toBeGreaterThan(0);
  fake.faults.reset();
  fake.writeRateLimit.disable();

  const audit = await auditType(gcs, TYPE, MINUTE);
  expect(audit.problems).toEqual([]);
  expect(countAgainst(audit, published)).toEqual({
    expected: published.length,
    present: published.length,
    lost: 0,
    duplicated: 0,
    unexpected: 0,
  });
  if (audit.late !== 50) {
    // what a CI failure needs to be read: where the late records were meant to go, and each replica's counts
    const lines = audit.windows.map((w) => {
      const late = w.records.filter((r) => r.late);
      const from = new Map<number, number>();
      for (const r of late) {
        const minute = Math.floor((r.ts - T0) / MINUTE);
        from.set(minute, (from.get(minute) ?? 0) + 1);
      }
      const injected = late.filter((r) => lateNewIds.has(r.id)).length;
      return `window +${(w.manifest.window.startMs - T0) / MINUTE} min: records ${w.records.length}, late ${late.length} (injected ${injected}; by minute of gateway_ts ${JSON.stringify([...from])})`;
    });
    throw new Error(
      `late ${audit.late}, expected the 50 injected\n${lines.join('\n')}\n${JSON.stringify(statuses().map((s) => s.stats))}`,
    );
  }
  expect(audit.windows.map((w) => w.manifest.window.startMs)).toEqual(
    Array.from({ length: 6 }, (_, i) => T0 + i * MINUTE),
  );
  expect(await gcs.list('_staging/')).toEqual([]);
});

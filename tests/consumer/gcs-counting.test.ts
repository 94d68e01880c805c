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
 * The counting suite on GCS: the real @google-cloud/storage client over HTTP against the GCS
 * fake, which answers 10% of all requests with 503, drops the answer of some writes that did
 * commit, and is slow (100 ms per answer). Every distinct event exactly once, all the same.
 */
jest.setTimeout(180_000);

const TYPE = 'track_played';
const registry = SchemaRegistry.load('schemas');
const prefix = uniquePrefix();
const pubsub = newPubSub();
let fake: RunningGcsFake;

beforeAll(async () => {
  fake = await start();
  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE], ackDeadline: seconds(10) });
});
afterAll(async () => {
  await pubsub.close();
  await fake.stop();
});

function store(): GcsStore {
  return new GcsStore({
    bucket: 'hourglass-consumer-test',
    prefix: uniquePrefix(),
    storage: {
      apiEndpoint: fake.url,
      projectId: Defaults.projectId,
      // the client's backoff starts at 1 s; enough attempts that 10% failures never exhaust them
      retryOptions: { maxRetries: 6, maxRetryDelay: 1, totalTimeout: 60 },
    },
  });
}

function closedThrough(consumer: RunningConsumer): number {
  const closed = consumer.closedWindows();
  return closed.length === 0 ? -Infinity : Math.max(...closed.map((c) => c.window.start));
}

test('every event exactly once across closed windows, with 503s, lost answers and slow answers', async () => {
  const gcs = store();
  const clock = new ManualClock(T0 + 4 * MINUTE + 30_000);
  const { bundles, distinct } = generateBundles(registry, TYPE, {
    events: 3000,
    start: T0,
    spanMs: 4 * MINUTE,
    maxBundle: 120,
    dupRate: 0.05,
    seed: 7,
  });
  let messages = await publishBundles(pubsub, prefix, TYPE, bundles);
  const published = [...distinct];

  fake.faults.failRate(0.1, { seed: 3 });
  fake.faults.delay(100);
  fake.faults.dropAfterCommit(5, { routes: ['upload.multipart'] });
  const consumer = await startConsumer(
    consumerConfig({
      prefix,
      eventTypes: [TYPE],
      replicaId: 'gcs-solo',
      ...FAST_CONSUMER,
    }),
    { clock, store: gcs, logger: silentLogger, autoTick: false, http: false },
  );
  const step = async (advance: number): Promise<void> => {
    clock.advance(advance);
    await consumer.tick();
  };
  const status = () => consumer.status()[0]!;
  try {
    await driveUntil(
      () => status().stats.acked >= messages && status().heldEvents === 0,
      () => step(100),
      { timeoutMs: 90_000 },
    );
    await driveUntil(
      () => closedThrough(consumer) >= T0 + 3 * MINUTE,
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
    await driveUntil(
      () => status().stats.acked >= messages && status().heldEvents === 0,
      () => step(100),
      { timeoutMs: 60_000 },
    );
    clock.set(T0 + 7 * MINUTE);
    await driveUntil(
      () => closedThrough(consumer) >= T0 + 5 * MINUTE,
      () => step(500),
      { timeoutMs: 60_000 },
    );
  } finally {
    await consumer.stop();
  }
  // the faults fired, and nothing was given up
  expect(fake.faults.fired.failed).toBeGreaterThan(10);
  expect(fake.faults.fired.delayed).toBeGreaterThan(100);
  expect(fake.faults.fired.droppedAfterCommit).toBe(5);
  fake.faults.reset();

  const audit = await auditType(gcs, TYPE, MINUTE);
  expect(audit.problems).toEqual([]);
  expect(countAgainst(audit, published)).toEqual({
    expected: published.length,
    present: published.length,
    lost: 0,
    duplicated: 0,
    unexpected: 0,
  });
  expect(audit.late).toBe(50);
  expect(audit.windows.map((w) => w.manifest.window.startMs)).toEqual(
    Array.from({ length: 6 }, (_, i) => T0 + i * MINUTE),
  );
  expect(await gcs.list('_staging/')).toEqual([]);
});

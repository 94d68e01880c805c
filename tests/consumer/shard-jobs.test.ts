import { setTimeout as sleep } from 'node:timers/promises';
import { provisionTopology } from '@hourglass/cli';
import { Defaults, ManualClock, seconds, silentLogger } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { start, type RunningGcsFake } from '@hourglass/gcs-fake';
import { GcsStore, LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import { SHARD_JOBS } from '@hourglass/bucket-format';
import { type RunningConsumer, consumerConfig, startConsumer } from '@hourglass/consumer';
import {
  FAST_CONSUMER,
  MINUTE,
  T0,
  auditType,
  countAgainst,
  driveUntil,
  generateBundles,
  newPubSub,
  publishBundles,
  tempDir,
  uniquePrefix,
} from './support';

/**
 * Shard jobs across two real consumer replicas (real emulator, real filesystem): a window over
 * the shard target (1 MiB here) is finalized as shard jobs by r1, the closer, and r2, which never
 * closes (HOURGLASS_CLOSER=false), runs some of them through its shard worker. On the local store
 * and on the GCS fake through the real client, where the jobs' reads are HTTP range requests. Counted: every distinct event in exactly one
 * closed window, copies dropped, both replicas' claims, nothing left in staging or announced.
 */
jest.setTimeout(180_000);

const registry = SchemaRegistry.load('schemas');
const TYPE = 'track_played';
const pubsub = newPubSub();
let fake: RunningGcsFake;
beforeAll(async () => {
  fake = await start();
});
afterAll(async () => {
  await pubsub.close();
  await fake.stop();
});

function storeOf(kind: 'local' | 'gcs', prefix: string): ObjectStore {
  if (kind === 'local') return new LocalDirectoryStore(tempDir('shard-jobs'));
  return new GcsStore({
    bucket: 'hourglass-shard-jobs-test',
    prefix,
    storage: { apiEndpoint: fake.url, projectId: Defaults.projectId },
  });
}

/** The store as one replica sees it, counting the shard claims it writes. */
function claimsCounted(store: ObjectStore, claims: Set<string>): ObjectStore {
  const counted = Object.create(store) as ObjectStore;
  counted.createIfAbsent = async (name, data) => {
    const created = await store.createIfAbsent(name, data);
    if (created && name.endsWith('.claim')) claims.add(name);
    return created;
  };
  counted.put = async (name, data) => {
    await store.put(name, data);
    if (name.endsWith('.claim')) claims.add(name);
  };
  return counted;
}

test.each(['local', 'gcs'] as const)(
  '%s store: two replicas share a sharded window: every event once, both ran shard jobs',
  async (kind) => {
    const prefix = uniquePrefix();
    await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE], ackDeadline: seconds(10) });
    const store = storeOf(kind, prefix);
    const rangedBefore = fake.requests.downloadBytes.range;
    const clock = new ManualClock(T0 + 30_000);
    const { bundles, distinct } = generateBundles(registry, TYPE, {
      events: 30_000,
      start: T0,
      spanMs: MINUTE,
      maxBundle: 150,
      dupRate: 0.05,
      seed: 15,
    });
    const messages = await publishBundles(pubsub, prefix, TYPE, bundles);
    const claims = [new Set<string>(), new Set<string>()];
    const consumers: RunningConsumer[] = [];
    for (const [i, replicaId] of ['r1', 'r2'].entries()) {
      const config = consumerConfig({
        prefix,
        eventTypes: [TYPE],
        replicaId,
        host: '127.0.0.1',
        port: 0,
        ...FAST_CONSUMER,
        finalizeShardBytes: 1024 * 1024,
        // r2 never closes: whatever it finalizes, its shard worker ran
        closer: replicaId === 'r1',
      });
      const other = claims[1 - i]!;
      consumers.push(
        await startConsumer(config, {
          clock,
          store: claimsCounted(store, claims[i]!),
          logger: silentLogger,
          autoTick: false,
          // a finished shard waits (20 s at most) for the other replica to claim one: both surely work
          onFinalizeStep: async (step) => {
            for (let waited = 0; step === 'shard-written' && other.size === 0 && waited < 20_000; waited += 20) {
              await sleep(20);
            }
          },
        }),
      );
    }
    const acked = (): number =>
      consumers.reduce((n, c) => n + c.status().find((s) => s.eventType === TYPE)!.stats.acked, 0);
    const step = async (advance: number): Promise<void> => {
      clock.advance(advance);
      await Promise.all(consumers.map((c) => c.tick()));
    };
    try {
      await driveUntil(
        () => acked() >= messages && consumers.every((c) => c.status().every((s) => s.heldEvents === 0)),
        () => step(100),
        { timeoutMs: 90_000 },
      );
      clock.set(T0 + 2 * MINUTE);
      // the clock slower than real time from here: no claim expires while its job runs
      await driveUntil(
        () => consumers.some((c) => c.closedWindows().some((w) => w.window.start === T0)),
        () => step(20),
        { timeoutMs: 120_000 },
      );
      const audit = await auditType(store, TYPE, MINUTE);
      expect(audit.problems).toEqual([]);
      expect(countAgainst(audit, distinct)).toEqual({
        expected: distinct.length,
        present: distinct.length,
        lost: 0,
        duplicated: 0,
        unexpected: 0,
      });
      const first = audit.windows.find((w) => w.manifest.window.startMs === T0)!;
      const shards = new Set(first.manifest.files.map((f) => /part-s(\d{5})-/.exec(f.path)?.[1]));
      expect(shards.has(undefined)).toBe(false);
      expect(shards.size).toBeGreaterThanOrEqual(3);
      expect(first.manifest.counts.duplicatesDropped).toBeGreaterThan(0);
      expect(claims[0]!.size).toBeGreaterThanOrEqual(1);
      expect(claims[1]!.size).toBeGreaterThanOrEqual(1);
      expect(claims[0]!.size + claims[1]!.size).toBeGreaterThanOrEqual(shards.size);
      expect(await store.list(`${SHARD_JOBS}/`)).toEqual([]);
      if (kind === 'gcs') expect(fake.requests.downloadBytes.range - rangedBefore).toBeGreaterThan(1024 * 1024);
      expect(await store.list(`_staging/${TYPE}/`)).toEqual([]);
    } finally {
      await Promise.all(consumers.map((c) => c.stop()));
    }
  },
);

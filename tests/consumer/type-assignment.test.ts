import { provisionTopology } from '@hourglass/cli';
import { Defaults, ManualClock, createLogger, seconds, silentLogger } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore } from '@hourglass/storage';
import { leaseIdentity, leaseState, readLeaseBoard, replicasOfType } from '@hourglass/bucket-format';
import { type RunningConsumer, consumerConfig, startConsumer } from '@hourglass/consumer';
import {
  FAST_CONSUMER,
  type PublishedEvent,
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
 * HOURGLASS_REPLICAS_PER_TYPE=2 on real consumers (real emulator, real filesystem, manual
 * clock): each type is pulled by exactly 2 of the 3 live replicas, as every replica's lease shows,
 * while a replica joins and another stops mid-window; the types move, and every event of every
 * type is stored once. Traffic is published in three batches: before the join, between the join
 * and the stop, after the stop.
 */
jest.setTimeout(240_000);

const registry = SchemaRegistry.load('schemas');
const TYPES = registry.eventTypes();
const PER_TYPE = 2;
const pubsub = newPubSub();
afterAll(() => pubsub.close());

test('each type pulled by 2 of 3 replicas, a replica joins and one stops mid-window: every event once', async () => {
  const prefix = uniquePrefix();
  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: TYPES, ackDeadline: seconds(10) });
  const store = new LocalDirectoryStore(tempDir('type-assignment'));
  const clock = new ManualClock(T0 + 30_000);
  const running = new Map<string, RunningConsumer>();
  const start = async (replicaId: string): Promise<void> => {
    const config = consumerConfig({
      prefix,
      replicaId,
      host: '127.0.0.1',
      port: 0,
      ...FAST_CONSUMER,
      replicasPerType: { default: PER_TYPE, byType: {} },
    });
    running.set(
      replicaId,
      await startConsumer(config, {
        clock,
        store,
        logger: process.env.DBG ? createLogger('t', { level: 'info' }) : silentLogger,
        autoTick: false,
      }),
    );
  };
  const step = async (advance: number): Promise<void> => {
    clock.advance(advance);
    await Promise.all([...running.values()].map((c) => c.tick()));
  };
  /** Per type, the replicas whose live lease serves it (retired entries are not live). */
  const servers = async (): Promise<Record<string, string[]>> => {
    const board = await readLeaseBoard(store);
    const now = clock.now();
    return Object.fromEntries(
      TYPES.map((t) => [
        t,
        board
          .ofType(t)
          .filter((l) => leaseState(l, now) === 'live')
          .map((l) => l.replicaId)
          .sort(),
      ]),
    );
  };
  /** What the assignment gives for the running replicas, and what each one serves: they must agree. */
  const settled = async (): Promise<boolean> => {
    const ids = [...running.values()].map((c) => c.replicaId);
    const byLeases = await servers();
    return TYPES.every((t) => {
      const serving = [...running.values()].filter((c) => c.eventTypes().includes(t)).map((c) => c.replicaId);
      return serving.length === Math.min(PER_TYPE, ids.length) && byLeases[t]!.join() === serving.sort().join();
    });
  };
  const distinct: Record<string, PublishedEvent[]> = Object.fromEntries(TYPES.map((t) => [t, []]));
  let seed = 1;
  const publishBatch = async (): Promise<number> => {
    let messages = 0;
    for (const t of TYPES) {
      const batch = generateBundles(registry, t, {
        events: 300,
        start: T0,
        spanMs: MINUTE,
        maxBundle: 20,
        dupRate: 0.03,
        seed: seed++,
      });
      distinct[t]!.push(...batch.distinct);
      messages += await publishBundles(pubsub, prefix, t, batch.bundles);
    }
    return messages;
  };
  let published = 0;
  let ackedByStopped = 0;
  const acked = (): number => ackedByStopped + [...running.values()].reduce((n, c) => n + c.acked(), 0);
  const drain = (): Promise<void> =>
    driveUntil(
      () => acked() >= published,
      () => step(100),
      { timeoutMs: 60_000 },
    );

  try {
    await start('r1');
    await start('r2');
    published += await publishBatch();
    await drain();
    expect(await settled()).toBe(true);
    expect(Object.values(await servers()).every((s) => s.join() === 'r1,r2')).toBe(true);

    await start('r3');
    await driveUntil(settled, () => step(100), { timeoutMs: 30_000 });
    const withThree = await servers();
    const board = await readLeaseBoard(store);
    const live = board.replicas.filter((r) => leaseState(r, clock.now()) === 'live').map(leaseIdentity);
    expect(live).toHaveLength(3);
    for (const t of TYPES) {
      const expected = replicasOfType(live, t, PER_TYPE).map((identity) => identity.split('.')[0]!);
      expect(withThree[t]).toEqual(expected.sort());
    }
    // 3 replicas, 2 per type: 10 subscriptions read where 15 were
    expect([...running.values()].reduce((n, c) => n + c.eventTypes().length, 0)).toBe(PER_TYPE * TYPES.length);
    published += await publishBatch();
    await drain();

    const leaving = running.get('r1')!;
    running.delete('r1');
    published += await publishBatch();
    await leaving.stop();
    ackedByStopped += leaving.acked();
    // r1's types come to r2 and r3 once its lease is no longer live (its last lease has ttl 0)
    await driveUntil(settled, () => step(100), { timeoutMs: 60_000 });
    for (const t of TYPES) expect((await servers())[t]).toEqual(['r2', 'r3']);
    await drain();

    clock.set(T0 + 2 * MINUTE);
    await driveUntil(
      async () => {
        for (const t of TYPES) if ((await auditType(store, t, MINUTE)).windows.length === 0) return false;
        return true;
      },
      () => step(200),
      { timeoutMs: 90_000 },
    );
    for (const t of TYPES) {
      const audit = await auditType(store, t, MINUTE);
      expect(audit.problems).toEqual([]);
      expect({ type: t, ...countAgainst(audit, distinct[t]!) }).toEqual({
        type: t,
        expected: distinct[t]!.length,
        present: distinct[t]!.length,
        lost: 0,
        duplicated: 0,
        unexpected: 0,
      });
    }
  } finally {
    await Promise.all([...running.values()].map((c) => c.stop()));
  }
});

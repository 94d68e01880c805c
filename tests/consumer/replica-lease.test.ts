import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type Duration, ManualClock, silentLogger } from '@hourglass/common';
import type { ConsumerConfig } from '@hourglass/consumer';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import {
  REPLICA_LEASE_PREFIX,
  type Lease,
  type ReplicaLeaseRecord,
  assignWindow,
  leaseName,
  leaseOfType,
  leaseState,
  manifestName,
  parseReplicaLease,
  readLeases,
  replicaLeaseName,
  serializeLease,
} from '@hourglass/bucket-format';
import { TypeRuntime, consumerParts, createConsumerMetrics, typeScope } from '@hourglass/consumer';
import { FinalizeQueue } from '@hourglass/consumer/close/finalize-queue';
import { TickLoop } from '@hourglass/consumer/tick-loop';
import { ReplicaLeaseKeeper } from '@hourglass/consumer/watermark/replica-lease';
import { fleetTypes, writeSchemas } from '../faults/fleet';
import { MINUTE, T0, tempDir } from './support';
import { bundle, records, testConfig } from './runtime-support';

/**
 * One lease per replica process, whatever the number of types it serves: per tick a replica
 * lists `_watermarks/` once, reads each replica's lease, writes its own once; a type's cursor is
 * read only while a close is due. Before, every type had a lease of its own, and each replica
 * listed and read every other replica's lease of every type each tick (replicas² × types reads).
 */

/** Store calls by kind, for the objects the watermark rule uses. */
class OpCounts {
  leaseWrites = 0;
  leaseReads = 0;
  watermarkLists = 0;
  cursorReads = 0;
  reset(): void {
    this.leaseWrites = this.leaseReads = this.watermarkLists = this.cursorReads = 0;
  }
}

function counted(store: ObjectStore, counts: OpCounts): ObjectStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const name = String(args[0]);
        if (prop === 'put' && name.startsWith(REPLICA_LEASE_PREFIX)) counts.leaseWrites++;
        if (prop === 'get' && name.startsWith(REPLICA_LEASE_PREFIX)) counts.leaseReads++;
        if (prop === 'get' && name.endsWith('/_closed.json')) counts.cursorReads++;
        if (prop === 'list' && name.startsWith('_watermarks/')) counts.watermarkLists++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

interface Replica {
  id: string;
  counts: OpCounts;
  keeper: ReplicaLeaseKeeper;
  runtimes: Map<string, TypeRuntime>;
  loop: TickLoop;
}

/** A replica as consumer.ts wires it (one shared lease, one tick loop), fed directly, on a ManualClock. */
async function startReplica(
  root: string,
  registry: SchemaRegistry,
  clock: ManualClock,
  id: string,
  types: readonly string[],
  overrides: Partial<ConsumerConfig> = {},
): Promise<Replica> {
  const counts = new OpCounts();
  const store = counted(new LocalDirectoryStore(root), counts);
  const config = testConfig(id, { startAt: T0, ...overrides });
  const parts = consumerParts(config);
  const incarnation = randomBytes(3).toString('hex');
  const keeper = new ReplicaLeaseKeeper({ replicaId: id, incarnation, closes: config.closer }, parts.watermark, {
    store,
    clock,
  });
  const queue = new FinalizeQueue();
  const metrics = createConsumerMetrics();
  const runtimes = new Map(
    types.map((t) => [
      t,
      new TypeRuntime(
        { scope: typeScope(config, t, incarnation), ...parts },
        { store, registry, clock, logger: silentLogger, metrics, queue, replicaLease: keeper },
      ),
    ]),
  );
  await keeper.refresh();
  await Promise.all([...runtimes.values()].map((rt) => rt.start()));
  await keeper.renew();
  const storeError = (_op: string, e: unknown): void => {
    throw e;
  };
  const options = { tickMs: 1_000, stageMaxAgeMs: 1_000, autoTick: false };
  const loop = new TickLoop(
    () => [...runtimes.values()],
    options,
    clock,
    silentLogger,
    () => ({}),
    {
      keeper,
      storeError,
    },
  );
  return { id, counts, keeper, runtimes, loop };
}

/** One second: every replica ticks, then every type's close pass runs to its end. */
async function second(clock: ManualClock, replicas: readonly Replica[]): Promise<void> {
  clock.advance(1_000);
  for (const r of replicas) await r.loop.tick();
  for (const r of replicas) await Promise.all([...r.runtimes.values()].map((rt) => rt.closeWindows()));
}

function fleetRegistry(types: readonly string[]): SchemaRegistry {
  const dir = mkdtempSync(join(tmpdir(), 'hourglass-replica-lease-schemas-'));
  writeSchemas(dir, types);
  return SchemaRegistry.load(dir);
}

describe('one lease per replica', () => {
  test.each([5, 40])(
    '%i types, 3 replicas: per tick one lease write, one listing and 3 lease reads per replica; cursors read only when a close is due',
    async (typeCount) => {
      const types = fleetTypes(typeCount);
      const registry = fleetRegistry(types);
      const root = tempDir(`replica-lease-${typeCount}`);
      const clock = new ManualClock(T0 + 5_000);
      const replicas = [];
      for (const id of ['r0', 'r1', 'r2']) replicas.push(await startReplica(root, registry, clock, id, types));
      // idle replicas: window 0 (T0..T0+1m) closes empty for every type once the watermark passes
      // its end + grace (10 s); run past that
      while (clock.now() < T0 + MINUTE + 15_000) await second(clock, replicas);
      const probe = new LocalDirectoryStore(root);
      for (const t of types) expect(await probe.exists(manifestName(t, assignWindow(T0, MINUTE)))).toBe(true);

      // steady state inside window 1: nothing closable, 20 ticks
      for (const r of replicas) r.counts.reset();
      for (let i = 0; i < 20; i++) await second(clock, replicas);
      for (const r of replicas) {
        expect(r.counts.leaseWrites).toBe(20);
        expect(r.counts.watermarkLists).toBe(20);
        expect(r.counts.leaseReads).toBe(20 * 3);
        expect(r.counts.cursorReads).toBe(0);
      }
      // one lease object per replica, each holding every type's watermark
      const leases = await probe.list(REPLICA_LEASE_PREFIX);
      expect(leases).toHaveLength(3);
      for (const t of types)
        expect((await readLeases(probe, t)).map((l) => l.replicaId).sort()).toEqual(['r0', 'r1', 'r2']);

      // at window 1's end + grace a close is due: non-closers read each type's cursor until it moves
      for (const r of replicas) r.counts.reset();
      while (clock.now() < T0 + 2 * MINUTE + 15_000) await second(clock, replicas);
      for (const t of types) expect(await probe.exists(manifestName(t, assignWindow(T0 + MINUTE, MINUTE)))).toBe(true);
      const nonCloser = replicas[2]!;
      expect(nonCloser.counts.cursorReads).toBeGreaterThanOrEqual(typeCount);
      expect(nonCloser.counts.cursorReads).toBeLessThanOrEqual(typeCount * 4);
      for (const t of types) expect(nonCloser.runtimes.get(t)!.lastClosed()?.start).toBe(T0 + MINUTE);
    },
  );

  test("a type's watermark is its own in the shared lease: an event held in one type holds that type's windows only", async () => {
    const types = fleetTypes(3);
    const registry = fleetRegistry(types);
    const root = tempDir('replica-lease-held');
    const clock = new ManualClock(T0 + 40_000);
    const closer = await startReplica(root, registry, clock, 'r0', types);
    // r1 holds one event of the first type unstaged: its part files wait 10 minutes
    const holder = await startReplica(root, registry, clock, 'r1', types, { stageMaxAge: (10 * MINUTE) as Duration });
    const held = types[0]!;
    const writer = registry.get(held).latest;
    holder.runtimes
      .get(held)!
      .stager.handle(bundle({ acked: 0, nacked: 0 }, records(1, T0 + 30_000, 1, writer), writer));
    while (clock.now() < T0 + MINUTE + 20_000) await second(clock, [closer, holder]);
    const probe = new LocalDirectoryStore(root);
    const r1Lease = async (t: string) => (await readLeases(probe, t)).find((l) => l.replicaId === 'r1')!;
    const heldLease = await r1Lease(held);
    const freeLease = await r1Lease(types[1]!);
    expect(heldLease.watermark).toBeLessThanOrEqual(T0 + 30_000);
    expect(freeLease.watermark).toBeGreaterThan(T0 + MINUTE + 10_000);
    expect(heldLease.renewedAt).toBe(freeLease.renewedAt); // one object, one renewal
    const w0 = assignWindow(T0, MINUTE);
    expect(await probe.exists(manifestName(held, w0))).toBe(false);
    for (const t of types.slice(1)) expect(await probe.exists(manifestName(t, w0))).toBe(true);
  });

  test("a per-type lease of an older version still holds its type's windows, and is deleted once long expired", async () => {
    const types = fleetTypes(2);
    const registry = fleetRegistry(types);
    const root = tempDir('replica-lease-legacy');
    const clock = new ManualClock(T0 + 5_000);
    const store = new LocalDirectoryStore(root);
    // an old replica's lease for the first type, watermark T0 + 30 s: live until T0 + 85 s, stale until T0 + 95 s
    const old: Lease = {
      replicaId: 'old',
      incarnation: 'o1',
      eventType: types[0]!,
      watermark: T0 + 30_000,
      renewedAt: clock.now(),
      ttlMs: 80_000,
      ackDeadlineMs: 10_000,
    };
    await store.put(leaseName(old.eventType, old.replicaId, old.incarnation), serializeLease(old));
    const replica = await startReplica(root, registry, clock, 'r0', types);
    while (clock.now() < T0 + MINUTE + 15_000) await second(clock, [replica]);
    const w0 = assignWindow(T0, MINUTE);
    expect(await store.exists(manifestName(types[1]!, w0))).toBe(true);
    expect(await store.exists(manifestName(types[0]!, w0))).toBe(false); // held by the old lease
    // once it stops counting (T0 + 95 s), window 0 closes
    while (clock.now() < T0 + 100_000) await second(clock, [replica]);
    expect(await store.exists(manifestName(types[0]!, w0))).toBe(true);
    expect(await store.exists(leaseName(old.eventType, old.replicaId, old.incarnation))).toBe(true);
    // expired for one more ttl (T0 + 175 s): deleted by the first live replica
    while (clock.now() < T0 + 180_000) await second(clock, [replica]);
    expect(await store.exists(leaseName(old.eventType, old.replicaId, old.incarnation))).toBe(false);
  });

  test('a type stopped here: dropped from the lease when it left nothing to come back, held stale for the redelivery bound when it did', async () => {
    const clock = new ManualClock(T0);
    const store = new LocalDirectoryStore(tempDir('replica-lease-retire'));
    const keeper = new ReplicaLeaseKeeper(
      { replicaId: 'r0', incarnation: 'i0', closes: true },
      { leaseTtlMs: 15_000, redeliveryBoundMs: 70_000 },
      { store, clock },
    );
    let wmA = T0 - 5_000;
    keeper.serve('a', () => wmA);
    keeper.serve('b', () => T0 - 1_000);
    await keeper.renew();
    const read = async (): Promise<ReplicaLeaseRecord> =>
      parseReplicaLease((await store.get(replicaLeaseName('r0', 'i0')))!)!;

    keeper.retire('b', false); // drained clean: nothing held, nothing nacked
    keeper.retire('a', true); // left messages: they come back to the type's other replicas
    clock.advance(1_000);
    await keeper.renew();
    let record = await read();
    expect(Object.keys(record.watermarks)).toEqual([]);
    expect(record.retired).toEqual({ a: { at: T0, watermark: T0 - 5_000 } });
    expect(leaseState(leaseOfType(record, 'a')!, clock.now())).toBe('stale');
    expect(leaseOfType(record, 'b')).toBeUndefined();

    // served again and stopped again within the bound: the lower watermark of the two holds
    wmA = T0 + 20_000;
    keeper.serve('a', () => wmA);
    clock.advance(1_000);
    await keeper.renew();
    record = await read();
    expect(record.watermarks).toEqual({ a: T0 + 20_000 });
    expect(record.retired?.a?.watermark).toBe(T0 - 5_000);
    keeper.retire('a', true);
    clock.advance(1_000);
    await keeper.renew();
    expect((await read()).retired).toEqual({ a: { at: T0 + 2_000, watermark: T0 - 5_000 } });

    // past the redelivery bound the entry is dropped
    clock.advance(70_000);
    await keeper.renew();
    record = await read();
    expect(record.retired).toBeUndefined();
    expect(record.watermarks).toEqual({});
  });
});

import { rmSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { LocalDirectoryStore } from '@hourglass/storage';
import { earlyPlanName } from '@hourglass/bucket-format';
import { finalizeEarly } from '@hourglass/consumer/finalize/early';
import {
  MINUTE,
  type Rec,
  TYPE,
  context,
  copyOf,
  finalBytes,
  finalizeW1,
  removeTempDirs,
  scenario,
  stage,
  stored,
  tempDir,
  w1,
} from '../../support/sharded-scenario';

/**
 * Sharded finalize (finalize/sharded-close.ts) against the one-pass finalize on the same staged
 * files, on the real filesystem: the same records kept (the first copy in plan order), the same
 * counts, copies of the closed window before (the dedup horizon) and late copies of closed
 * windows dropped per shard, and deterministic bytes on a rerun and after a crash.
 */
afterAll(removeTempDirs);

describe('sharded finalize', () => {
  test('a few thousand events in many shards: the records and counts of the one-pass finalize', async () => {
    const { dir } = await scenario({ seed: 7, events: 3000, files: 9, duplicateShare: 0.05, resends: 15, late: 40 });
    const one = copyOf(new LocalDirectoryStore(dir), dir);
    const sharded = copyOf(new LocalDirectoryStore(dir), dir);
    const unsharded = await finalizeW1(context(one.store));
    const result = await finalizeW1(context(sharded.store, 32 * 1024));
    expect(unsharded.shards).toBe(1);
    expect(result.shards).toBeGreaterThanOrEqual(5);
    const a = await stored(one.store, w1);
    const b = await stored(sharded.store, w1);
    expect(b.m.counts).toEqual(a.m.counts);
    expect(b.m.counts.duplicatesOfClosedWindows).toBeGreaterThanOrEqual(15); // the re-sends, and late copies
    expect(b.m.counts.records).toBe(3000 + b.m.counts.late);
    expect(b.onTime).toEqual(a.onTime);
    expect(b.late).toEqual(a.late);
    expect(b.m.files.map((f) => f.path)).toEqual(
      b.m.files.map((f, i) =>
        f.path.replace(
          /(part|late)-\d+/,
          `$1-${String(f.late ? i - b.m.files.findIndex((g) => g.late) : i).padStart(5, '0')}`,
        ),
      ),
    );
    expect(await one.store.list('_staging/')).toEqual([]);
    expect(await sharded.store.list('_staging/')).toEqual([]);
  });

  test('without a spill (HOURGLASS_FINALIZE_SPILL=none) each shard rereads staging: the same files byte for byte', async () => {
    const { dir, tail } = await scenario({
      seed: 5,
      events: 3000,
      files: 9,
      duplicateShare: 0.05,
      resends: 15,
      late: 40,
    });
    const spilled = copyOf(new LocalDirectoryStore(dir), dir);
    const reread = copyOf(new LocalDirectoryStore(dir), dir);
    const fromTail = copyOf(new LocalDirectoryStore(dir), dir);
    const a = await finalizeW1(context(spilled.store, 32 * 1024));
    // a spill directory that cannot exist: the spilling path would fail here
    const noDisk = { spill: 'none' as const, spillDir: path.join(tempDir(), 'absent', 'nested') };
    const b = await finalizeW1({ ...context(reread.store, 32 * 1024), ...noDisk });
    await finalizeW1({ ...context(fromTail.store, 32 * 1024), ...noDisk }, tail); // the reference from memory
    expect(b.shards).toBe(a.shards);
    expect(b.shards).toBeGreaterThanOrEqual(5);
    expect(b.m.counts).toEqual(a.m.counts);
    expect(b.m.counts.late).toBeGreaterThan(0);
    expect(b.m.counts.duplicatesOfClosedWindows).toBeGreaterThanOrEqual(15);
    expect(await finalBytes(reread.store)).toEqual(await finalBytes(spilled.store));
    expect(await finalBytes(fromTail.store)).toEqual(await finalBytes(spilled.store));
    expect(await reread.store.list('_staging/')).toEqual([]);
  });

  test('below the shard target the plan has no shards and the bytes are the one-pass bytes', async () => {
    const { dir } = await scenario({ seed: 3, events: 500, files: 4, duplicateShare: 0.05, resends: 5, late: 10 });
    const one = copyOf(new LocalDirectoryStore(dir), dir);
    const big = copyOf(new LocalDirectoryStore(dir), dir);
    await finalizeW1(context(one.store));
    expect((await finalizeW1(context(big.store, 64 * 1024 * 1024))).shards).toBe(1);
    expect(await finalBytes(big.store)).toEqual(await finalBytes(one.store));
  });

  test('the same bytes on a rerun, from the tail in memory or read back, and after a crash mid-window', async () => {
    const { dir, tail } = await scenario({
      seed: 11,
      events: 2000,
      files: 6,
      duplicateShare: 0.03,
      resends: 10,
      late: 20,
    });
    const shardBytes = 40 * 1024;
    const reference = copyOf(new LocalDirectoryStore(dir), dir);
    expect((await finalizeW1(context(reference.store, shardBytes), tail)).shards).toBeGreaterThan(1);
    const readBack = copyOf(new LocalDirectoryStore(dir), dir);
    await finalizeW1(context(readBack.store, shardBytes));
    expect(await finalBytes(readBack.store)).toEqual(await finalBytes(reference.store));

    const crashed = copyOf(new LocalDirectoryStore(dir), dir);
    const crash = new Error('simulated crash');
    let parts = 0;
    await expect(
      finalizeW1(
        context(crashed.store, shardBytes, (step) => {
          if (step === 'part-written' && ++parts === 2) throw crash;
        }),
      ),
    ).rejects.toBe(crash);
    // the takeover: another replica (no tail in memory) finishes the window
    await finalizeW1(context(crashed.store, shardBytes));
    expect(await finalBytes(crashed.store)).toEqual(await finalBytes(reference.store));
  });

  test('early segments stop at the shard target; the close shards the rest after them', async () => {
    const dir = tempDir();
    const store = new LocalDirectoryStore(dir);
    const recs = (from: number, n: number, copy = 0): Rec[] =>
      Array.from({ length: n }, (_, i) => ({
        id: `e-${from + i}`,
        ts: w1.start + ((from + i) % MINUTE),
        copy: copy + i,
      }));
    await stage(store, w1, false, recs(0, 300));
    const shardBytes = 64 * 1024;
    const segments = await finalizeEarly(context(store, shardBytes), w1, undefined);
    expect(segments?.segments).toHaveLength(1);
    // more than a shard's bytes, with copies of the early segment's events and among themselves
    await stage(store, w1, false, [...recs(250, 800, 10_000), ...recs(900, 100, 20_000)]);
    await stage(store, w1, false, recs(1000, 800, 30_000));
    const one = copyOf(store, dir);
    expect(await finalizeEarly(context(store, shardBytes), w1, segments)).toBe(segments);
    expect(await store.exists(earlyPlanName(TYPE, w1, 1))).toBe(false);
    const result = await finalizeW1(context(store, shardBytes));
    await finalizeW1(context(one.store));
    expect(result.shards).toBeGreaterThan(1);
    const a = await stored(one.store, w1);
    const b = await stored(store, w1);
    expect(b.m.counts).toEqual(a.m.counts);
    // copies: 250–299 of the early segment, 900–999 and 1000–1049 of the second file
    expect(b.m.counts).toMatchObject({ records: 1800, duplicatesDropped: 200 });
    expect(b.onTime).toEqual(a.onTime);
    expect(b.m.files[0]).toEqual(a.m.files[0]); // the early segment's part file
  });

  test('property: sharded and one-pass finalize keep the same records and counts', async () => {
    let runs = 0;
    let shardedRuns = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          seed: fc.integer({ min: 1, max: 1_000_000 }),
          events: fc.integer({ min: 0, max: 250 }),
          files: fc.integer({ min: 1, max: 6 }),
          duplicateShare: fc.double({ min: 0, max: 0.5, noNaN: true }),
          resends: fc.integer({ min: 0, max: 12 }),
          late: fc.integer({ min: 0, max: 12 }),
        }),
        fc.integer({ min: 1024, max: 16 * 1024 }),
        fc.boolean(),
        async (s, shardBytes, tailInMemory) => {
          const { dir, tail } = await scenario(s);
          const one = copyOf(new LocalDirectoryStore(dir), dir);
          const sharded = copyOf(new LocalDirectoryStore(dir), dir);
          await finalizeW1(context(one.store), tailInMemory ? tail : undefined);
          const { shards } = await finalizeW1(context(sharded.store, shardBytes), tailInMemory ? tail : undefined);
          runs++;
          if (shards > 1) shardedRuns++;
          const a = await stored(one.store, w1);
          const b = await stored(sharded.store, w1);
          expect(b.m.counts).toEqual(a.m.counts);
          expect(b.onTime).toEqual(a.onTime);
          expect(b.late).toEqual(a.late);
          for (const d of [dir, one.dir, sharded.dir]) rmSync(d, { recursive: true, force: true });
        },
      ),
      { seed: 20261203, numRuns: 25 },
    );
    expect(shardedRuns).toBeGreaterThan(runs / 2); // the comparison is between two paths
  });
});

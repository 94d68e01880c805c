import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { seededRandom, sha256Hex, silentLogger } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import {
  OcfWriter,
  assignWindow,
  earlyPlanName,
  manifestName,
  nextWindow,
  parseManifest,
  planName,
  scanContainer,
  schemaTextOf,
  stagedFileName,
  syncMarkerFor,
  type IntervalWindow,
  type Manifest,
} from '@hourglass/bucket-format';
import type { ClosedTail, FinalizeContext } from '@hourglass/consumer/finalize/context';
import { finalizeEarly } from '@hourglass/consumer/finalize/early';
import { parsePlan } from '@hourglass/consumer/finalize/plan';
import { finalizeWindow } from '@hourglass/consumer/finalize/publish';

/**
 * Sharded finalize (finalize/sharded-close.ts) against the one-pass finalize on the same staged
 * files, on the real filesystem: the same records kept (the first copy in plan order), the same
 * counts, copies of the closed window before (the dedup horizon) and late copies of closed
 * windows dropped per shard, and deterministic bytes on a rerun and after a crash.
 */
const registry = SchemaRegistry.load('schemas');
const TYPE = 'track_played';
const version = registry.get(TYPE).latest;
const MINUTE = 60_000;
const HORIZON = 20_000;
const T0 = Date.UTC(2026, 0, 1);
const w0 = assignWindow(T0, MINUTE);
const w1 = nextWindow(w0);

interface Rec {
  id: string;
  ts: number;
  /** Differs between copies of one id, so keeping another copy than the first shows. */
  copy: number;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'hourglass-sharded-'));
  dirs.push(d);
  return d;
}
function copyOf(store: LocalDirectoryStore, from: string): { store: LocalDirectoryStore; dir: string } {
  const dir = tempDir();
  cpSync(from, dir, { recursive: true });
  return { store: new LocalDirectoryStore(dir), dir };
}

function datum(r: Rec): Buffer {
  return version.type.toBuffer({
    meta: { event_id: r.id, gateway_ts: r.ts, client_ts: r.ts - 17, gateway_id: 'gw' },
    user_id: `u${r.copy % 7}`,
    track_id: `t-${r.copy}`,
    ms_played: 1000 + r.copy,
    reason_start: 'TRACK_DONE',
    reason_end: 'TRACK_DONE',
    shuffle: r.copy % 2 === 0,
    platform: 'ANDROID',
    country: 'SE',
    offline: false,
    context_uri: null,
  });
}

let seq = 0;
async function stage(store: ObjectStore, w: IntervalWindow, late: boolean, records: Rec[]): Promise<void> {
  const name = stagedFileName(TYPE, w, late, 'r1', 'i1', seq++);
  const writer = new OcfWriter({
    type: version.type,
    schema: schemaTextOf(version),
    syncMarker: syncMarkerFor(name),
    deflateLevel: 0,
    blockBytes: 4096,
  });
  for (const r of records) writer.appendDatum(datum(r));
  await store.createIfAbsent(name, await writer.finish());
}

function context(store: ObjectStore, shardBytes?: number, onStep?: FinalizeContext['onStep']): FinalizeContext {
  return {
    store,
    registry,
    eventType: TYPE,
    windowMs: MINUTE,
    graceMs: 10_000,
    format: { finalFileBytes: 16 * 1024, blockBytes: 4096, deflateLevel: 1, dedupHorizonMs: HORIZON },
    ...(shardBytes ? { shardBytes } : {}),
    logger: silentLogger,
    ...(onStep ? { onStep } : {}),
    sweepOrphan: async () => {
      throw new Error('no orphans expected');
    },
  };
}

/** The window's stored records (datums as hex, sorted), on time and late, and its manifest. */
async function stored(
  store: ObjectStore,
  w: IntervalWindow,
): Promise<{ onTime: string[]; late: string[]; m: Manifest }> {
  const m = parseManifest((await store.get(manifestName(TYPE, w)))!, 'manifest');
  const onTime: string[] = [];
  const late: string[] = [];
  for (const f of m.files) {
    await scanContainer((await store.get(f.path))!, f.path, version, (d) => {
      (f.late ? late : onTime).push(d.bytes.toString('hex'));
    });
  }
  return { onTime: onTime.sort(), late: late.sort(), m };
}

async function finalBytes(store: ObjectStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const o of await store.list(`${TYPE}/dt=`)) out.set(o.name, sha256Hex((await store.get(o.name))!));
  return out;
}

/** Finalizes w1, recording the shard count its plan committed. */
async function finalizeW1(ctx: FinalizeContext, tail?: ClosedTail): Promise<{ m: Manifest; shards: number }> {
  let shards = 1;
  const onStep = ctx.onStep;
  const result = await finalizeWindow(
    {
      ...ctx,
      onStep: async (step, detail) => {
        if (step === 'plan-written') shards = parsePlan((await ctx.store.get(planName(TYPE, w1)))!, 'plan').shards ?? 1;
        await onStep?.(step, detail);
      },
    },
    w1,
    w1.end + 10_000,
    undefined,
    tail,
  );
  return { m: result.manifest, shards };
}

interface Scenario {
  seed: number;
  events: number;
  files: number;
  duplicateShare: number;
  resends: number;
  late: number;
}

/**
 * Window 0 staged and closed (one pass); window 1 staged with: its own events, copies of them
 * (other payload) within and across staged files, re-sends of window 0's tail stamped in window
 * 1's head (dropped as copies of a closed window), and late files holding records of window 0,
 * some of them copies of what window 0 stored. Returns the store's directory and window 0's tail.
 */
async function scenario(
  s: Scenario,
): Promise<{ dir: string; store: LocalDirectoryStore; tail: ClosedTail | undefined }> {
  const random = seededRandom(s.seed);
  const dir = tempDir();
  const store = new LocalDirectoryStore(dir);
  const first: Rec[] = [];
  for (let i = 0; i < 60; i++)
    first.push({ id: `w0-${s.seed}-${i}`, ts: w0.start + Math.floor((i / 60) * MINUTE), copy: i });
  await stage(store, w0, false, first);
  const closed = await finalizeWindow(context(store), w0, w0.end + 10_000);
  const own: Rec[] = [];
  for (let i = 0; i < s.events; i++) {
    own.push({ id: `w1-${s.seed}-${i}`, ts: w1.start + Math.floor(random() * MINUTE), copy: i });
    if (random() < s.duplicateShare) own.push({ ...own[own.length - 1]!, copy: 100_000 + i }); // a copy right after
  }
  for (let i = 0; i < s.events * s.duplicateShare; i++) {
    const twin = own[Math.floor(random() * own.length)]!;
    own.splice(Math.floor(random() * own.length), 0, { ...twin, copy: 200_000 + i }); // a copy anywhere
  }
  const tailStart = first.length - Math.floor(first.length * (HORIZON / MINUTE));
  for (let i = 0; i < s.resends; i++) {
    const sent = first[tailStart + Math.floor(random() * (first.length - tailStart))]!;
    own.splice(Math.floor(random() * own.length), 0, {
      id: sent.id,
      ts: w1.start + Math.floor(random() * HORIZON),
      copy: 300_000 + i,
    });
  }
  const perFile = Math.ceil(own.length / s.files);
  for (let f = 0; f * perFile < own.length; f++)
    await stage(store, w1, false, own.slice(f * perFile, (f + 1) * perFile));
  const late: Rec[] = [];
  for (let i = 0; i < s.late; i++) {
    late.push(
      random() < 0.5
        ? { ...first[Math.floor(random() * first.length)]!, copy: 400_000 + i } // already stored in window 0
        : {
            id: `late-${s.seed}-${i % Math.max(1, s.late - 2)}`,
            ts: w0.start + Math.floor(random() * MINUTE),
            copy: i,
          },
    );
  }
  if (late.length > 0) await stage(store, w1, true, late);
  return { dir, store, tail: closed.tail };
}

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

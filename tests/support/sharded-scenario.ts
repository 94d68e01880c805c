import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { seededRandom, sha256Hex, silentLogger } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import {
  OcfWriter,
  assignWindow,
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
import { parsePlan } from '@hourglass/consumer/finalize/plan';
import { finalizeWindow } from '@hourglass/consumer/finalize/publish';

/**
 * A window to finalize in shards, on the real filesystem (sharded-finalize.test.ts,
 * shard-jobs.test.ts): window 0 closed, window 1 staged with copies within and across files,
 * re-sends of window 0's tail and late records, some of them copies of window 0's.
 */
export const registry = SchemaRegistry.load('schemas');
export const TYPE = 'track_played';
export const version = registry.get(TYPE).latest;
export const MINUTE = 60_000;
export const HORIZON = 20_000;
export const T0 = Date.UTC(2026, 0, 1);
export const w0 = assignWindow(T0, MINUTE);
export const w1 = nextWindow(w0);

export interface Rec {
  id: string;
  ts: number;
  /** Differs between copies of one id, so keeping another copy than the first shows. */
  copy: number;
}

const dirs: string[] = [];
/** Removes every directory tempDir made (call in afterAll). */
export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}
export function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'hourglass-sharded-'));
  dirs.push(d);
  return d;
}
export function copyOf(store: LocalDirectoryStore, from: string): { store: LocalDirectoryStore; dir: string } {
  const dir = tempDir();
  cpSync(from, dir, { recursive: true });
  return { store: new LocalDirectoryStore(dir), dir };
}

export function datum(r: Rec): Buffer {
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
export async function stage(store: ObjectStore, w: IntervalWindow, late: boolean, records: Rec[]): Promise<void> {
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

export function context(store: ObjectStore, shardBytes?: number, onStep?: FinalizeContext['onStep']): FinalizeContext {
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
export async function stored(
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

export async function finalBytes(store: ObjectStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const o of await store.list(`${TYPE}/dt=`)) out.set(o.name, sha256Hex((await store.get(o.name))!));
  return out;
}

/** Finalizes w1, recording the shard count its plan committed. */
export async function finalizeW1(ctx: FinalizeContext, tail?: ClosedTail): Promise<{ m: Manifest; shards: number }> {
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

export interface Scenario {
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
export async function scenario(
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

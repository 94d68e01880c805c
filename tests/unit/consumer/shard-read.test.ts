import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import avro from 'avsc';
import fc from 'fast-check';
import { isHourglassError, seededRandom, silentLogger } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import {
  GROUP_CRCS_META_KEY,
  GroupedOcfWriter,
  OcfWriter,
  assignWindow,
  eventIdOf,
  groupIndexOf,
  groupsOfShardJob,
  readOcfHeader,
  scanContainer,
  schemaTextOf,
  shardJobOf,
  stagedFileName,
  syncMarkerFor,
  type OcfWriterOptions,
  type ScannedDatum,
} from '@hourglass/bucket-format';
import type { FinalizeContext } from '@hourglass/consumer/finalize/context';
import type { PlanFile } from '@hourglass/consumer/finalize/plan';
import { HEAD_BYTES, forEachShardDatum } from '@hourglass/consumer/finalize/shard-read';

/**
 * A shard job's read of a planned staged file (finalize/shard-read.ts): over all shards, every
 * datum of the file exactly once, each shard's in stored order; grouped files read by range,
 * so all shards together read little more than the file; ungrouped (older) files read whole;
 * a group read whose bytes do not match its CRC-32 in the header is refused before any datum of it.
 */
const SEED = 0x15_0004;
const registry = SchemaRegistry.load('schemas');
const TYPE = 'track_played';
const version = registry.get(TYPE).latest;
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1);
const w = assignWindow(T0, MINUTE);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempStore(): LocalDirectoryStore {
  const d = mkdtempSync(path.join(tmpdir(), 'hourglass-shard-read-'));
  dirs.push(d);
  return new LocalDirectoryStore(d);
}

function context(store: ObjectStore): FinalizeContext {
  return {
    store,
    registry,
    eventType: TYPE,
    windowMs: MINUTE,
    graceMs: 10_000,
    format: { finalFileBytes: 16 * 1024, blockBytes: 4096, deflateLevel: 1, dedupHorizonMs: 0 },
    logger: silentLogger,
    sweepOrphan: async () => {
      throw new Error('no orphans expected');
    },
  };
}

function datum(id: string, seq: number): Buffer {
  return version.type.toBuffer({
    meta: { event_id: id, gateway_ts: T0 + seq, client_ts: T0 + seq - 250, gateway_id: 'gw' },
    user_id: `user-${seq % 1000}`,
    track_id: `spotify:track:${seq}`,
    ms_played: 180_000 + (seq % 1000),
    reason_start: 'TRACK_DONE',
    reason_end: 'TRACK_DONE',
    shuffle: seq % 2 === 0,
    platform: 'ANDROID',
    country: 'SE',
    offline: false,
    context_uri: seq % 3 ? null : `spotify:playlist:${seq % 5000}`,
  });
}

let fileSeq = 0;
/** Stages `ids` (one datum each, in order) as a grouped or an ungrouped (pre-grouping) file. */
async function stage(
  store: ObjectStore,
  ids: string[],
  grouped: boolean,
  blockBytes: number,
  deflateLevel = 0,
): Promise<PlanFile> {
  const options: OcfWriterOptions = {
    type: version.type,
    schema: schemaTextOf(version),
    syncMarker: syncMarkerFor(`shard-read-${fileSeq}`),
    deflateLevel,
    blockBytes,
  };
  const writer = grouped ? new GroupedOcfWriter(options) : new OcfWriter(options);
  ids.forEach((id, seq) => writer.appendDatum(datum(id, seq)));
  return put(store, await writer.finish());
}

/** Stores `data` as the next staged file. */
async function put(store: ObjectStore, data: Buffer): Promise<PlanFile> {
  const name = stagedFileName(TYPE, w, false, 'replica-a', 'inc', fileSeq++);
  await store.createIfAbsent(name, data);
  return { name, size: data.length };
}

/** A datum's label: its id and its arrival position (track id), so copies of one id differ. */
const labelOf = (d: ScannedDatum): string =>
  `${eventIdOf(d)}@${(version.type.fromBuffer(d.bytes) as { track_id: string }).track_id}`;

async function storedOrder(
  store: ObjectStore,
  file: PlanFile,
): Promise<{ label: string; shardOf: (n: number) => number }[]> {
  const out: { label: string; shardOf: (n: number) => number }[] = [];
  await scanContainer((await store.get(file.name))!, file.name, version, (d) => {
    const id = Buffer.from(d.bytes.subarray(d.idStart, d.idEnd));
    out.push({ label: labelOf(d), shardOf: (n) => shardJobOf(id, 0, id.length, n) });
  });
  return out;
}

async function readShard(
  ctx: FinalizeContext,
  file: PlanFile,
  shard: number,
  shards: number,
): Promise<{ labels: string[]; records: number; bytes: number }> {
  const labels: string[] = [];
  const r = await forEachShardDatum(ctx, w, file, version, shard, shards, (d) => {
    labels.push(labelOf(d));
    return undefined;
  });
  return { labels, ...r };
}

const idsArb = fc.array(
  fc.oneof(
    fc.integer({ min: 0, max: 50 }).map((n) => `evt-${n}`), // copies of one id
    fc.uuid(),
  ),
  { maxLength: 400 },
);

test('over all shards: every datum exactly once, each shard its own in stored order (grouped and not)', async () => {
  const store = tempStore();
  const ctx = context(store);
  await fc.assert(
    fc.asyncProperty(
      idsArb,
      fc.integer({ min: 1, max: 17 }),
      fc.boolean(),
      fc.integer({ min: 256, max: 8192 }),
      async (ids, shards, grouped, blockBytes) => {
        const file = await stage(store, ids, grouped, blockBytes);
        const stored = await storedOrder(store, file);
        const seen: string[] = [];
        for (let shard = 0; shard < shards; shard++) {
          const { labels, records, bytes } = await readShard(ctx, file, shard, shards);
          expect(labels).toEqual(stored.filter((d) => d.shardOf(shards) === shard).map((d) => d.label));
          expect(records).toBe(labels.length);
          expect(bytes).toBeGreaterThan(0);
          if (!grouped) expect(bytes).toBe(file.size);
          seen.push(...labels);
        }
        expect(seen.sort()).toEqual(stored.map((d) => d.label).sort());
        expect(new Set(seen).size).toBe(ids.length);
      },
    ),
    { seed: SEED, numRuns: 80 },
  );
});

test('a grouped file of a realistic staged size: up to 64 shards read it once plus a head each; beyond, ≤ (64 + S − 1)/64', async () => {
  const store = tempStore();
  const ctx = context(store);
  const random = seededRandom(SEED);
  // 50,000 events: the default part file's event limit (HOURGLASS_STAGE_MAX_EVENTS), 64 KiB blocks
  const ids = Array.from({ length: 50_000 }, () =>
    Array.from({ length: 4 }, () =>
      Math.floor(random() * 0x1_0000_0000)
        .toString(16)
        .padStart(8, '0'),
    ).join('-'),
  );
  const file = await stage(store, ids, true, 64 * 1024);
  const figures: string[] = [];
  for (const shards of [1, 2, 4, 8, 13, 16, 17, 40, 64, 65, 100]) {
    let bytes = 0;
    let records = 0;
    for (let shard = 0; shard < shards; shard++) {
      const r = await forEachShardDatum(ctx, w, file, version, shard, shards, () => undefined);
      bytes += r.bytes;
      records += r.records;
    }
    expect(records).toBe(ids.length);
    // up to 64 a shard job owns whole groups: every block read once, and the header by every job
    if (shards <= 64) expect(bytes).toBeLessThanOrEqual(file.size + shards * HEAD_BYTES);
    // beyond, shards cut (S − 1) groups in two, each read twice; 2% for uneven group sizes
    else expect(bytes).toBeLessThanOrEqual(((64 + shards - 1) / 64) * 1.02 * file.size + shards * HEAD_BYTES);
    figures.push(`S=${shards}: ${(bytes / file.size).toFixed(3)}`);
  }
  // the figures of the read amplification
  process.stdout.write(`shard-read amplification, ${file.size} byte file: ${figures.join(', ')}\n`);
});

test('a file whose header is longer than the first read is read on; a missing file is STAGED_FILE_CORRUPT', async () => {
  const store = tempStore();
  const ctx = context(store);
  const options: OcfWriterOptions = {
    type: version.type,
    schema: schemaTextOf(version),
    syncMarker: syncMarkerFor('long-header'),
    deflateLevel: 6,
    blockBytes: 1024,
    metadata: { 'x.padding': 'p'.repeat(3 * HEAD_BYTES) },
  };
  const writer = new GroupedOcfWriter(options);
  const ids = Array.from({ length: 500 }, (_, i) => `evt-${i}`);
  ids.forEach((id, seq) => writer.appendDatum(datum(id, seq)));
  const data = await writer.finish();
  const file = { name: stagedFileName(TYPE, w, false, 'replica-a', 'inc', 999), size: data.length };
  await store.createIfAbsent(file.name, data);
  const seen: string[] = [];
  for (let shard = 0; shard < 3; shard++) seen.push(...(await readShard(ctx, file, shard, 3)).labels);
  expect(seen.sort()).toEqual(ids.map((id, seq) => `${id}@spotify:track:${seq}`).sort());

  const missing = { name: stagedFileName(TYPE, w, false, 'replica-a', 'inc', 1000), size: 10 };
  const error = await readShard(ctx, missing, 0, 2).catch((e: unknown) => e);
  expect(isHourglassError(error, 'STAGED_FILE_CORRUPT')).toBe(true);
  expect((error as Error).message).toContain('is in the plan of');
});

/** `data` with one byte changed at `at` (a bit pattern CRC-32 always detects: any burst of up to 32 bits). */
function flipped(data: Buffer, at: number, mask: number): Buffer {
  const copy = Buffer.from(data);
  copy[at]! ^= mask;
  return copy;
}

/** The group whose bytes hold file offset `at`. */
function groupAt(data: Buffer, at: number): number {
  const header = readOcfHeader(data, 'f');
  const index = groupIndexOf(header, 'f')!;
  return index.findIndex((start, g) => at >= header.dataOffset + start && at < header.dataOffset + index[g + 1]!);
}

/** A shard job's read of a file: its labels, or the error it failed with and how many datums it visited. */
type JobRead = { labels: string[] } | { error: unknown; visited: number };

/** Every shard job's read of `file`. */
async function readJobs(ctx: FinalizeContext, file: PlanFile, shards: number): Promise<JobRead[]> {
  const out: JobRead[] = [];
  for (let shard = 0; shard < shards; shard++) {
    const labels: string[] = [];
    try {
      await forEachShardDatum(ctx, w, file, version, shard, shards, (d) => {
        labels.push(labelOf(d));
        return undefined;
      });
      out.push({ labels });
    } catch (error) {
      out.push({ error, visited: labels.length });
    }
  }
  return out;
}

test('a flipped byte in a group fails the jobs reading that group, naming it, before any datum; other jobs read', async () => {
  const store = tempStore();
  const ctx = context(store);
  await fc.assert(
    fc.asyncProperty(
      // enough datums for groups of several blocks
      fc.array(fc.uuid(), { minLength: 50, maxLength: 400 }),
      fc.integer({ min: 128, max: 2048 }),
      fc.constantFrom(0, 6),
      fc.integer({ min: 1, max: 70 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      async (ids, blockBytes, deflateLevel, shards, pick, mask) => {
        const intact = await stage(store, ids, true, blockBytes, deflateLevel);
        const data = (await store.get(intact.name))!;
        const header = readOcfHeader(data, intact.name);
        const { dataOffset } = header;
        const at = dataOffset + (pick % (data.length - dataOffset));
        const group = groupAt(data, at);
        const bad = await put(store, flipped(data, at, mask));
        // the group's bytes as read and its CRC-32 as the header says (8 hex digits each)
        const [start, end] = [group, group + 1].map((g) => dataOffset + groupIndexOf(header, 'f')![g]!);
        const read = crc32((await store.get(bad.name))!.subarray(start, end))
          .toString(16)
          .padStart(8, '0');
        const stated = header.meta[GROUP_CRCS_META_KEY]!.toString().split(',')[group]!;
        expect(read).not.toBe(stated);
        const expected = await readJobs(ctx, intact, shards);
        const got = await readJobs(ctx, bad, shards);
        expect(expected.every((job) => 'labels' in job)).toBe(true);
        for (let shard = 0; shard < shards; shard++) {
          const { first, last } = groupsOfShardJob(shard, shards);
          if (group < first || group > last) {
            expect(got[shard]).toEqual(expected[shard]);
            continue;
          }
          const failed = got[shard] as { error: unknown; visited: number };
          expect(isHourglassError(failed.error, 'STORAGE_CHECKSUM_MISMATCH')).toBe(true);
          expect((failed.error as Error).message).toBe(
            `${bad.name}: group ${group} (bytes ${start}-${end}) was read with CRC-32 ${read}, its header says ${stated}`,
          );
          expect(failed.visited).toBe(0); // nothing of the file reached the job's output
        }
      },
    ),
    { seed: SEED, numRuns: 40 },
  );
});

/** `data` as a version before group CRCs staged it: the same file without the CRC key. */
function withoutCrcs(data: Buffer): Buffer {
  const header = readOcfHeader(data, 'f');
  const meta = Object.fromEntries(Object.entries(header.meta).filter(([key]) => key !== GROUP_CRCS_META_KEY));
  return Buffer.concat([
    data.subarray(0, 4), // magic
    avro.Type.forSchema({ type: 'map', values: 'bytes' }).toBuffer(meta),
    header.sync,
    data.subarray(header.dataOffset),
  ]);
}

test('a grouped file without group CRCs (staged before them) is read by range, unchecked, as before', async () => {
  const store = tempStore();
  const ctx = context(store);
  const ids = Array.from({ length: 400 }, (_, i) => `evt-${i}`);
  const withCrcs = await stage(store, ids, true, 1024);
  const data = (await store.get(withCrcs.name))!;
  const old = await put(store, withoutCrcs(data));
  expect(readOcfHeader((await store.get(old.name))!, old.name).meta[GROUP_CRCS_META_KEY]).toBeUndefined();
  const shards = 5;
  const expected = await readJobs(ctx, withCrcs, shards);
  expect(await readJobs(ctx, old, shards)).toEqual(expected);
  expect((await readShard(ctx, old, 0, shards)).bytes).toBeLessThan(old.size);

  // a byte of one track id changed (the file still parses): read unchecked as before; with the key, refused
  const at = data.indexOf('spotify:track:123', readOcfHeader(data, 'f').dataOffset) + 'spotify:track:'.length;
  const oldJobs = await readJobs(ctx, await put(store, withoutCrcs(flipped(data, at, 0x01))), shards);
  const newJobs = await readJobs(ctx, await put(store, flipped(data, at, 0x01)), shards);
  const id = Buffer.from('evt-123');
  const touched = shardJobOf(id, 0, id.length, shards);
  const misread = expected.map((job, shard) =>
    shard === touched && 'labels' in job
      ? { labels: job.labels.map((l) => l.replace(':track:123', ':track:023')) }
      : job,
  );
  expect(oldJobs).toEqual(misread);
  expect(newJobs.map((job) => ('error' in job ? 'refused' : job))).toEqual(
    expected.map((job, shard) => (shard === touched ? 'refused' : job)),
  );
  expect(isHourglassError((newJobs[touched] as { error: unknown }).error, 'STORAGE_CHECKSUM_MISMATCH')).toBe(true);
});

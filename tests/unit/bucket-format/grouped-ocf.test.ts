import { crc32 } from 'node:zlib';
import avro from 'avsc';
import fc from 'fast-check';
import { SchemaRegistry, type EventRecord } from '@hourglass/schemas';
import {
  GROUPS_META_KEY,
  GROUP_CRCS_META_KEY,
  GroupedOcfWriter,
  HASH_GROUPS,
  eventIdOf,
  groupCrcsOf,
  groupIndexOf,
  groupOf,
  groupsOfShard,
  ocfHeaderIn,
  readOcfHeader,
  scanBlocks,
  schemaTextOf,
  shardOf,
  syncMarkerFor,
} from '@hourglass/bucket-format';

/**
 * Staged files grouped by event id hash (grouped-ocf.ts): valid Avro container files any reader
 * reads, whose datums are the appended ones stably sorted by group, with a block cut at every
 * group boundary, the `hourglass.groups` index pointing at each group's blocks and
 * `hourglass.groups.crc32` holding each group's CRC-32; and the groups a shard's hash range
 * overlaps (shard-hash.ts).
 */
const SEED = 0x15_0001;
const latest = SchemaRegistry.load('schemas').get('track_played').latest;
const T0 = Date.UTC(2026, 0, 1);

interface Appended {
  id: string;
  /** Arrival position: tells copies of one id apart. */
  seq: number;
  pad: string;
}

function record(a: Appended): EventRecord {
  return {
    meta: { event_id: a.id, gateway_ts: T0 + a.seq, client_ts: null, gateway_id: 'gw' },
    user_id: `user-${a.pad}`,
    track_id: `t-${a.seq}`,
    ms_played: a.seq,
    reason_start: 'CLICK_ROW',
    reason_end: 'TRACK_DONE',
    shuffle: false,
    platform: 'WEB',
    country: 'SE',
    offline: false,
    context_uri: null,
  } as unknown as EventRecord;
}

const idBytes = (id: string): Buffer => Buffer.from(id, 'utf8');
const groupOfId = (id: string): number => groupOf(idBytes(id), 0, idBytes(id).length);
const label = (id: string, track: string): string => `${id}#${track.slice(2)}`;

async function readWithAvsc(file: Buffer): Promise<string[]> {
  const decoder = new avro.streams.BlockDecoder();
  const out: string[] = [];
  decoder.on('data', (r: { meta: { event_id: string }; track_id: string }) =>
    out.push(label(r.meta.event_id, r.track_id)),
  );
  const done = new Promise<void>((resolve, reject) => decoder.on('end', resolve).on('error', reject));
  decoder.end(file);
  await done;
  return out;
}

const appendedArb = fc
  .array(
    fc.record({
      // a small pool of ids, so copies of one id occur; and arbitrary ones
      id: fc.oneof(
        fc.integer({ min: 0, max: 30 }).map((n) => `evt-${n}`),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
      ),
      pad: fc.string({ maxLength: 200 }),
    }),
    { maxLength: 300 },
  )
  .map((xs) => xs.map((x, seq): Appended => ({ ...x, seq })));

test('any Avro reader reads the appended records, stably grouped; the index finds each group alone', async () => {
  await fc.assert(
    fc.asyncProperty(
      appendedArb,
      fc.integer({ min: 64, max: 4096 }),
      fc.constantFrom(0, 6),
      fc.boolean(),
      async (appended, blockBytes, deflateLevel, asDatums) => {
        const w = new GroupedOcfWriter({
          type: latest.type,
          schema: schemaTextOf(latest),
          syncMarker: syncMarkerFor('grouped'),
          deflateLevel,
          blockBytes,
        });
        let rawBytes = 0;
        for (const a of appended) {
          const datum = latest.type.toBuffer(record(a));
          rawBytes += datum.length;
          if (asDatums) w.appendDatum(datum);
          else w.appendRecord(record(a));
        }
        expect([w.records, w.rawBytes]).toEqual([appended.length, rawBytes]);
        const file = await w.finish();

        const byGroup = Array.from({ length: HASH_GROUPS }, (_, g) =>
          appended.filter((a) => groupOfId(a.id) === g).map((a) => label(a.id, `t-${a.seq}`)),
        );
        expect(await readWithAvsc(file)).toEqual(byGroup.flat());

        const header = readOcfHeader(file, 'grouped');
        const index = groupIndexOf(header, 'grouped')!;
        expect(header.meta[GROUPS_META_KEY]!.toString()).toBe(index.join(','));
        expect(header.dataOffset + index[HASH_GROUPS]!).toBe(file.length);
        for (let g = 0; g < HASH_GROUPS; g++) {
          // a slice that did not start and end at block boundaries would fail its sync markers
          const blocks = file.subarray(header.dataOffset + index[g]!, header.dataOffset + index[g + 1]!);
          const seen: string[] = [];
          await scanBlocks(header, blocks, 'grouped', latest, (d) => {
            seen.push(label(eventIdOf(d), latest.type.fromBuffer(d.bytes).track_id as string));
          });
          expect(seen).toEqual(byGroup[g]);
        }
      },
    ),
    { seed: SEED, numRuns: 60 },
  );
});

/**
 * CRC-32 (IEEE: reflected, polynomial 0xedb88320, initial and final XOR 0xffffffff) a bit at a
 * time, straight from its definition: a reference written apart from zlib's.
 */
function referenceCrc(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

test('the group CRCs are CRC-32: the check value, the bitwise reference, continued over pieces', () => {
  // the check value of CRC-32 (IEEE), as catalogued: the CRC of the ASCII digits 1 to 9
  expect(referenceCrc(Buffer.from('123456789'))).toBe(0xcbf43926);
  expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  expect(crc32(Buffer.alloc(0))).toBe(0);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (bytes, cut) => {
      const data = Buffer.from(bytes);
      const at = data.length === 0 ? 0 : cut % data.length;
      expect(crc32(data)).toBe(referenceCrc(data));
      // as the writer adds each block of a group
      expect(crc32(data.subarray(at), crc32(data.subarray(0, at)))).toBe(crc32(data));
    }),
    { seed: SEED, numRuns: 500 },
  );
});

test('the header holds the CRC-32 of each group: of exactly the bytes a ranged read of the group returns', async () => {
  await fc.assert(
    fc.asyncProperty(
      appendedArb,
      fc.integer({ min: 64, max: 4096 }),
      fc.constantFrom(0, 6),
      async (appended, blockBytes, deflateLevel) => {
        const w = new GroupedOcfWriter({
          type: latest.type,
          syncMarker: syncMarkerFor('crcs'),
          deflateLevel,
          blockBytes,
        });
        for (const a of appended) w.appendRecord(record(a));
        const file = await w.finish();
        const header = readOcfHeader(file, 'crcs');
        const index = groupIndexOf(header, 'crcs')!;
        const groupBytes = (g: number): Buffer =>
          file.subarray(header.dataOffset + index[g]!, header.dataOffset + index[g + 1]!);
        // the writer adds block by block as each is compressed; here each group's bytes at once, and by the reference
        const expected = Array.from({ length: HASH_GROUPS }, (_, g) => crc32(groupBytes(g)));
        expect(expected).toEqual(Array.from({ length: HASH_GROUPS }, (_, g) => referenceCrc(groupBytes(g))));
        expect(groupCrcsOf(header, 'crcs')).toEqual(expected);
        const text = expected.map((crc) => crc.toString(16).padStart(8, '0')).join(',');
        expect(header.meta[GROUP_CRCS_META_KEY]!.toString()).toBe(text);
      },
    ),
    { seed: SEED, numRuns: 60 },
  );
});

test('an empty grouped file is a valid container with an all-zero index', async () => {
  const w = new GroupedOcfWriter({
    type: latest.type,
    syncMarker: syncMarkerFor('empty'),
    deflateLevel: 0,
    blockBytes: 1024,
  });
  const file = await w.finish();
  expect(await readWithAvsc(file)).toEqual([]);
  expect(groupIndexOf(readOcfHeader(file, 'empty'), 'empty')).toEqual(new Array(HASH_GROUPS + 1).fill(0));
});

test('a malformed group index is STAGED_FILE_CORRUPT', () => {
  const header = readOcfHeader(
    Buffer.concat([
      Buffer.from('Obj\x01', 'latin1'),
      avro.Type.forSchema({ type: 'map', values: 'bytes' }).toBuffer({
        'avro.schema': Buffer.from('"string"'),
        [GROUPS_META_KEY]: Buffer.from('0,5,3'),
      }),
      syncMarkerFor('x'),
    ]),
    'bad',
  );
  expect(() => groupIndexOf(header, 'bad')).toThrow(expect.objectContaining({ code: 'STAGED_FILE_CORRUPT' }));
});

test('malformed group CRCs are STAGED_FILE_CORRUPT; none (staged before them) is undefined', () => {
  const headerWith = (crcs: string | undefined): ReturnType<typeof readOcfHeader> =>
    readOcfHeader(
      Buffer.concat([
        Buffer.from('Obj\x01', 'latin1'),
        avro.Type.forSchema({ type: 'map', values: 'bytes' }).toBuffer({
          'avro.schema': Buffer.from('"string"'),
          ...(crcs === undefined ? {} : { [GROUP_CRCS_META_KEY]: Buffer.from(crcs) }),
        }),
        syncMarkerFor('x'),
      ]),
      'bad',
    );
  // the key is part of the stored format: renaming it turns every staged file's groups unchecked
  expect(GROUP_CRCS_META_KEY).toBe('hourglass.groups.crc32');
  const good = new Array<string>(HASH_GROUPS).fill('0000abcd');
  expect(groupCrcsOf(headerWith(good.join(',')), 'ok')).toEqual(new Array(HASH_GROUPS).fill(0xabcd));
  expect(groupCrcsOf(headerWith(undefined), 'old')).toBeUndefined();
  for (const bad of [
    good.slice(1).join(','),
    [...good.slice(1), 'abcd'].join(','),
    [...good.slice(1), 'ABCD0000'].join(','),
  ]) {
    expect(() => groupCrcsOf(headerWith(bad), 'bad')).toThrow(expect.objectContaining({ code: 'STAGED_FILE_CORRUPT' }));
  }
});

test('ocfHeaderIn: undefined for every prefix that ends inside the header, the header once it is whole', async () => {
  const w = new GroupedOcfWriter({
    type: latest.type,
    schema: schemaTextOf(latest),
    syncMarker: syncMarkerFor('prefix'),
    deflateLevel: 0,
    blockBytes: 1024,
  });
  w.appendRecord(record({ id: 'a', seq: 0, pad: '' }));
  const file = await w.finish();
  const { dataOffset } = readOcfHeader(file, 'f');
  for (let n = 4; n < dataOffset; n++) expect(ocfHeaderIn(file.subarray(0, n), 'f')).toBeUndefined();
  expect(ocfHeaderIn(file.subarray(0, dataOffset), 'f')?.dataOffset).toBe(dataOffset);
});

test('shardOf keeps its bits (it decides stored output order)', () => {
  const ids = ['a', 'evt-1', '0190f6b2-7c1e-7000-8000-000000000000', 'ünïcode'];
  expect(ids.map((id) => shardOf(idBytes(id), 0, idBytes(id).length, 1_000_003))).toEqual(PINNED);
});

test('a shard of S holds only ids of the groups groupsOfShard names; the ranges tile the groups', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 48 }), fc.integer({ min: 1, max: 200 }), (bytes, shards) => {
      const id = Buffer.from(bytes);
      const shard = shardOf(id, 0, id.length, shards);
      const { first, last } = groupsOfShard(shard, shards);
      const group = groupOf(id, 0, id.length);
      return group >= first && group <= last;
    }),
    { seed: SEED, numRuns: 50_000 },
  );
  for (let shards = 1; shards <= 200; shards++) {
    const ranges = Array.from({ length: shards }, (_, s) => groupsOfShard(s, shards));
    expect(ranges[0]!.first).toBe(0);
    expect(ranges[shards - 1]!.last).toBe(HASH_GROUPS - 1);
    // adjacent shards share at most the one group their boundary cuts
    for (let s = 1; s < shards; s++) expect(ranges[s]!.first - ranges[s - 1]!.last).toBeGreaterThanOrEqual(0);
    for (let s = 1; s < shards; s++) expect(ranges[s]!.first - ranges[s - 1]!.last).toBeLessThanOrEqual(1);
  }
  expect(() => groupsOfShard(3, 3)).toThrow(RangeError);
});

/** From shardOf before it moved here (services/consumer/src/finalize/shard-spill.ts at a5510f9). */
const PINNED = [103526, 628680, 963202, 192902];

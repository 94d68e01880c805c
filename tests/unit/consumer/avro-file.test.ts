import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import fc from 'fast-check';
import { isHourglassError } from '@hourglass/common';
import { SchemaRegistry, type EventRecord } from '@hourglass/schemas';
import {
  OcfWriter,
  eventIdOf,
  ocfBlocks,
  readOcfHeader,
  scanContainer,
  schemaTextOf,
  syncMarkerFor,
} from '@hourglass/bucket-format';
import { makeRecord } from '../../consumer/support';
import { validValue } from '../../hostile/arbitraries';
import { T0, tempDir } from '../../support/fixtures';

/** The container file writer against avsc's own file reader (embedded schema only). */
const registry = SchemaRegistry.load('schemas');
const latest = registry.get('track_played').latest;

function records(n: number): EventRecord[] {
  return Array.from({ length: n }, (_, i) =>
    makeRecord(latest, `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, T0 + i, i),
  );
}

function writer(name = 'x', deflateLevel = 6): OcfWriter {
  return new OcfWriter({
    type: latest.type,
    schema: schemaTextOf(latest),
    syncMarker: syncMarkerFor(name),
    deflateLevel,
    blockBytes: 1024,
  });
}

async function readWithAvsc(data: Buffer): Promise<{ records: EventRecord[]; codec: string; schema: avro.Schema }> {
  const file = join(tempDir('ocf'), 'f.avro');
  writeFileSync(file, data);
  const decoder = avro.createFileDecoder(file);
  const out: EventRecord[] = [];
  let codec = '';
  let schema: avro.Schema = 'null';
  decoder.on('metadata', (type: avro.Type, c: string) => {
    codec = c;
    schema = type.schema();
  });
  decoder.on('data', (r: EventRecord) => out.push(r));
  await new Promise<void>((resolve, reject) => decoder.on('end', resolve).on('error', reject));
  return { records: out, codec, schema };
}

test.each([
  [6, 'deflate'],
  [1, 'deflate'],
  [0, 'null'],
])(
  'deflate level %i: a standard %s container file, read by avsc with the embedded schema only',
  async (level, codec) => {
    const rs = records(500);
    const w = writer('x', level);
    for (const r of rs) w.appendRecord(r);
    const data = await w.finish();
    const read = await readWithAvsc(data);
    expect(read.codec).toBe(codec);
    expect(read.records).toHaveLength(500);
    expect(read.records.map((r) => r.meta.event_id)).toEqual(rs.map((r) => r.meta.event_id));
    expect(read.records[7]).toEqual(latest.type.fromBuffer(latest.type.toBuffer(rs[7])));
    // the header is the .avsc itself: logical types, docs and enum defaults, for every reader
    const header = readOcfHeader(data, 'f');
    expect(header.schema).toEqual(JSON.parse(readFileSync(latest.file, 'utf8')));
    expect(JSON.stringify(header.schema)).toContain('"logicalType":"timestamp-millis"');
    expect([...ocfBlocks(data, header, 'f')].length).toBeGreaterThan(10); // 1 KiB blocks
  },
);

test('raw datums and records give the same bytes; same input and name, same bytes', async () => {
  const rs = records(300);
  const a = writer();
  const b = writer();
  for (const r of rs) a.appendRecord(r);
  for (const r of rs) b.appendDatum(latest.type.toBuffer(r));
  const [da, db] = [await a.finish(), await b.finish()];
  expect(da.equals(db)).toBe(true);
  const c = writer('another name');
  for (const r of rs) c.appendRecord(r);
  expect((await c.finish()).equals(da)).toBe(false); // another sync marker
});

test('many writers deflating at once (queued past the in-flight limit) write the same bytes as one at a time', async () => {
  const rs = records(400);
  const one = async (i: number): Promise<Buffer> => {
    const w = writer(`w${i}`, 1 + (i % 9));
    for (const r of rs) w.appendRecord(r);
    return w.finish();
  };
  const sequential: Buffer[] = [];
  for (let i = 0; i < 12; i++) sequential.push(await one(i));
  const concurrent = await Promise.all(Array.from({ length: 12 }, (_, i) => one(i)));
  expect(concurrent.map((d, i) => d.equals(sequential[i]!))).toEqual(Array(12).fill(true));
  expect((await readWithAvsc(concurrent[11]!)).records).toHaveLength(400);
});

test('a record larger than a block gets a block of its own', async () => {
  const big = { ...records(1)[0]!, user_id: 'u'.repeat(5000) };
  const w = writer();
  w.appendRecord(records(2)[1]);
  w.appendRecord(big);
  w.appendRecord(records(3)[2]);
  const read = await readWithAvsc(await w.finish());
  expect(read.records.map((r) => (r.user_id as string).length)).toEqual([6, 5000, 6]);
});

test('scanContainer hands out each datum with its meta, resolving older files to the target schema', async () => {
  const v1 = registry.get('track_played').versions[0]!;
  const old = new OcfWriter({ type: v1.type, syncMarker: syncMarkerFor('old'), deflateLevel: 1, blockBytes: 512 });
  const rs = Array.from({ length: 50 }, (_, i) => makeRecord(v1, `id-${i}`, T0 + i, i));
  for (const r of rs) old.appendRecord(r);
  const seen: { id: string; gatewayTs: number; record: unknown }[] = [];
  await scanContainer(await old.finish(), 'old', latest, (datum) => {
    seen.push({ id: eventIdOf(datum), gatewayTs: datum.gatewayTs, record: latest.type.fromBuffer(datum.bytes) });
  });
  expect(seen.map((s) => s.id)).toEqual(rs.map((r) => r.meta.event_id));
  expect(seen.map((s) => s.gatewayTs)).toEqual(rs.map((r) => r.meta.gateway_ts));
  expect(seen[0]!.record).toMatchObject({ offline: false, context_uri: null, track_id: 'track-0' });
});

test('scanContainer reads event ids and gateway_ts by hand exactly as avsc decodes them (fast-check, seed 1607)', async () => {
  // records of every payload shape of the schema; ids of any length and any UTF-8; gateway_ts across
  // the long range the consumer reads exactly (|n| < 2^52, the documented limit); client_ts null or set
  const LONG = 2 ** 52 - 1;
  const record = fc.record({
    value: validValue(latest.type, LONG),
    id: fc.oneof(fc.constant(''), fc.string({ unit: 'binary', maxLength: 120 }), fc.string({ maxLength: 8 })),
    ts: fc.oneof(
      fc.integer(),
      fc.constantFrom(0, LONG, -LONG),
      fc.double({ min: -LONG, max: LONG, noNaN: true }).map(Math.trunc),
    ),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(record, { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 0, max: 9 }),
      async (items, level) => {
        const rs = items.map(({ value, id, ts }) => {
          // a new record: fast-check may hand one generated value to several runs while shrinking
          const r = value as EventRecord;
          return { ...r, meta: { ...r.meta, event_id: id, gateway_ts: ts || 0 } } as EventRecord; // no -0: encodes as 0
        });
        const w = writer('fuzz', level);
        for (const r of rs) w.appendRecord(r);
        const got: { id: string; ts: number }[] = [];
        await scanContainer(await w.finish(), 'fuzz', latest, (d) => {
          expect(latest.type.fromBuffer(d.bytes)).toEqual(latest.type.fromBuffer(latest.type.toBuffer(rs[got.length])));
          got.push({ id: eventIdOf(d), ts: d.gatewayTs });
        });
        expect(got).toEqual(rs.map((r) => ({ id: r.meta.event_id, ts: r.meta.gateway_ts })));
      },
    ),
    { seed: 1607, numRuns: 150 },
  );
});

test('corrupt files are refused with STAGED_FILE_CORRUPT', async () => {
  const w = writer();
  for (const r of records(100)) w.appendRecord(r);
  const data = await w.finish();
  const header = readOcfHeader(data, 'f');
  const errorOf = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (e) {
      return e;
    }
    return undefined;
  };
  expect(
    isHourglassError(
      errorOf(() => readOcfHeader(Buffer.from('nope'), 'f')),
      'STAGED_FILE_CORRUPT',
    ),
  ).toBe(true);
  const badSync = Buffer.from(data);
  badSync[badSync.length - 1] = (badSync[badSync.length - 1] ?? 0) ^ 0xff;
  expect(
    isHourglassError(
      errorOf(() => [...ocfBlocks(badSync, header, 'f')]),
      'STAGED_FILE_CORRUPT',
    ),
  ).toBe(true);
  const truncated = data.subarray(0, data.length - 20);
  expect(
    isHourglassError(
      errorOf(() => [...ocfBlocks(truncated, header, 'f')]),
      'STAGED_FILE_CORRUPT',
    ),
  ).toBe(true);
});

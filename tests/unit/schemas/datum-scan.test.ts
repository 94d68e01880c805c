import avro from 'avsc';
import fc from 'fast-check';
import { SchemaRegistry, compileSkipper, encodeRecords, scanEvents, type EventRecord } from '@hourglass/schemas';
import { validValue } from '../../hostile/arbitraries';

/**
 * The skipper's contract, checked against avsc: it accepts a datum only when decoding it and
 * encoding the value back gives the very same bytes, so the consumer may copy accepted datums
 * instead of decoding them. Anything else must be refused (−1), never wrongly accepted.
 */
const registry = SchemaRegistry.load('schemas');
/** fast-check's seed for every property here: a failure replays exactly. */
const SEED = 1603;
/** The largest long the skipper's fast path accepts (MAX_EXACT_LONG in datum-scan.ts). */
const FAST_PATH_LONG = 2 ** 52 - 1;
const versions = registry.eventTypes().flatMap((t) => registry.get(t).versions);

/** Every type avsc has, in one record: what future schemas may use. */
const everything = avro.Type.forSchema({
  type: 'record',
  name: 'Everything',
  fields: [
    { name: 'n', type: 'null' },
    { name: 'b', type: 'boolean' },
    { name: 'i', type: 'int' },
    { name: 'l', type: 'long' },
    { name: 'f', type: 'float' },
    { name: 'd', type: 'double' },
    { name: 's', type: 'string' },
    { name: 'y', type: 'bytes' },
    { name: 'x', type: { type: 'fixed', name: 'Four', size: 4 } },
    { name: 'e', type: { type: 'enum', name: 'E', symbols: ['A', 'B', 'C'] } },
    { name: 'a', type: { type: 'array', items: ['null', 'string'] } },
    { name: 'u', type: ['null', 'long', { type: 'record', name: 'Inner', fields: [{ name: 'q', type: 'int' }] }] },
  ],
});

/** Decoding then encoding gives the same bytes: the property an accepted datum must have. */
function roundTripsExactly(type: avro.Type, datum: Buffer): boolean {
  try {
    const { value, offset } = type.decode(datum, 0);
    return offset === datum.length && type.toBuffer(value).equals(datum);
  } catch {
    return false;
  }
}

function hasNaN(value: unknown): boolean {
  if (typeof value === 'number') return Number.isNaN(value);
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return false;
  return Object.values(value).some(hasNaN);
}

/** One byte-level change: flip a bit, set, insert or delete a byte, or truncate, at `at` (modulo the length). */
interface Mutation {
  kind: 'flip' | 'set' | 'insert' | 'delete' | 'truncate';
  at: number;
  byte: number;
  bit: number;
}
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
  bit: fc.integer({ min: 0, max: 7 }),
});

function mutate(buf: Buffer, m: Mutation): Buffer {
  if (buf.length === 0) return buf;
  const at = m.at % buf.length;
  switch (m.kind) {
    case 'flip':
      return Buffer.concat([buf.subarray(0, at), Buffer.from([buf[at]! ^ (1 << m.bit)]), buf.subarray(at + 1)]);
    case 'set':
      return Buffer.concat([buf.subarray(0, at), Buffer.from([m.byte]), buf.subarray(at + 1)]);
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), Buffer.from([m.byte]), buf.subarray(at)]);
    case 'delete':
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)]);
    case 'truncate':
      return buf.subarray(0, at);
  }
}

describe.each([
  ...versions.map((v) => [`${v.eventType} v${v.version}`, v.type] as const),
  ['every Avro type but map', everything] as const,
])('%s', (_name, type) => {
  const skip = compileSkipper(type)!;
  const values = validValue(type);
  /** Longs the fast path takes: to ±(2^52 − 1); beyond, it refuses and the consumer decodes instead. */
  const fastPathValues = validValue(type, FAST_PATH_LONG);

  test('a skipper exists and accepts every valid datum of the fast path, ending exactly at its end (2,000 runs)', () => {
    expect(skip).toBeDefined();
    fc.assert(
      fc.property(fastPathValues, (value) => {
        const datum = type.toBuffer(value);
        // NaN (float or double) is the one valid value refused: a NaN's payload need not survive decode + encode
        return skip(datum, 0) === datum.length || !roundTripsExactly(type, datum) || hasNaN(value);
      }),
      { seed: SEED, numRuns: 2_000 },
    );
  });

  test('fuzz: whatever it accepts after 1 to 3 mutations, decode + encode gives back the same bytes (5,000 runs)', () => {
    let accepted = 0;
    fc.assert(
      fc.property(values, fc.array(mutation, { minLength: 1, maxLength: 3 }), (value, mutations) => {
        const datum = mutations.reduce(mutate, type.toBuffer(value));
        const end = skip(datum, 0);
        if (end < 0) return true;
        accepted++;
        return roundTripsExactly(type, datum.subarray(0, end));
      }),
      { seed: SEED, numRuns: 5_000 },
    );
    expect(accepted).toBeGreaterThan(0); // the mutations do not only produce garbage
  });
});

test.each([
  ['a boolean byte other than 0 or 1', { type: 'boolean' }, [2]],
  ['an enum index out of range', { type: 'enum', name: 'E', symbols: ['A'] }, [2]],
  ['a negative enum index', { type: 'enum', name: 'E', symbols: ['A'] }, [1]],
  ['a union branch out of range', ['null', 'int'], [4]],
  ['a varint with a needless zero byte', 'long', [0x80, 0x00]],
  ['an int beyond 32 bits', 'int', [0xfe, 0xff, 0xff, 0xff, 0x1f]],
  ['a long beyond what a double holds exactly', 'long', [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
  ['invalid UTF-8', 'string', [4, 0x61, 0xc3, 0x28, 0x61]],
  ['a string longer than the buffer', 'string', [10, 0x61]],
  ['a NaN float', 'float', [0x01, 0x00, 0xc0, 0x7f]],
  ['an array in two blocks', { type: 'array', items: 'int' }, [2, 2, 2, 4, 0]],
  ['an array of one item without its end', { type: 'array', items: 'int' }, [2, 2]],
] as [string, avro.Schema, number[]][])('refused: %s', (_name, schema, bytes) => {
  const type = avro.Type.forSchema(schema);
  expect(compileSkipper(type)!(Buffer.from(bytes), 0)).toBe(-1);
});

test('maps have no skipper: an object does not keep the key order of the datum', () => {
  expect(compileSkipper(avro.Type.forSchema({ type: 'map', values: 'int' }))).toBeUndefined();
});

test('scanEvents: each datum end and gateway_ts of a bundle; all or nothing', () => {
  const version = registry.get('page_viewed').latest;
  const records = fc.sample(validValue(version.type, FAST_PATH_LONG), { seed: SEED, numRuns: 50 }).map((value, i) => {
    const r = value as EventRecord;
    r.meta = { event_id: `id-${i}`, gateway_ts: 1_700_000_000_000 + i * 7, client_ts: null, gateway_id: 'gw' };
    return r;
  });
  const { data } = encodeRecords(version, records);
  const skip = compileSkipper(version.type)!;
  const scanned = scanEvents(data, records.length, skip)!;
  expect(scanned.gatewayTs).toEqual(records.map((r) => r.meta.gateway_ts));
  let start = 0;
  scanned.ends.forEach((end, i) => {
    expect(version.type.fromBuffer(data.subarray(start, end))).toEqual(
      version.type.fromBuffer(version.type.toBuffer(records[i])),
    );
    start = end;
  });
  expect(scanEvents(Buffer.concat([data, Buffer.from([0])]), records.length, skip)).toBeUndefined(); // a trailing byte
  expect(scanEvents(data, records.length + 1, skip)).toBeUndefined(); // fewer datums than counted
  expect(scanEvents(data, records.length - 1, skip)).toBeUndefined(); // more
});

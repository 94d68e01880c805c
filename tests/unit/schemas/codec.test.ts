import { deflateRawSync } from 'node:zlib';
import { isHourglassError, seededRandom, type ErrorCode } from '@hourglass/common';
import {
  Attr,
  SchemaRegistry,
  decodeBundle,
  encodeRecords,
  type BundleCodec,
  type EncodedBundle,
  type EventRecord,
  type SchemaVersion,
} from '@hourglass/schemas';

/**
 * The Pub/Sub message codec: random records of every type survive encode/decode, a
 * single plain record is exactly Avro binary, and corrupt input always ends in a
 * catalogued HourglassError, never a raw exception.
 */
const registry = SchemaRegistry.load('schemas');
const newest: SchemaVersion[] = registry.eventTypes().map((t) => registry.get(t).latest);
const codecs: BundleCodec[] = ['null', 'deflate'];
const batchSizes = [1, 2, 37, 1000];

function randomRecords(version: SchemaVersion, n: number): EventRecord[] {
  return Array.from({ length: n }, () => version.type.random() as unknown as EventRecord);
}

/** Runs decode and returns the error code it threw, failing on anything but an HourglassError. */
function decodeError(data: Buffer, attributes: Record<string, string>): ErrorCode | 'decoded' {
  try {
    decodeBundle(registry, data, attributes);
    return 'decoded';
  } catch (e) {
    if (isHourglassError(e)) return e.code;
    throw new Error(`raw exception escaped decodeBundle: ${String(e)}`);
  }
}

describe.each(newest.map((v) => [v.eventType, v] as const))('%s: random records', (_type, version) => {
  test.each(codecs.flatMap((codec) => batchSizes.map((size) => [codec, size] as const)))(
    'codec %s, batch of %i: decode(encode(x)) equals x',
    (codec, size) => {
      const records = randomRecords(version, size);
      const bundle = encodeRecords(version, records, codec);
      expect(bundle.attributes[Attr.count]).toBe(String(size));
      expect(bundle.attributes[Attr.codec]).toBe(codec);
      const decoded = decodeBundle(registry, bundle.data, bundle.attributes);
      expect(decoded.eventType).toBe(version.eventType);
      expect(decoded.records).toHaveLength(size);
      expect(decoded.records).toEqual(records);
    },
  );

  test('a batch of one with codec null is exactly the plain Avro binary of the record', () => {
    for (const record of randomRecords(version, 50)) {
      const bundle = encodeRecords(version, [record], 'null');
      expect(bundle.data.equals(version.type.toBuffer(record))).toBe(true);
      expect(version.type.fromBuffer(bundle.data)).toEqual(record);
    }
  });

  test('attributes carry type, fingerprint, first event id and the smallest gateway_ts', () => {
    const records = randomRecords(version, 5);
    records.forEach((r, i) => (r.meta.gateway_ts = 1_000_000 + ((i * 7) % 5) * 1000));
    const bundle = encodeRecords(
      version,
      records,
      'deflate',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    );
    expect(bundle.attributes).toEqual({
      [Attr.eventType]: version.eventType,
      [Attr.fingerprint]: version.fingerprint,
      [Attr.eventId]: records[0]!.meta.event_id,
      [Attr.gatewayTs]: '1000000',
      [Attr.count]: '5',
      [Attr.codec]: 'deflate',
      [Attr.traceparent]: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
  });
});

test('an empty bundle is refused at encode time', () => {
  expect(() => encodeRecords(newest[0]!, [])).toThrow(RangeError);
});

describe('corrupt messages end in a catalogued error', () => {
  const version = registry.get('track_played').latest;
  const records = randomRecords(version, 3);
  const plain = encodeRecords(version, records, 'null');
  const deflated = encodeRecords(version, records, 'deflate');

  test('every truncation of a plain bundle is MESSAGE_CORRUPT', () => {
    // Decoding reads a prefix deterministically, so any shorter body must run out.
    for (let len = 0; len < plain.data.length; len++) {
      expect(decodeError(plain.data.subarray(0, len), plain.attributes)).toBe('MESSAGE_CORRUPT');
    }
  });

  test('every truncation of a deflated bundle is MESSAGE_CORRUPT', () => {
    for (let len = 0; len < deflated.data.length; len++) {
      expect(decodeError(deflated.data.subarray(0, len), deflated.attributes)).toBe('MESSAGE_CORRUPT');
    }
  });

  test.each([1, 2, 100])('%i trailing bytes are MESSAGE_CORRUPT', (extra) => {
    const data = Buffer.concat([plain.data, Buffer.alloc(extra, 0x02)]);
    expect(decodeError(data, plain.attributes)).toBe('MESSAGE_CORRUPT');
    const inflatedWithTrailing = deflateRawSync(data);
    expect(decodeError(inflatedWithTrailing, deflated.attributes)).toBe('MESSAGE_CORRUPT');
  });

  test('bad deflate data is MESSAGE_CORRUPT', () => {
    // 0xff: final block with the reserved block type 11.
    expect(decodeError(Buffer.from([0xff, 0xff, 0xff, 0xff]), deflated.attributes)).toBe('MESSAGE_CORRUPT');
    // A plain Avro body labelled deflate.
    expect(decodeError(plain.data, deflated.attributes)).toBe('MESSAGE_CORRUPT');
  });

  test('a deflate body inflating beyond the bound is MESSAGE_CORRUPT (deflate bomb)', () => {
    const bomb = deflateRawSync(Buffer.alloc(1024 * 1024));
    expect(bomb.length).toBeLessThan(2048);
    expect(() =>
      decodeBundle(registry, bomb, { ...deflated.attributes, [Attr.count]: '1' }, { maxInflatedBytes: 64 * 1024 }),
    ).toThrow(expect.objectContaining({ code: 'MESSAGE_CORRUPT', message: expect.stringMatching(/65536 bytes/) }));
  });

  test('an unknown fingerprint is SCHEMA_UNKNOWN_FINGERPRINT', () => {
    const attributes = { ...plain.attributes, [Attr.fingerprint]: 'f'.repeat(64) };
    expect(decodeError(plain.data, attributes)).toBe('SCHEMA_UNKNOWN_FINGERPRINT');
  });

  test('a missing fingerprint is MESSAGE_CORRUPT', () => {
    const attributes: Record<string, string> = { ...plain.attributes };
    delete attributes[Attr.fingerprint];
    expect(decodeError(plain.data, attributes)).toBe('MESSAGE_CORRUPT');
  });

  test('an event_type that contradicts the fingerprint is MESSAGE_CORRUPT', () => {
    expect(decodeError(plain.data, { ...plain.attributes, [Attr.eventType]: 'page_viewed' })).toBe('MESSAGE_CORRUPT');
  });

  test('an unknown codec is MESSAGE_CORRUPT', () => {
    expect(decodeError(plain.data, { ...plain.attributes, [Attr.codec]: 'snappy' })).toBe('MESSAGE_CORRUPT');
  });

  test.each([
    ['one more than sent', '4'],
    ['one fewer than sent', '2'],
    ['zero', '0'],
    ['negative', '-1'],
    ['not a number', 'three'],
    ['exponent notation', '3e0'],
    ['hex', '0x3'],
    ['padded', ' 3'],
    ['fraction', '3.0'],
    ['beyond the body length', '999999'],
    ['beyond an array length', '4294967296'],
    ['absurd', '1e308'],
  ])('count %s (%s) is MESSAGE_CORRUPT', (_name, count) => {
    expect(decodeError(plain.data, { ...plain.attributes, [Attr.count]: count })).toBe('MESSAGE_CORRUPT');
    expect(decodeError(deflated.data, { ...deflated.attributes, [Attr.count]: count })).toBe('MESSAGE_CORRUPT');
  });

  test('absent count and codec attributes mean one plain datum', () => {
    const single = encodeRecords(version, [records[0]!], 'null');
    const attributes: Record<string, string> = { [Attr.fingerprint]: single.attributes[Attr.fingerprint]! };
    expect(decodeBundle(registry, single.data, attributes).records).toEqual([records[0]]);
  });

  test('random byte damage either decodes or throws a catalogued error, never a raw exception', () => {
    const seed = 20240601;
    const random = seededRandom(seed);
    const outcomes = new Map<string, number>();
    for (const v of newest) {
      for (let i = 0; i < 200; i++) {
        const codec: BundleCodec = i % 2 === 0 ? 'null' : 'deflate';
        const bundle: EncodedBundle = encodeRecords(v, randomRecords(v, 1 + (i % 4)), codec);
        const data = Buffer.from(bundle.data);
        const flips = 1 + Math.floor(random() * 3);
        for (let f = 0; f < flips; f++) data[Math.floor(random() * data.length)] = Math.floor(random() * 256);
        const outcome = decodeError(data, bundle.attributes);
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }
    }
    // Only these outcomes may occur; Avro has no checksum, so some damage still decodes.
    expect([...outcomes.keys()].every((o) => o === 'decoded' || o === 'MESSAGE_CORRUPT')).toBe(true);
    expect(outcomes.get('MESSAGE_CORRUPT') ?? 0).toBeGreaterThan(0);
  });
});

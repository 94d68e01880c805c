import avro from 'avsc';
import fc from 'fast-check';
import { isCanonicalVarint, longSize, readVarint, varintValue, writeLong } from '@hourglass/schemas';

/** The one varint reader (datum skippers, the container scan, block headers) against avsc. */
const long = avro.Type.forSchema('long');
const int = avro.Type.forSchema('int');
const exactLong = fc.integer({ min: -(2 ** 52), max: 2 ** 52 }).map((n) => n || 0); // no -0
const at = (prefix: number, datum: Buffer): Buffer => Buffer.concat([Buffer.alloc(prefix, 0xff), datum]);

test('reads what avsc writes, long or int, at any offset, and ends where the varint ends', () => {
  fc.assert(
    fc.property(exactLong, fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.nat(4), (l, i, prefix) => {
      const encodedLong = long.toBuffer(l);
      expect(readVarint(at(prefix, encodedLong), prefix)).toBe(prefix + encodedLong.length);
      expect(varintValue()).toBe(l);
      const encodedInt = int.toBuffer(i);
      expect(readVarint(at(prefix, encodedInt), prefix, 5)).toBe(prefix + encodedInt.length);
      expect(varintValue()).toBe(i);
      expect(isCanonicalVarint(at(prefix, encodedLong), prefix, prefix + encodedLong.length)).toBe(true);
    }),
    { seed: 1616, numRuns: 2000 },
  );
});

test('truncated or longer than its bound: −1', () => {
  const encoded = long.toBuffer(2 ** 50); // 8 bytes
  expect(readVarint(encoded.subarray(0, 7), 0)).toBe(-1);
  expect(readVarint(encoded, 0, 5)).toBe(-1);
  expect(readVarint(Buffer.alloc(11, 0x80), 0)).toBe(-1);
  expect(readVarint(Buffer.alloc(0), 0)).toBe(-1);
});

test('an overlong form reads the same value but is not canonical (avsc writes other bytes back)', () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 20), max: 2 ** 20 }), fc.integer({ min: 1, max: 3 }), (v, extra) => {
      const canonical = long.toBuffer(v || 0);
      const overlong = Buffer.concat([canonical, Buffer.alloc(extra, 0x80), Buffer.from([0])]);
      overlong[canonical.length - 1]! |= 0x80;
      const next = readVarint(overlong, 0);
      expect(next).toBe(overlong.length);
      expect(varintValue()).toBe(long.fromBuffer(overlong));
      expect(isCanonicalVarint(overlong, 0, next)).toBe(false);
      expect(long.toBuffer(varintValue()).equals(overlong)).toBe(false);
    }),
    { seed: 1617, numRuns: 500 },
  );
});

/** The transcoder's writer (writeLong, longSize): avsc's bytes, at any offset, for every exact long. */
test('writeLong writes the bytes avsc writes, and longSize counts them', () => {
  const edges = [
    0,
    1,
    -1,
    63,
    -64,
    64,
    -65,
    2 ** 30 - 1,
    -(2 ** 30),
    2 ** 30,
    -(2 ** 30) - 1,
    2 ** 31,
    2 ** 52,
    -(2 ** 52),
  ];
  const epochMs = fc.integer({ min: 0, max: 4_102_444_800_000 }); // up to 2100
  fc.assert(
    fc.property(fc.oneof(exactLong, epochMs, fc.constantFrom(...edges)), fc.nat(4), (n, prefix) => {
      const expected = long.toBuffer(n);
      const out = Buffer.alloc(prefix + 12, 0xaa);
      expect(writeLong(out, prefix, n)).toBe(prefix + expected.length);
      expect(out.subarray(prefix, prefix + expected.length)).toEqual(expected);
      expect(out[prefix + expected.length]).toBe(0xaa); // nothing written past it
      expect(longSize(n)).toBe(expected.length);
    }),
    { seed: 1617, numRuns: 3000 },
  );
});

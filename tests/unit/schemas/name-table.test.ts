import fc from 'fast-check';
import { NameTable } from '@hourglass/schemas';

/**
 * NameTable against a Map of the same names as strings: every name is found, at any offset of a
 * larger buffer, and nothing else is (a name with one byte changed, cut short or run on), in
 * tables small enough to be scanned and large enough to be hashed.
 */
const SEED = 20261205;

/** Names as event types and enum symbols are written, and their near misses: a digit apart, a prefix of another. */
const nameArb = fc.oneof(
  fc.stringMatching(/^[a-z_][a-z0-9_]{0,24}$/),
  fc.nat(9999).map((n) => `t_${String(n).padStart(4, '0')}_viewed`),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);

function utf8(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

function lookUp<T>(table: NameTable<T>, name: string, before: number, after: number): T | undefined {
  const bytes = utf8(name);
  const buf = Buffer.concat([Buffer.alloc(before, 0x61), bytes, Buffer.alloc(after, 0x61)]);
  return table.get(buf, before, before + bytes.length);
}

test.each([
  ['one name', ['track_played']],
  ['names of one length', ['t_0001_viewed', 't_0002_viewed', 't_0010_viewed']],
  ['an empty name and a prefix', ['', 'a', 'ab', 'abc']],
  ['non-ASCII', ['café', 'cafe', 'naïve', '日本']],
])('%s: each found, near misses not', (_, names) => {
  const table = new NameTable(names.map((n, i) => [utf8(n), i] as const));
  names.forEach((n, i) => expect(lookUp(table, n, 3, 2)).toBe(i));
  for (const miss of ['t_0003_viewed', 'abcd', 'caf', 'nai\u0308ve', 'track_playe', 'track_played_']) {
    if (!names.includes(miss)) expect(lookUp(table, miss, 0, 0)).toBeUndefined();
  }
});

test('agrees with a Map of the names, small tables and hashed ones, at any offset', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(nameArb, { minLength: 0, maxLength: 300 }),
      fc.array(nameArb, { maxLength: 20 }),
      fc.nat(4),
      fc.nat(4),
      (names, probes, before, after) => {
        const expected = new Map(names.map((n, i) => [n, i]));
        const table = new NameTable(names.map((n, i) => [utf8(n), i] as const));
        for (const n of names) expect(lookUp(table, n, before, after)).toBe(expected.get(n));
        for (const p of probes) expect(lookUp(table, p, before, after)).toBe(expected.get(p));
        // one byte changed in each name: found only if that is another name of the table
        for (const n of names.slice(0, 20)) {
          const bytes = utf8(n);
          if (bytes.length === 0) continue;
          const at = bytes.length >> 1;
          bytes[at] = bytes[at]! ^ 1;
          const changed = bytes.toString('utf8');
          const want = utf8(changed).equals(bytes) ? expected.get(changed) : undefined;
          expect(table.get(bytes, 0, bytes.length)).toBe(want);
        }
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

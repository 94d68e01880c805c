import fc from 'fast-check';
import { isAnyCaseUuidBytesAt, isUuidBytesAt } from '@hourglass/schemas';

/** The byte-level id check against the rule on strings: lower-case (or either case) hex, dashes at 8, 13, 18, 23. */
const UUID = {
  lower: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  any: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
};

const nearUuid = fc.oneof(
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc
    .tuple(fc.uuid(), fc.nat(35), fc.constantFrom('g', 'G', '-', 'A', 'f', '0', '"', '\\', ' ', '\u007f'))
    .map(([u, at, c]) => u.slice(0, at) + c + u.slice(at + 1)),
  fc.tuple(fc.uuid(), fc.constantFrom(8, 13, 18, 23), fc.nat(35)).map(([u, dash, to]) => {
    const chars = [...u];
    [chars[dash], chars[to]] = [chars[to]!, chars[dash]!];
    return chars.join('');
  }),
);

test('agrees with the string rule, either letters, at any offset, and never reads past the buffer', () => {
  fc.assert(
    fc.property(nearUuid, fc.nat(3), fc.nat(3), (id, before, after) => {
      const buf = Buffer.concat([Buffer.alloc(before, 0x30), Buffer.from(id, 'latin1'), Buffer.alloc(after, 0x30)]);
      expect(isUuidBytesAt(buf, before)).toBe(UUID.lower.test(id));
      expect(isAnyCaseUuidBytesAt(buf, before)).toBe(UUID.any.test(id));
      expect(isAnyCaseUuidBytesAt(buf.subarray(0, before + 35), before)).toBe(false);
    }),
    { seed: 1618, numRuns: 2000 },
  );
});

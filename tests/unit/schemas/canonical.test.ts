import fc from 'fast-check';
import { SchemaRegistry, checkDatum } from '@hourglass/schemas';
import { validValue } from '../../hostile/arbitraries';

/**
 * checkDatum is the gateway's and the consumer's guard against storing something other than
 * was sent: a datum it passes must decode to a value that avsc encodes back to the very same
 * bytes. Checked on byte-level mutations of valid datums of every schema version (fast-check,
 * seeded); and it must find the datum's end exactly where avsc does.
 */
const registry = SchemaRegistry.load('schemas');
const versions = registry.eventTypes().flatMap((t) => registry.get(t).versions);
const RULES = { finiteNumbers: true };

describe.each(versions.map((v) => [`${v.eventType} v${v.version}`, v] as const))('%s', (_name, version) => {
  const type = version.type;
  const datums = validValue(type).map((value) => type.toBuffer(value));
  const mutation = fc.record({
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 0, maxLength: 3 }),
    remove: fc.integer({ min: 0, max: 2 }),
  });

  test('a valid datum passes, ending where avsc says', () => {
    fc.assert(
      fc.property(datums, (datum) => {
        expect(checkDatum(type, datum, 0, RULES)).toEqual({ end: datum.length });
      }),
      { seed: 1402, numRuns: 200 },
    );
  });

  test('a mutated datum that passes decodes and re-encodes to the same bytes', () => {
    let passed = 0;
    fc.assert(
      fc.property(datums, mutation, (datum, m) => {
        const at = m.at % (datum.length + 1);
        const bytes = Buffer.concat([datum.subarray(0, at), Buffer.from(m.bytes), datum.subarray(at + m.remove)]);
        const checked = checkDatum(type, bytes, 0, RULES);
        if (checked.end < 0 || checked.problem) return;
        passed++;
        const decoded = type.decode(bytes, 0);
        expect(decoded.offset).toBe(checked.end);
        expect(type.toBuffer(decoded.value).equals(bytes.subarray(0, checked.end))).toBe(true);
      }),
      { seed: 1402, numRuns: 1000 },
    );
    expect(passed).toBeGreaterThan(50);
  });
});

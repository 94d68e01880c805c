import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, HourglassError, isHourglassError, type ErrorCode } from '@hourglass/common';

/** docs/errors.md and the catalogue in errors.ts must list the same codes. */
const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');
/** First cell of a table row: | `CODE` | meaning | ... */
const documented = [...doc.matchAll(/^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*(.*?)\s*\|/gm)].map((m) => ({
  code: m[1]!,
  meaning: m[2]!,
}));
const catalogue = Object.keys(ErrorCodes) as ErrorCode[];

test('every catalogued code is documented (add a row to docs/errors.md)', () => {
  const codes = new Set(documented.map((d) => d.code));
  const missing = catalogue.filter((c) => !codes.has(c)).map((c) => `${c}: ${ErrorCodes[c]}`);
  expect(missing).toEqual([]);
});

test('every documented code exists in the catalogue, once, with a meaning', () => {
  const known = new Set<string>(catalogue);
  expect(documented.filter((d) => !known.has(d.code)).map((d) => d.code)).toEqual([]);
  const seen = documented.map((d) => d.code);
  expect(seen.filter((c, i) => seen.indexOf(c) !== i)).toEqual([]);
  for (const d of documented) expect(d.meaning.length).toBeGreaterThan(10);
});

test('an HourglassError carries its code, path and cause, and prints one line', () => {
  const cause = new Error('disk on fire');
  const error = new HourglassError('CONFIG_INVALID', 'HOURGLASS_PORT="x" is invalid', {
    path: 'HOURGLASS_PORT',
    cause,
  });
  expect(error).toBeInstanceOf(Error);
  expect(error.name).toBe('HourglassError');
  expect(error.path).toBe('HOURGLASS_PORT');
  expect(error.cause).toBe(cause);
  expect(error.toLine()).toBe('CONFIG_INVALID: HOURGLASS_PORT="x" is invalid');
  expect(isHourglassError(error)).toBe(true);
  expect(isHourglassError(error, 'CONFIG_INVALID')).toBe(true);
  expect(isHourglassError(error, 'INTERNAL')).toBe(false);
  expect(isHourglassError(new Error('plain'))).toBe(false);
});

import { rmSync } from 'node:fs';
import { isHourglassError } from '@hourglass/common';
import { SchemaRegistry, problemLine } from '@hourglass/schemas';
import { brokenCases, validCases, writeSchemaDir } from './schema-dirs';

/** The registry's checks, one broken directory at a time (the CLI test runs the same cases). */
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.each(brokenCases.map((c) => [c.name, c] as const))('refuses %s', (_name, c) => {
  const dir = writeSchemaDir(c.files);
  dirs.push(dir);

  test('inspect reports exactly one problem with the expected code and line', () => {
    const { problems } = SchemaRegistry.inspect(dir);
    expect(problems.map(problemLine)).toEqual([expect.stringMatching(c.line)]);
    expect(problems[0]!.code).toBe(c.code);
    expect(problemLine(problems[0]!)).not.toContain('\n');
  });

  test('load throws an HourglassError with that code', () => {
    let thrown: unknown;
    try {
      SchemaRegistry.load(dir);
    } catch (e) {
      thrown = e;
    }
    expect(isHourglassError(thrown, c.code)).toBe(true);
  });
});

test('a broken type does not hide the good ones from inspect', () => {
  const dir = writeSchemaDir({ ...brokenCases[0]!.files, ...validCases[0]!.files });
  dirs.push(dir);
  // Both cases use the folder "thing"; rename the valid one.
  const mixed = writeSchemaDir({
    ...Object.fromEntries(Object.entries(validCases[0]!.files).map(([p, c]) => [p.replace('thing/', 'good/'), c])),
    'bad/v1.avsc': '{',
  });
  dirs.push(mixed);
  const { registry, problems } = SchemaRegistry.inspect(mixed);
  expect(problems.map((p) => p.eventType)).toEqual(['bad']);
  expect(registry.eventTypes()).toEqual(['good']);
});

test('a missing directory is one SCHEMA_MALFORMED problem', () => {
  const { problems } = SchemaRegistry.inspect('/nonexistent/hourglass-schemas');
  expect(problems.map(problemLine)).toEqual([
    expect.stringMatching(/^SCHEMA_MALFORMED: \/nonexistent\/hourglass-schemas: cannot read schema directory/),
  ]);
});

describe.each(validCases.map((c) => [c.name, c] as const))('accepts %s', (_name, c) => {
  test('loads with every type at its newest version', () => {
    const dir = writeSchemaDir(c.files);
    dirs.push(dir);
    const registry = SchemaRegistry.load(dir);
    expect(Object.fromEntries(registry.eventTypes().map((t) => [t, registry.get(t).latest.version]))).toEqual(
      c.versions,
    );
  });
});

describe('the shipped schemas', () => {
  const registry = SchemaRegistry.load('schemas');

  test('every type is lower snake case with versions 1..N, each with a distinct fingerprint', () => {
    const prints = new Set<string>();
    for (const t of registry.eventTypes()) {
      const { versions, latest } = registry.get(t);
      expect(versions.map((v) => v.version)).toEqual(versions.map((_, i) => i + 1));
      expect(latest).toBe(versions[versions.length - 1]);
      for (const v of versions) {
        expect(v.fingerprint).toMatch(/^[0-9a-f]{64}$/);
        prints.add(v.fingerprint);
        expect(registry.byFingerprint(v.fingerprint)).toBe(v);
      }
    }
    expect(prints.size).toBe(registry.eventTypes().reduce((n, t) => n + registry.get(t).versions.length, 0));
  });

  test('the fingerprint is the SHA-256 of the Parsing Canonical Form avsc computes', () => {
    for (const t of registry.eventTypes()) {
      const v = registry.get(t).latest;
      expect(v.fingerprint).toBe(v.type.fingerprint('sha256').toString('hex'));
    }
  });

  test('unknown types are SCHEMA_UNKNOWN_TYPE', () => {
    expect(registry.has('nope')).toBe(false);
    expect(registry.tryGet('nope')).toBeUndefined();
    expect(() => registry.get('nope')).toThrow(expect.objectContaining({ code: 'SCHEMA_UNKNOWN_TYPE' }));
  });
});

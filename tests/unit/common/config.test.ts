import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HourglassError, loadConfig, minutes, ms, seconds, setting } from '@hourglass/common';

/** Typed configuration: defaults, environment, a JSON file, and one clear error per bad value. */
const spec = {
  port: setting.int('HG_TEST_PORT', 8080, 1, 65535),
  prefix: setting.string('HG_TEST_PREFIX', 'hourglass', /^[a-z][a-z0-9-]*$/),
  name: setting.string('HG_TEST_NAME', 'gateway'),
  bucket: setting.optionalString('HG_TEST_BUCKET'),
  maxBody: setting.bytes('HG_TEST_MAX_BODY', 1024 * 1024, 1024),
  grace: setting.duration('HG_TEST_GRACE', minutes(5), 1000),
  gzip: setting.bool('HG_TEST_GZIP', true),
  keys: setting.list('HG_TEST_KEYS', ['dev']),
};

const defaults = {
  port: 8080,
  prefix: 'hourglass',
  name: 'gateway',
  bucket: undefined,
  maxBody: 1024 * 1024,
  grace: minutes(5),
  gzip: true,
  keys: ['dev'],
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hourglass-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function configError(env: Record<string, string>): HourglassError {
  try {
    loadConfig(spec, env);
  } catch (e) {
    if (e instanceof HourglassError) return e;
    throw e;
  }
  throw new Error('loadConfig accepted a bad configuration');
}

test('an empty environment gives every default', () => {
  expect(loadConfig(spec, {})).toEqual(defaults);
});

test('empty variables count as unset', () => {
  expect(loadConfig(spec, { HG_TEST_PORT: '', HG_TEST_KEYS: '' })).toEqual(defaults);
});

test('the environment overrides defaults, parsed to their types', () => {
  const config = loadConfig(spec, {
    HG_TEST_PORT: '9090',
    HG_TEST_PREFIX: 'staging-eu',
    HG_TEST_NAME: 'consumer',
    HG_TEST_BUCKET: 'gs://events',
    HG_TEST_MAX_BODY: '2mib',
    HG_TEST_GRACE: '90s',
    HG_TEST_GZIP: 'false',
    HG_TEST_KEYS: 'a, b,,c ',
  });
  expect(config).toEqual({
    port: 9090,
    prefix: 'staging-eu',
    name: 'consumer',
    bucket: 'gs://events',
    maxBody: 2 * 1024 * 1024,
    grace: seconds(90),
    gzip: false,
    keys: ['a', 'b', 'c'],
  });
});

test('a JSON file named by HOURGLASS_CONFIG sets values by variable or by key; the environment wins', () => {
  const path = configFile(
    'config.json',
    JSON.stringify({ HG_TEST_PORT: 7000, grace: '10s', gzip: false, keys: ['x', 'y'], bucket: null }),
  );
  expect(loadConfig(spec, { HOURGLASS_CONFIG: path })).toEqual({
    ...defaults,
    port: 7000,
    grace: seconds(10),
    gzip: false,
    keys: ['x', 'y'],
  });
  expect(loadConfig(spec, { HOURGLASS_CONFIG: path, HG_TEST_PORT: '7001' }).port).toBe(7001);
});

test.each([
  ['HG_TEST_PORT', 'abc'],
  ['HG_TEST_PORT', '0'],
  ['HG_TEST_PORT', '65536'],
  ['HG_TEST_PORT', '80.5'],
  ['HG_TEST_PORT', ' '],
  ['HG_TEST_PORT', '0x50'],
  ['HG_TEST_PORT', '8e3'],
  ['HG_TEST_PREFIX', 'Upper'],
  ['HG_TEST_MAX_BODY', '10 parsecs'],
  ['HG_TEST_MAX_BODY', '512'],
  ['HG_TEST_GRACE', 'soon'],
  ['HG_TEST_GRACE', '999ms'],
  ['HG_TEST_GRACE', '-5s'],
  ['HG_TEST_GZIP', 'yes'],
])('%s=%j is CONFIG_INVALID naming the variable and what it expects', (variable, value) => {
  const error = configError({ [variable]: value });
  expect(error.code).toBe('CONFIG_INVALID');
  expect(error.path).toBe(variable);
  expect(error.message).toContain(`${variable}=${JSON.stringify(value)}`);
  expect(error.message).toMatch(/is invalid: expected .+/);
});

test('a bad value from the file names the variable and the file', () => {
  const path = configFile('bad-value.json', JSON.stringify({ port: 'eighty' }));
  const error = configError({ HOURGLASS_CONFIG: path });
  expect(error.code).toBe('CONFIG_INVALID');
  expect(error.path).toBe('HG_TEST_PORT');
  expect(error.message).toBe(`HG_TEST_PORT="eighty" (from ${path}) is invalid: expected an integer in 1..65535`);
});

test.each([
  ['a missing file', () => join(dir, 'absent.json'), /cannot read/],
  ['bad JSON', () => configFile('bad.json', '{ "port": '), /HOURGLASS_CONFIG=.*bad\.json: /],
  ['a JSON array', () => configFile('array.json', '[1, 2]'), /not a JSON object/],
  ['JSON null', () => configFile('null.json', 'null'), /not a JSON object/],
])('%s in HOURGLASS_CONFIG is CONFIG_INVALID naming HOURGLASS_CONFIG', (_name, makePath, message) => {
  const error = configError({ HOURGLASS_CONFIG: makePath() });
  expect(error.code).toBe('CONFIG_INVALID');
  expect(error.path).toBe('HOURGLASS_CONFIG');
  expect(error.message).toMatch(message);
});

test('setting defaults are returned as declared (durations stay branded milliseconds)', () => {
  const config = loadConfig({ tick: setting.duration('HG_TEST_TICK', ms(250)) }, {});
  expect(config.tick).toBe(250);
});

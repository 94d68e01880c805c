import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHourglassError, sha256Hex } from '@hourglass/common';
import { loadGatewayConfig, parseApiKeys, readApiKeysFile } from '@hourglass/gateway';
import { ALL_TYPES } from './support';

/** Bad configuration is one clear line naming the setting, at start-up, never a stack trace. */
const SERVER = join(__dirname, '../../services/gateway/dist/server.js');
const dir = mkdtempSync(join(tmpdir(), 'hourglass-gw-config-'));

function configError(env: Record<string, string>): string {
  try {
    loadGatewayConfig(env);
  } catch (e) {
    if (isHourglassError(e, 'CONFIG_INVALID')) return e.message;
    throw e;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('gateway configuration', () => {
  test('defaults are safe: auth on, so a key file is required', () => {
    expect(configError({})).toMatch(/HOURGLASS_API_KEYS_FILE is required while HOURGLASS_AUTH=enabled/);
    const dev = loadGatewayConfig({ HOURGLASS_AUTH: 'disabled' });
    expect(dev).toMatchObject({
      auth: 'disabled',
      port: 8080,
      publishTimeout: 5_000,
      bundleMaxEvents: 500,
      bundleLinger: 15,
      bundleMaxLinger: 250,
      bundleLingerTargetEvents: 100,
      bundleCodec: 'null',
    });
  });

  test.each([
    [{ HOURGLASS_GATEWAY_PORT: 'eighty' }, /HOURGLASS_GATEWAY_PORT="eighty" is invalid/],
    [{ HOURGLASS_PUBLISH_TIMEOUT: 'soon' }, /HOURGLASS_PUBLISH_TIMEOUT="soon" is invalid: expected a duration/],
    [{ HOURGLASS_AUTH: 'off' }, /HOURGLASS_AUTH="off" is invalid/],
    [{ HOURGLASS_BUNDLE_CODEC: 'zstd' }, /HOURGLASS_BUNDLE_CODEC="zstd" is invalid/],
    [{ HOURGLASS_MAX_BODY_BYTES: '1' }, /HOURGLASS_MAX_BODY_BYTES="1" is invalid/],
    [{ HOURGLASS_PREFIX: 'Bad_Prefix' }, /prefix "Bad_Prefix" must match/],
    [
      { HOURGLASS_BUNDLE_MAX_BYTES: '2kb', HOURGLASS_MAX_EVENT_BYTES: '64kb' },
      /HOURGLASS_BUNDLE_MAX_BYTES \(2000\) must be at least HOURGLASS_MAX_EVENT_BYTES/,
    ],
    [
      { HOURGLASS_BUNDLE_MAX_LINGER: '5s' },
      /HOURGLASS_BUNDLE_MAX_LINGER \(5000 ms\) must be shorter than HOURGLASS_PUBLISH_TIMEOUT \(5000 ms\)/,
    ],
    [
      { HOURGLASS_BUNDLE_LINGER: '2s', HOURGLASS_PUBLISH_TIMEOUT: '1s' },
      /HOURGLASS_BUNDLE_LINGER \(2000 ms\) must be shorter than HOURGLASS_PUBLISH_TIMEOUT \(1000 ms\)/,
    ],
    [{ HOURGLASS_BUNDLE_LINGER_TARGET_EVENTS: '0' }, /HOURGLASS_BUNDLE_LINGER_TARGET_EVENTS="0" is invalid/],
  ])('%j is refused', (env, message) => {
    expect(configError({ HOURGLASS_AUTH: 'disabled', ...env })).toMatch(message);
  });

  test('API key files: valid entries load; bad ones name the entry', () => {
    const keys = parseApiKeys(
      [
        { name: 'web', sha256: sha256Hex('secret-web'), types: ['track_played'], ratePerSecond: 500 },
        { name: 'ops', sha256: sha256Hex('secret-ops'), types: ['*'] },
      ],
      ALL_TYPES,
      1000,
    );
    expect(keys.map((k) => [k.name, k.types && [...k.types], k.ratePerSecond])).toEqual([
      ['web', ['track_played'], 500],
      ['ops', undefined, 1000],
    ]);
    const bad = (json: unknown) => {
      try {
        parseApiKeys(json, ALL_TYPES, 1000);
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(bad({ name: 'x' })).toMatch(/top level/);
    expect(bad([{ name: 'x', sha256: 'abc', types: ['*'] }])).toMatch(
      /\[0\]\.sha256: must be 64 lower-case hex digits/,
    );
    expect(bad([{ name: 'x', sha256: sha256Hex('a'), types: ['no_such_type'] }])).toMatch(
      /unknown event type "no_such_type"/,
    );
    expect(bad([{ name: 'x', sha256: sha256Hex('a'), types: ['*'], password: 'plain' }])).toMatch(/\[0\]/);
    expect(
      bad([
        { name: 'x', sha256: sha256Hex('a'), types: ['*'] },
        { name: 'x', sha256: sha256Hex('b'), types: ['*'] },
      ]),
    ).toMatch(/appears twice/);
    const file = join(dir, 'broken.json');
    writeFileSync(file, '[{');
    expect(() => readApiKeysFile(file, ALL_TYPES, 1)).toThrow(/HOURGLASS_API_KEYS_FILE=.*broken\.json/);
  });

  test('the server prints one line and exits 2 on bad configuration', () => {
    if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: run \`npx tsc -b\` first`);
    const keys = join(dir, 'keys.json');
    writeFileSync(keys, JSON.stringify([{ name: 'k', sha256: sha256Hex('k'), types: ['not_a_type'] }]));
    for (const env of [
      { HOURGLASS_PUBLISH_TIMEOUT: 'later' },
      { HOURGLASS_API_KEYS_FILE: keys },
      { HOURGLASS_AUTH: 'disabled', HOURGLASS_UNBUNDLED_TYPES: 'nope' },
      { HOURGLASS_AUTH: 'disabled', HOURGLASS_SCHEMAS_DIR: join(dir, 'no-schemas-here') },
    ]) {
      const run = spawnSync(process.execPath, [SERVER], {
        env: { PATH: process.env.PATH, HOURGLASS_SCHEMAS_DIR: 'schemas', HOURGLASS_GATEWAY_PORT: '0', ...env },
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect({ status: run.status, stdout: run.stdout }).toEqual({ status: 2, stdout: '' });
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^hourglass-gateway: (CONFIG_INVALID|SCHEMA_\w+): /);
    }
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '@hourglass/emulator';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  openFleetStore,
  parseReplicas,
  parseStoreKind,
  replicaIdOf,
  replicaPorts,
} from '@hourglass/cli/commands/up-fleet';

/** Issue #15.3: `hourglass up --replicas N --store gcs-fake`. */
describe('hourglass up: a fleet of replicas', () => {
  test('replicas take the consumer port and the next ones, each with its own id', () => {
    expect(replicaPorts(8081, 3, 8080)).toEqual([8081, 8082, 8083]);
    expect(new Set([0, 1, 2].map((i) => replicaIdOf(8080, i))).size).toBe(3);
    expect(replicaIdOf(9080, 0)).not.toBe(replicaIdOf(8080, 0));
  });

  test('a replica port may not be the gateway port or the GCS fake port', () => {
    expect(() => replicaPorts(8079, 2, 8080)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => replicaPorts(8081, 10, 8080)).toThrow(expect.objectContaining({ path: '--consumer-port' }));
    expect(() => replicaPorts(65535, 2, 8080)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  test('bad --replicas and --store values are usage errors', () => {
    expect(parseReplicas('4')).toBe(4);
    for (const bad of ['0', '-1', 'x', '1.5', '65']) {
      expect(() => parseReplicas(bad)).toThrow(expect.objectContaining({ path: '--replicas' }));
    }
    expect(parseStoreKind('gcs-fake')).toBe('gcs-fake');
    expect(() => parseStoreKind('gcs')).toThrow(expect.objectContaining({ path: '--store' }));
  });

  test('--store gcs-fake serves an HNS bucket that the real client writes, lists and renames folders in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hg-up-fleet-'));
    const saved = process.env.STORAGE_EMULATOR_HOST;
    // the fake listens 10 ports above the gateway's
    const store = await openFleetStore('gcs-fake', dir, (await freePort()) - 10);
    try {
      expect(store.url).toBe('gs://hourglass-local/data');
      expect(store.env.STORAGE_EMULATOR_HOST).toBe(store.fake!.url);
      expect(await store.store.createIfAbsent('_staging/t/w/_publish/_SUCCESS', Buffer.from('{}'))).toBe(true);
      await store.store.renameFolder('_staging/t/w/_publish/', 't/w/');
      expect((await store.store.list('t/')).map((o) => o.name)).toEqual(['t/w/_SUCCESS']);
    } finally {
      await store.fake!.stop();
      if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

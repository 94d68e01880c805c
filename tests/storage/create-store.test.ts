import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isHourglassError } from '@hourglass/common';
import type { RunningGcsFake } from '@hourglass/gcs-fake';
import { createStore, GcsStore, LocalDirectoryStore } from '@hourglass/storage';
import { startFake } from './gcs-support';

let fake: RunningGcsFake;
let dir: string;
beforeAll(async () => {
  fake = await startFake();
  dir = await mkdtemp(join(tmpdir(), 'hourglass-create-store-'));
});
afterAll(async () => {
  await fake.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('createStore', () => {
  test('file:// URL → LocalDirectoryStore writing into that directory', async () => {
    const store = createStore(`file://${dir}/a`);
    expect(store).toBeInstanceOf(LocalDirectoryStore);
    expect(store.url).toBe(`file://${dir}/a`);
    await store.createIfAbsent('x/y', Buffer.from('local'));
    expect(await readFile(join(dir, 'a/x/y'), 'utf8')).toBe('local');
  });

  test('a plain path (relative or absolute) → LocalDirectoryStore on the resolved path', () => {
    expect(createStore('./data').url).toBe(`file://${resolve('data')}`);
    expect(createStore(`${dir}/b`).url).toBe(`file://${dir}/b`);
  });

  test('gs://bucket/prefix → GcsStore, reaching the fake through STORAGE_EMULATOR_HOST', async () => {
    const saved = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = fake.url;
    try {
      const store = createStore('gs://events-bucket/prod/v1');
      expect(store).toBeInstanceOf(GcsStore);
      expect(store.url).toBe('gs://events-bucket/prod/v1');
      expect(await store.createIfAbsent('t/_SUCCESS', Buffer.from('{}'))).toBe(true);
      expect(fake.object('events-bucket', 'prod/v1/t/_SUCCESS')?.data.toString()).toBe('{}');
    } finally {
      if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = saved;
    }
  });

  test('gs://bucket with client options (apiEndpoint) and no prefix', async () => {
    const store = createStore('gs://plain-bucket', { gcs: { storage: { apiEndpoint: fake.url, projectId: 'p' } } });
    expect(store.url).toBe('gs://plain-bucket');
    await store.put('lease', Buffer.from('1'));
    expect(fake.object('plain-bucket', 'lease')?.data.toString()).toBe('1');
  });

  test.each(['gs://', 'gs://Bad_Bucket/x', 's3://bucket/x', 'file://host/path', ''])(
    'refuses %j with CONFIG_INVALID',
    (url) => {
      let error: unknown;
      try {
        createStore(url);
      } catch (e) {
        error = e;
      }
      expect(isHourglassError(error, 'CONFIG_INVALID')).toBe(true);
    },
  );
});

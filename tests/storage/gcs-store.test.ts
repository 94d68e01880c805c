import { Defaults } from '@hourglass/common';
import type { RunningGcsFake } from '@hourglass/gcs-fake';
import { GcsStore } from '@hourglass/storage';
import { describeObjectStoreContract } from './contract';
import { startFake, storeOn, uniquePrefix } from './gcs-support';

let fake: RunningGcsFake;
beforeAll(async () => {
  fake = await startFake();
});
afterAll(async () => {
  await fake.stop();
});

describeObjectStoreContract('GcsStore (real client → GCS fake over HTTP)', {
  store: async () => storeOn(fake),
  bigObjectBytes: Defaults.gcsResumableThreshold + 1024 * 1024 + 13,
});

describe('GcsStore on the fake', () => {
  beforeEach(() => {
    fake.faults.reset();
    fake.requests.reset();
  });

  test('small objects go in one multipart request, big ones as a chunked resumable upload', async () => {
    const store = storeOn(fake);
    await store.createIfAbsent('small', Buffer.alloc(Defaults.gcsResumableThreshold, 1));
    expect(fake.requests.snapshot()).toEqual({ 'upload.multipart': 1 });

    fake.requests.reset();
    const big = Buffer.alloc(Defaults.gcsResumableThreshold + 1, 2);
    expect(await store.createIfAbsent('big', big)).toBe(true);
    // One session, then an 8 MiB chunk and the 1-byte remainder.
    expect(fake.requests.snapshot()).toEqual({ 'upload.resumable.start': 1, 'upload.resumable.chunk': 2 });
    expect((await store.get('big'))?.equals(big)).toBe(true);
  });

  test('getRange is one ranged download (206), counted apart from whole downloads by the fake', async () => {
    const store = storeOn(fake);
    const data = Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251));
    await store.createIfAbsent('ranged', data);
    fake.requests.reset();
    expect((await store.getRange('ranged', 1000, 5096))?.equals(data.subarray(1000, 5096))).toBe(true);
    expect(fake.requests.snapshot()).toEqual({ 'object.download': 1 });
    expect(fake.requests.downloadBytes).toEqual({ whole: 0, range: 4096 });
    await store.get('ranged');
    expect(fake.requests.downloadBytes).toEqual({ whole: 50_000, range: 4096 });
    const stats = (await (await fetch(`${fake.url}/_fake/stats`)).json()) as { downloadBytes: unknown };
    expect(stats.downloadBytes).toEqual({ whole: 50_000, range: 4096 });
  });

  test('getRange through transient faults: retried within the deadline, the same bytes', async () => {
    const store = storeOn(fake);
    const data = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 7) % 256));
    await store.createIfAbsent('ranged-faulty', data);
    fake.faults.failNext(2, 503, { routes: ['object.download'] });
    expect((await store.getRange('ranged-faulty', 100, 9_100))?.equals(data.subarray(100, 9_100))).toBe(true);
    expect(fake.requests.count('object.download')).toBe(3);
  });

  test('objects are stored under the prefix, and stores with other prefixes do not see them', async () => {
    const prefix = uniquePrefix();
    const a = storeOn(fake, { prefix: `${prefix}/a` });
    const b = storeOn(fake, { prefix: `${prefix}/b` });
    expect(a.url).toBe(`gs://hourglass-test/${prefix}/a`);
    await a.createIfAbsent('x/1', Buffer.from('a1'));
    await b.createIfAbsent('x/1', Buffer.from('b1'));
    expect(fake.object('hourglass-test', `${prefix}/a/x/1`)?.data.toString()).toBe('a1');
    expect(await a.list('')).toEqual([{ name: 'x/1', size: 2 }]);
    expect((await b.get('x/1'))?.toString()).toBe('b1');
  });

  test('list pages past 1000 objects (GCS page limit) and with a small page size', async () => {
    const store = storeOn(fake);
    const names = Array.from({ length: 1234 }, (_, i) => `_staging/t/part-${String(i).padStart(5, '0')}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n) => store.createIfAbsent(n, Buffer.from(n))));
    }
    fake.requests.reset();
    const all = await store.list('_staging/');
    expect(all.map((o) => o.name)).toEqual(names);
    expect(fake.requests.count('object.list')).toBe(2);

    fake.requests.reset();
    const paged = await storeOn(fake, { prefix: undefined, listPageSize: 100 }).list('');
    const mine = paged.filter((o) => all.some((a) => o.name.endsWith(a.name)));
    expect(mine).toHaveLength(1234);
    expect(fake.requests.count('object.list')).toBe(Math.ceil(paged.length / 100));
  });

  test('the client reaches the fake both through apiEndpoint (/storage/v1/b/...) and STORAGE_EMULATOR_HOST (/b/...)', async () => {
    const paths: string[] = [];
    const logged = await startFake({ onRequest: (e) => paths.push(`${e.method} ${e.url.split('?')[0]}`) });
    const saved = process.env.STORAGE_EMULATOR_HOST;
    try {
      const viaEndpoint = storeOn(logged, { prefix: 'p' });
      await viaEndpoint.createIfAbsent('one', Buffer.from('1'));
      expect(await viaEndpoint.get('one')).toEqual(Buffer.from('1'));

      process.env.STORAGE_EMULATOR_HOST = logged.url;
      const viaEnv = new GcsStore({ bucket: 'hourglass-test', prefix: 'p', storage: { projectId: 'p' } });
      expect(await viaEnv.get('one')).toEqual(Buffer.from('1'));
      expect(await viaEnv.list('')).toEqual([{ name: 'one', size: 1 }]);
    } finally {
      if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = saved;
      await logged.stop();
    }
    expect(paths).toEqual([
      'POST /upload/storage/v1/b/hourglass-test/o',
      'GET /storage/v1/b/hourglass-test/o/p%2Fone',
      'GET /b/hourglass-test/o/p%2Fone',
      'GET /b/hourglass-test/o',
    ]);
  });

  test('deleteMany: one request per name, at most Defaults.storeDeleteParallelism in flight', async () => {
    const prefix = uniquePrefix();
    const names = Array.from({ length: 160 }, (_, i) => `_staging/t/part-${String(i).padStart(4, '0')}`);
    for (const n of names) fake.state.putObject('hourglass-test', `${prefix}/${n}`, Buffer.from(n), {}, {});
    const store = storeOn(fake, { prefix });
    fake.faults.delay(250); // a slow round trip: all 16 lanes are waiting at once, even on a loaded machine
    fake.requests.reset();
    await store.deleteMany(names);
    expect(fake.requests.count('object.delete')).toBe(160);
    expect(fake.requests.maxInFlight).toBe(Defaults.storeDeleteParallelism);
    expect(await store.list('')).toEqual([]);
  });

  test('list and listChildren ask only for names and sizes; listChildren one level (delimiter "/")', async () => {
    const urls: string[] = [];
    const logged = await startFake({ onRequest: (e) => urls.push(decodeURIComponent(e.url)) });
    try {
      const store = storeOn(logged, { prefix: 'p' });
      await store.createIfAbsent('a/b/c', Buffer.from('abc'));
      await store.createIfAbsent('a/d', Buffer.from('d'));
      urls.length = 0;
      expect(await store.list('a/')).toEqual([
        { name: 'a/b/c', size: 3 },
        { name: 'a/d', size: 1 },
      ]);
      expect(await store.listChildren('a/')).toEqual({ objects: [{ name: 'a/d', size: 1 }], prefixes: ['a/b/'] });
      expect(urls).toHaveLength(2);
      for (const url of urls) expect(url).toContain('fields=items(name,size),prefixes,nextPageToken');
      expect(urls[0]).not.toContain('delimiter');
      expect(urls[1]).toContain('delimiter=/');
    } finally {
      await logged.stop();
    }
  });

  test('a missing bucket is a permanent error, not "object missing"', async () => {
    const strict = await startFake({ autoCreateBuckets: false, buckets: ['exists'] });
    try {
      const store = storeOn(strict, { bucket: 'no-such-bucket' });
      await expect(store.createIfAbsent('x', Buffer.from('x'))).rejects.toMatchObject({ code: 'STORAGE_REJECTED' });
      await expect(store.put('x', Buffer.from('x'))).rejects.toMatchObject({ code: 'STORAGE_REJECTED' });
      await expect(store.list('')).rejects.toMatchObject({ code: 'STORAGE_REJECTED' });
      expect(await storeOn(strict, { bucket: 'exists' }).createIfAbsent('x', Buffer.from('x'))).toBe(true);
    } finally {
      await strict.stop();
    }
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { FakeState, type RunningGcsFake } from '@hourglass/gcs-fake';
import { startFake } from './gcs-support';

/** CRC32C (Castagnoli, reflected 0x82F63B78), bit by bit: independent of the fake and the client. */
function crc32c(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** GCS's encoding: base64 of the big-endian 32-bit value. */
function crc32cBase64(data: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32c(data));
  return out.toString('base64');
}

const md5Base64 = (data: Buffer): string => createHash('md5').update(data).digest('base64');

let fake: RunningGcsFake;
let storage: Storage;
beforeAll(async () => {
  fake = await startFake({ buckets: ['fake-test'] });
  storage = new Storage({ apiEndpoint: fake.url, projectId: 'p', retryOptions: { autoRetry: false } });
});
afterAll(async () => {
  await fake.stop();
});
beforeEach(() => {
  fake.faults.reset();
  fake.requests.reset();
});

const api = (path: string): string => `${fake.url}/storage/v1/b/fake-test${path}`;
const upload = (query: string): string => `${fake.url}/upload/storage/v1/b/fake-test/o?${query}`;

describe('GCS fake: checksums', () => {
  test('the independent CRC32C matches the standard check value 0xE3069283 for "123456789"', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  test('object metadata carries the correct base64 big-endian crc32c and md5Hash', async () => {
    const vector = Buffer.from('123456789');
    await storage.bucket('fake-test').file('vector').save(vector, { resumable: false });
    const [meta] = await storage.bucket('fake-test').file('vector').getMetadata();
    expect(meta.crc32c).toBe(Buffer.from([0xe3, 0x06, 0x92, 0x83]).toString('base64'));
    expect(meta.md5Hash).toBe(md5Base64(vector));
    expect(meta.size).toBe('9');

    for (const size of [0, 1, 4095, 70_000]) {
      const data = randomBytes(size);
      await storage.bucket('fake-test').file(`random-${size}`).save(data, { resumable: false });
      const [m] = await storage.bucket('fake-test').file(`random-${size}`).getMetadata();
      expect([m.crc32c, m.md5Hash, Number(m.size)]).toEqual([crc32cBase64(data), md5Base64(data), size]);
    }
  });

  test('a download carries x-goog-hash with both checksums of the stored bytes', async () => {
    const data = randomBytes(1000);
    await storage.bucket('fake-test').file('hashed').save(data, { resumable: false });
    const res = await fetch(api('/o/hashed?alt=media'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-goog-hash')).toBe(`crc32c=${crc32cBase64(data)},md5=${md5Base64(data)}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
  });

  test('an upload whose declared checksum does not match its bytes is refused with 400', async () => {
    const boundary = 'b0undary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n`),
      Buffer.from(JSON.stringify({ name: 'bad-crc', crc32c: crc32cBase64(Buffer.from('other')) })),
      Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\nbytes\r\n--${boundary}--`),
    ]);
    const res = await fetch(upload('uploadType=multipart'), {
      method: 'POST',
      headers: { 'content-type': `multipart/related; boundary=${boundary}` },
      body,
    });
    expect(res.status).toBe(400);
    expect(fake.object('fake-test', 'bad-crc')).toBeUndefined();
  });

  test('a corrupting fault flips the downloaded bytes but keeps the original hashes, so the client throws', async () => {
    await storage.bucket('fake-test').file('to-corrupt').save(Buffer.from('precious bytes'), { resumable: false });
    fake.faults.corruptDownloads(1);
    await expect(storage.bucket('fake-test').file('to-corrupt').download()).rejects.toMatchObject({
      code: 'CONTENT_DOWNLOAD_MISMATCH',
    });
    expect(fake.faults.fired.corrupted).toBe(1);
    // Only the next download was corrupted.
    const [again] = await storage.bucket('fake-test').file('to-corrupt').download();
    expect(again.toString()).toBe('precious bytes');
  });
});

describe('GCS fake: preconditions', () => {
  test('ifGenerationMatch=0 refuses an existing object with 412; the matching generation overwrites', async () => {
    const file = storage.bucket('fake-test').file('pre');
    await file.save('v1', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    await expect(
      file.save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
    ).rejects.toMatchObject({ code: 412 });
    const generation = Number(fake.object('fake-test', 'pre')?.generation);
    await expect(
      file.save('v3', { resumable: false, preconditionOpts: { ifGenerationMatch: generation + 1 } }),
    ).rejects.toMatchObject({ code: 412 });
    await file.save('v4', { resumable: false, preconditionOpts: { ifGenerationMatch: generation } });
    expect(fake.object('fake-test', 'pre')?.data.toString()).toBe('v4');
    expect(Number(fake.object('fake-test', 'pre')?.generation)).toBeGreaterThan(generation);
  });

  test('delete honours ifGenerationMatch and answers 404 for a missing object', async () => {
    const file = storage.bucket('fake-test').file('del');
    await file.save('x', { resumable: false });
    const generation = Number(fake.object('fake-test', 'del')?.generation);
    await expect(file.delete({ ifGenerationMatch: generation + 1 })).rejects.toMatchObject({ code: 412 });
    await file.delete({ ifGenerationMatch: generation });
    await expect(file.delete()).rejects.toMatchObject({ code: 404 });
  });

  test('a resumable session refuses at start when ifGenerationMatch=0 and the object exists', async () => {
    await storage.bucket('fake-test').file('res-pre').save('x', { resumable: false });
    const res = await fetch(upload('uploadType=resumable&name=res-pre&ifGenerationMatch=0'), { method: 'POST' });
    expect(res.status).toBe(412);
  });
});

describe('GCS fake: resumable protocol', () => {
  const KiB256 = 256 * 1024;

  async function startSession(name: string): Promise<string> {
    const res = await fetch(upload(`uploadType=resumable&name=${name}`), {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=UTF-8', 'x-upload-content-type': 'application/avro' },
      body: JSON.stringify({ metadata: { k: 'v' } }),
    });
    expect(res.status).toBe(200);
    const location = res.headers.get('location');
    expect(location).toMatch(/upload_id=/);
    return location as string;
  }

  test('chunks answer 308 with the persisted Range; the last chunk completes with 200 and metadata', async () => {
    const data = randomBytes(KiB256 * 2 + 100);
    const session = await startSession('chunked');
    const put = (range: string, body?: Buffer): Promise<Response> =>
      fetch(session, {
        method: 'PUT',
        headers: { 'content-range': range },
        body: body ? new Uint8Array(body) : undefined,
      });

    const first = await put(`bytes 0-${KiB256 - 1}/*`, data.subarray(0, KiB256));
    expect([first.status, first.headers.get('range')]).toEqual([308, `bytes=0-${KiB256 - 1}`]);

    const status = await put('bytes */*');
    expect([status.status, status.headers.get('range')]).toEqual([308, `bytes=0-${KiB256 - 1}`]);

    // A resent chunk that overlaps what the server has only appends the new part.
    const second = await put(`bytes 0-${2 * KiB256 - 1}/*`, data.subarray(0, 2 * KiB256));
    expect(second.headers.get('range')).toBe(`bytes=0-${2 * KiB256 - 1}`);
    expect(fake.object('fake-test', 'chunked')).toBeUndefined();

    const last = await put(`bytes ${2 * KiB256}-${data.length - 1}/${data.length}`, data.subarray(2 * KiB256));
    expect(last.status).toBe(200);
    const meta = (await last.json()) as Record<string, unknown>;
    expect(meta).toMatchObject({
      name: 'chunked',
      size: String(data.length),
      crc32c: crc32cBase64(data),
      md5Hash: md5Base64(data),
      contentType: 'application/avro',
      metadata: { k: 'v' },
    });
    expect(fake.object('fake-test', 'chunked')?.data.equals(data)).toBe(true);

    // A finished session keeps answering with the object, as GCS does.
    const after = await put('bytes */*');
    expect(after.status).toBe(200);
    expect(fake.requests.snapshot()).toMatchObject({
      'upload.resumable.start': 1,
      'upload.resumable.chunk': 3,
      'upload.resumable.status': 2,
    });
  });

  test('a final chunk whose X-Goog-Hash disagrees with the bytes is refused and stores nothing', async () => {
    const session = await startSession('bad-final');
    const res = await fetch(session, {
      method: 'PUT',
      headers: { 'content-range': 'bytes 0-4/5', 'x-goog-hash': `crc32c=${crc32cBase64(Buffer.from('other'))}` },
      body: Buffer.from('hello'),
    });
    expect(res.status).toBe(400);
    expect(fake.object('fake-test', 'bad-final')).toBeUndefined();
  });

  test('the real client uploads through a session in one request and in several chunks', async () => {
    const data = randomBytes(3 * KiB256 + 5);
    const bucket = storage.bucket('fake-test');
    await bucket.file('client-single').save(data, { resumable: true });
    await bucket.file('client-chunked').save(data, { resumable: true, chunkSize: KiB256 });
    expect(fake.object('fake-test', 'client-single')?.data.equals(data)).toBe(true);
    expect(fake.object('fake-test', 'client-chunked')?.data.equals(data)).toBe(true);
    expect(fake.requests.snapshot()).toEqual({ 'upload.resumable.start': 2, 'upload.resumable.chunk': 1 + 4 });
  });
});

describe('GCS fake: listing, compose, buckets, state', () => {
  test('list pages with maxResults/pageToken and rolls up prefixes with a delimiter', async () => {
    const bucket = storage.bucket('fake-test');
    const names = ['ls/a/1', 'ls/a/2', 'ls/b/1', 'ls/c', 'ls/d/x/y'];
    for (const n of names) await bucket.file(n).save(n, { resumable: false });

    const seen: string[] = [];
    let query: { pageToken?: string } | null = {};
    let pages = 0;
    while (query) {
      const [files, next] = await bucket.getFiles({ prefix: 'ls/', autoPaginate: false, maxResults: 2, ...query });
      seen.push(...files.map((f) => f.name));
      query = next as { pageToken?: string } | null;
      pages++;
    }
    expect(seen).toEqual(names);
    expect(pages).toBe(3);

    const rolled = (await (await fetch(api('/o?prefix=ls/&delimiter=/'))).json()) as {
      items: { name: string }[];
      prefixes: string[];
    };
    expect(rolled.items.map((i) => i.name)).toEqual(['ls/c']);
    expect(rolled.prefixes).toEqual(['ls/a/', 'ls/b/', 'ls/d/']);

    // Paging over rolled-up prefixes resumes after the last prefix, not inside it.
    const page1 = (await (await fetch(api('/o?prefix=ls/&delimiter=/&maxResults=2'))).json()) as {
      prefixes: string[];
      nextPageToken: string;
    };
    expect(page1.prefixes).toEqual(['ls/a/', 'ls/b/']);
    const page2 = (await (
      await fetch(api(`/o?prefix=ls/&delimiter=/&maxResults=2&pageToken=${page1.nextPageToken}`))
    ).json()) as { items: { name: string }[]; prefixes: string[]; nextPageToken?: string };
    expect([page2.items.map((i) => i.name), page2.prefixes, page2.nextPageToken]).toEqual([
      ['ls/c'],
      ['ls/d/'],
      undefined,
    ]);
  });

  test('compose concatenates sources with a correct crc32c and no md5, like GCS', async () => {
    const bucket = storage.bucket('fake-test');
    const parts = [randomBytes(100), randomBytes(200), randomBytes(3)];
    await Promise.all(parts.map((p, i) => bucket.file(`part-${i}`).save(p, { resumable: false })));
    await bucket.combine(['part-0', 'part-1', 'part-2'], 'composed');
    const [meta] = await bucket.file('composed').getMetadata();
    const whole = Buffer.concat(parts);
    expect([meta.crc32c, meta.md5Hash, meta.componentCount, meta.size]).toEqual([
      crc32cBase64(whole),
      undefined,
      3,
      String(whole.length),
    ]);
    const [downloaded] = await bucket.file('composed').download();
    expect(downloaded.equals(whole)).toBe(true);
  });

  test('buckets: 404 when missing without auto-create; insert then use', async () => {
    const strict = await startFake({ autoCreateBuckets: false });
    try {
      const client = new Storage({ apiEndpoint: strict.url, projectId: 'p', retryOptions: { autoRetry: false } });
      const [exists] = await client.bucket('later').exists();
      expect(exists).toBe(false);
      await expect(client.bucket('later').file('x').save('x', { resumable: false })).rejects.toMatchObject({
        code: 404,
      });
      await client.createBucket('later');
      await expect(client.createBucket('later')).rejects.toMatchObject({ code: 409 });
      await client.bucket('later').file('x').save('x', { resumable: false });
      expect(strict.object('later', 'x')?.data.toString()).toBe('x');
    } finally {
      await strict.stop();
    }
  });

  test('a new server on the old state serves the old objects (a GCS restart loses nothing)', async () => {
    const state = new FakeState();
    const first = await startFake({ state });
    const client = (url: string): Storage => new Storage({ apiEndpoint: url, projectId: 'p' });
    await client(first.url).bucket('keep').file('x').save('kept', { resumable: false });
    await first.stop();
    const second = await startFake({ state });
    try {
      const [data] = await client(second.url).bucket('keep').file('x').download();
      expect(data.toString()).toBe('kept');
    } finally {
      await second.stop();
    }
  });

  test('request counters count per route and reset', async () => {
    const bucket = storage.bucket('fake-test');
    await bucket.file('count').save('x', { resumable: false });
    await bucket.file('count').download();
    await bucket.file('count').download();
    await bucket.file('count').getMetadata();
    expect(fake.requests.snapshot()).toEqual({ 'upload.multipart': 1, 'object.download': 2, 'object.get': 1 });
    expect(fake.requests.count(['object.download', 'object.get'])).toBe(3);
    expect(fake.requests.count()).toBe(4);
    fake.requests.reset();
    expect(fake.requests.count()).toBe(0);
  });
});

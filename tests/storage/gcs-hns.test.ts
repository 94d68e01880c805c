import { fakePerFile, storeOn, uniquePrefix } from './gcs-support';

/**
 * The fake's hierarchical-namespace bucket, over raw HTTP as GCS's JSON API defines it:
 * folders implied by objects, folders.insert/get/delete, and folders.rename as a long-running
 * operation polled at operations/{id}, whose effect is one swap. Both path forms are served:
 * `/storage/v1/b/...` (apiEndpoint) and `/b/...` (STORAGE_EMULATOR_HOST).
 */
const fakeOf = fakePerFile({ renameOperationMs: 200 });

const BUCKET = 'hourglass-test';
const enc = encodeURIComponent;

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

async function call(method: string, path: string, json?: unknown, base = '/storage/v1'): Promise<Reply> {
  const res = await fetch(`${fakeOf().url}${base}/b/${BUCKET}${path}`, {
    method,
    ...(json === undefined ? {} : { body: JSON.stringify(json), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** Writes objects through the real client under a fresh prefix; returns the prefix with '/'. */
async function objects(names: string[]): Promise<string> {
  const prefix = uniquePrefix();
  const store = storeOn(fakeOf(), { prefix });
  for (const n of names) await store.createIfAbsent(n, Buffer.from(n));
  return `${prefix}/`;
}

const namesUnder = (prefix: string): string[] =>
  [...(fakeOf().state.buckets.get(BUCKET)?.objects.keys() ?? [])].filter((n) => n.startsWith(prefix)).sort();

async function poll(operationName: string, base = '/storage/v1'): Promise<Reply> {
  const id = operationName.slice(operationName.lastIndexOf('/') + 1);
  for (;;) {
    const reply = await call('GET', `/operations/${id}`, undefined, base);
    if (reply.status !== 200 || reply.body.done === true) return reply;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('writing an object creates its parent folders; they stay after the object goes', async () => {
  const p = await objects(['a/b/c']);
  for (const f of [p, `${p}a/`, `${p}a/b/`]) {
    expect(await call('GET', `/folders/${enc(f)}`)).toMatchObject({
      status: 200,
      body: { kind: 'storage#folder', name: f },
    });
  }
  expect((await call('GET', `/folders/${enc(`${p}a/b/c/`)}`)).status).toBe(404);
  await storeOn(fakeOf(), { prefix: p.slice(0, -1) }).delete('a/b/c');
  expect((await call('GET', `/folders/${enc(`${p}a/b/`)}`, undefined, '')).status).toBe(200);
});

test('folders.insert: the parent must exist unless recursive; an existing folder is 409', async () => {
  const p = `${uniquePrefix()}/`;
  expect((await call('POST', '/folders', { name: `${p}x/y/` })).status).toBe(404);
  expect(await call('POST', '/folders?recursive=true', { name: `${p}x/y/` })).toMatchObject({
    status: 200,
    body: { name: `${p}x/y/` },
  });
  expect((await call('GET', `/folders/${enc(`${p}x/`)}`)).status).toBe(200);
  expect((await call('POST', '/folders', { name: `${p}x/y/` })).status).toBe(409);
  expect((await call('POST', '/folders', { name: `${p}no-slash` })).status).toBe(400);
});

test('folders.delete: only an empty folder; then 404', async () => {
  const p = await objects(['d/x']);
  expect((await call('DELETE', `/folders/${enc(`${p}d/`)}`)).status).toBe(409);
  await storeOn(fakeOf(), { prefix: p.slice(0, -1) }).delete('d/x');
  expect((await call('DELETE', `/folders/${enc(`${p}`)}`)).status).toBe(409); // holds the folder d/
  expect((await call('DELETE', `/folders/${enc(`${p}d/`)}`)).status).toBe(204);
  expect((await call('DELETE', `/folders/${enc(`${p}d/`)}`)).status).toBe(404);
});

test.each(['/storage/v1', ''])(
  'folders.rename (base %j) answers an operation; listers see the old names until one swap moves all',
  async (base) => {
    const files = Array.from({ length: 50 }, (_, i) => `_publish/part-${i}`);
    const p = await objects([...files, '_publish/late/part-0']);
    const reply = await call(
      'POST',
      `/folders/${enc(`${p}_publish/`)}/renameTo/folders/${enc(`${p}out/`)}`,
      undefined,
      base,
    );
    expect(reply).toMatchObject({ status: 200, body: { kind: 'storage#operation', done: false } });
    // While it runs (200 ms), every object still has its old name.
    expect(namesUnder(`${p}out/`)).toEqual([]);
    expect(namesUnder(`${p}_publish/`)).toHaveLength(51);
    const done = await poll(String(reply.body.name), base);
    expect(done).toMatchObject({ status: 200, body: { done: true } });
    expect(done.body.error).toBeUndefined();
    expect(namesUnder(`${p}_publish/`)).toEqual([]);
    expect(namesUnder(`${p}out/`)).toHaveLength(51);
    expect((await call('GET', `/folders/${enc(`${p}out/late/`)}`)).status).toBe(200);
    expect((await call('GET', `/folders/${enc(`${p}_publish/`)}`)).status).toBe(404);
    expect(fakeOf().requests.count('folder.rename')).toBe(1);
  },
);

test('folders.rename: source missing 404, destination existing 409, destination parent missing 404', async () => {
  const p = await objects(['src/x', 'dst/y']);
  const rename = (from: string, to: string): Promise<Reply> =>
    call('POST', `/folders/${enc(p + from)}/renameTo/folders/${enc(p + to)}`);
  expect((await rename('none/', 'new/')).status).toBe(404);
  expect((await rename('src/', 'dst/')).status).toBe(409);
  expect((await rename('src/', 'no/parent/')).status).toBe(404);
  expect((await rename('src/', 'src/inner/')).status).toBe(400);
  expect(namesUnder(p)).toEqual([`${p}dst/y`, `${p}src/x`]);
});

test('a destination created while the operation runs: the operation ends with an error, nothing moves', async () => {
  const p = await objects(['src/x']);
  const reply = await call('POST', `/folders/${enc(`${p}src/`)}/renameTo/folders/${enc(`${p}dst/`)}`);
  expect(reply.status).toBe(200);
  expect((await call('POST', '/folders', { name: `${p}dst/` })).status).toBe(200);
  const done = await poll(String(reply.body.name));
  expect(done.body).toMatchObject({ done: true, error: { code: 409 } });
  expect(namesUnder(p)).toEqual([`${p}src/x`]);
});

test('GET /_fake/stats counts requests by route and by operation; DELETE resets them', async () => {
  await objects(['s/1', 's/2']);
  await call('GET', '/o?prefix=s/');
  const stats = (await (await fetch(`${fakeOf().url}/_fake/stats`)).json()) as Record<string, unknown>;
  expect(stats).toMatchObject({
    requests: { 'upload.multipart': 2, 'object.list': 1 },
    operations: { insert: 2, list: 1 },
    total: 3,
  });
  expect((await fetch(`${fakeOf().url}/_fake/stats`, { method: 'DELETE' })).status).toBe(204);
  expect(fakeOf().requests.count()).toBe(0);
});

test('objects.list honours fields=items(...): a partial response with only the named keys', async () => {
  const p = await objects(['l/1']);
  const reply = await call('GET', `/o?prefix=${enc(p)}&fields=${enc('items(name,size),prefixes,nextPageToken')}`);
  expect(reply.body.items).toEqual([{ name: `${p}l/1`, size: '3' }]);
  const whole = await call('GET', `/o?prefix=${enc(p)}`);
  expect(Object.keys((whole.body.items as Record<string, unknown>[])[0]!)).toContain('crc32c');
});

import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHourglassError } from '@hourglass/common';
import { LocalDirectoryStore } from '@hourglass/storage';
import { describeObjectStoreContract } from '../../storage/contract';

const roots: string[] = [];
async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'hourglass-store-'));
  roots.push(root);
  return root;
}
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

describeObjectStoreContract('LocalDirectoryStore', {
  store: async () => new LocalDirectoryStore(await freshRoot()),
  bigObjectBytes: 9 * 1024 * 1024 + 17,
});

/** Every file under `dir`, relative, including the hidden ones list() leaves out. */
async function filesOnDisk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('LocalDirectoryStore crash safety', () => {
  test('writes leave no temp files behind, on success and on refusal', async () => {
    const root = await freshRoot();
    const store = new LocalDirectoryStore(root);
    await store.createIfAbsent('t/hour=01/part-0', Buffer.from('a'));
    await store.createIfAbsent('t/hour=01/part-0', Buffer.from('b'));
    await store.put('t/lease', Buffer.from('1'));
    await store.put('t/lease', Buffer.from('2'));
    expect(await filesOnDisk(root)).toEqual(['t/hour=01/part-0', 't/lease']);
  });

  test('a temp file a crash left behind is never listed, read or mistaken for an object', async () => {
    const root = await freshRoot();
    const store = new LocalDirectoryStore(root);
    await store.createIfAbsent('t/hour=01/part-0', Buffer.from('kept'));
    // What a crash between write and link leaves: a complete temp file next to the target.
    await writeFile(join(root, 't/hour=01/.tmp-deadbeefdeadbeef'), 'half-written');
    expect(await store.list('')).toEqual([{ name: 't/hour=01/part-0', size: 4 }]);
    expect(await store.list('t/hour=01/.tmp')).toEqual([]);
    expect(
      isHourglassError(await store.get('t/hour=01/.tmp-deadbeefdeadbeef').catch((e) => e), 'STORAGE_INVALID_NAME'),
    ).toBe(true);
    // The stale temp file does not block new writes in the same directory.
    expect(await store.createIfAbsent('t/hour=01/part-1', Buffer.from('new'))).toBe(true);
  });

  test('concurrent creates in one directory leave exactly one file per name and no temp files', async () => {
    const root = await freshRoot();
    const store = new LocalDirectoryStore(root);
    const attempts = Array.from({ length: 40 }, (_, i) =>
      store.createIfAbsent(`t/part-${i % 10}`, Buffer.from(`${i}`)),
    );
    const won = (await Promise.all(attempts)).filter(Boolean).length;
    expect(won).toBe(10);
    expect(await filesOnDisk(root)).toEqual(Array.from({ length: 10 }, (_, i) => `t/part-${i}`).sort());
  });

  test('".." and absolute names are refused and nothing is written outside the root', async () => {
    const parent = await freshRoot();
    const root = join(parent, 'store');
    const store = new LocalDirectoryStore(root);
    for (const name of ['../outside', 'a/../../outside', '/etc/outside']) {
      const error = await store.createIfAbsent(name, Buffer.from('x')).catch((e: unknown) => e);
      expect(isHourglassError(error, 'STORAGE_INVALID_NAME')).toBe(true);
    }
    expect(isHourglassError(await store.list('../').catch((e) => e), 'STORAGE_INVALID_NAME')).toBe(true);
    expect(await filesOnDisk(parent)).toEqual([]);
  });

  test('an object where a directory must go is a permanent STORAGE_REJECTED, not a false "exists"', async () => {
    const store = new LocalDirectoryStore(await freshRoot());
    await store.createIfAbsent('a/b', Buffer.from('file'));
    const under = await store.createIfAbsent('a/b/c', Buffer.from('x')).catch((e: unknown) => e);
    expect(isHourglassError(under, 'STORAGE_REJECTED')).toBe(true);
    const over = await store.createIfAbsent('a', Buffer.from('x')).catch((e: unknown) => e);
    expect(isHourglassError(over, 'STORAGE_REJECTED')).toBe(true);
    expect(await store.list('')).toEqual([{ name: 'a/b', size: 4 }]);
  });

  test('url is the file URL of the resolved root', async () => {
    const root = await freshRoot();
    expect(new LocalDirectoryStore(root).url).toBe(`file://${root}`);
  });
});

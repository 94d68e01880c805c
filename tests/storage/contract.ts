import { randomBytes } from 'node:crypto';
import { isHourglassError } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';

export interface ContractSubject {
  /** A fresh, empty store for one test. */
  store: () => Promise<ObjectStore>;
  /** Size of the "big object" case: above the store's resumable threshold where it has one. */
  bigObjectBytes: number;
}

/**
 * The ObjectStore contract, run against every implementation: the consumer relies on
 * exactly these properties whichever store it is given.
 */
export function describeObjectStoreContract(label: string, subject: ContractSubject): void {
  describe(`ObjectStore contract: ${label}`, () => {
    let store: ObjectStore;
    beforeEach(async () => {
      store = await subject.store();
    });

    test('createIfAbsent creates once; a second create returns false and leaves the content', async () => {
      const first = Buffer.from('first');
      expect(await store.createIfAbsent('t/dt=2026-11-28/hour=17/part-0.avro', first)).toBe(true);
      expect(await store.createIfAbsent('t/dt=2026-11-28/hour=17/part-0.avro', Buffer.from('second'))).toBe(false);
      expect(await store.get('t/dt=2026-11-28/hour=17/part-0.avro')).toEqual(first);
      expect(await store.list('t/')).toEqual([{ name: 't/dt=2026-11-28/hour=17/part-0.avro', size: first.length }]);
    });

    test('createIfAbsent of a list of buffers stores them joined, in order (empty parts and more than IOV_MAX of them)', async () => {
      // 3,000 parts of 0-40 bytes: the local store writes them with writev, which libuv splits at IOV_MAX (1,024)
      const parts = Array.from({ length: 3000 }, (_, i) => randomBytes(i % 41));
      const joined = Buffer.concat(parts);
      expect(await store.createIfAbsent('parts/part-0.avro', parts)).toBe(true);
      expect(await store.get('parts/part-0.avro')).toEqual(joined);
      expect(await store.list('parts/')).toEqual([{ name: 'parts/part-0.avro', size: joined.length }]);
      // taken: a list of other bytes leaves it unchanged; the same bytes as a list are still not ours
      expect(await store.createIfAbsent('parts/part-0.avro', [Buffer.from('other')])).toBe(false);
      expect(await store.createIfAbsent('parts/part-0.avro', parts)).toBe(false);
      expect(await store.get('parts/part-0.avro')).toEqual(joined);
      expect(await store.createIfAbsent('parts/empty', [])).toBe(true);
      expect(await store.get('parts/empty')).toEqual(Buffer.alloc(0));
    });

    test('concurrent creates of one name: exactly one wins and its bytes are stored', async () => {
      const contenders = Array.from({ length: 8 }, (_, i) =>
        Buffer.from(`writer-${i}-${randomBytes(8).toString('hex')}`),
      );
      const results = await Promise.all(contenders.map((data) => store.createIfAbsent('race/_SUCCESS', data)));
      const winners = results.flatMap((won, i) => (won ? [i] : []));
      expect(winners).toHaveLength(1);
      expect(await store.get('race/_SUCCESS')).toEqual(contenders[winners[0] as number]);
    });

    test('concurrent creates of one name with identical bytes: still exactly one is told it created it', async () => {
      const manifest = Buffer.from('{"window":"2026-11-28T17","files":[]}');
      const results = await Promise.all(
        Array.from({ length: 8 }, () => store.createIfAbsent('same/_SUCCESS', manifest)),
      );
      expect(results.filter((won) => won)).toHaveLength(1);
      expect(await store.get('same/_SUCCESS')).toEqual(manifest);
    });

    test('concurrent creates of distinct names all succeed and all are listed', async () => {
      const names = Array.from({ length: 25 }, (_, i) => `many/part-${String(i).padStart(3, '0')}`);
      const results = await Promise.all(names.map((n) => store.createIfAbsent(n, Buffer.from(n))));
      expect(results.every((r) => r)).toBe(true);
      expect((await store.list('many/')).map((o) => o.name)).toEqual(names);
      for (const n of names) expect((await store.get(n))?.toString()).toBe(n);
    });

    test('put creates, then overwrites', async () => {
      await store.put('_watermarks/t/replica-1', Buffer.from('{"wm":1}'));
      expect((await store.get('_watermarks/t/replica-1'))?.toString()).toBe('{"wm":1}');
      await store.put('_watermarks/t/replica-1', Buffer.from('{"wm":2, "longer": true}'));
      expect((await store.get('_watermarks/t/replica-1'))?.toString()).toBe('{"wm":2, "longer": true}');
      expect(await store.list('_watermarks/')).toEqual([{ name: '_watermarks/t/replica-1', size: 24 }]);
    });

    test('get and exists of a missing object: undefined and false', async () => {
      expect(await store.get('nothing/here')).toBeUndefined();
      expect(await store.exists('nothing/here')).toBe(false);
      await store.createIfAbsent('nothing/there', Buffer.from('x'));
      expect(await store.exists('nothing/there')).toBe(true);
      // A prefix of an object is not an object.
      expect(await store.exists('nothing')).toBe(false);
      expect(await store.get('nothing')).toBeUndefined();
    });

    test('an empty object round-trips', async () => {
      expect(await store.createIfAbsent('empty/_SUCCESS', Buffer.alloc(0))).toBe(true);
      expect(await store.get('empty/_SUCCESS')).toEqual(Buffer.alloc(0));
      expect(await store.list('empty/')).toEqual([{ name: 'empty/_SUCCESS', size: 0 }]);
    });

    test('list filters by prefix (whole and partial segments) and sorts by name', async () => {
      const names = ['b/4', 'a/2', 'ab/3', 'a/1', 'a/sub/5', 'c'];
      for (const n of names) await store.createIfAbsent(n, Buffer.from(n + n));
      const sizes = (list: { name: string; size: number }[]): [string, number][] => list.map((o) => [o.name, o.size]);
      expect(sizes(await store.list('a/'))).toEqual([
        ['a/1', 6],
        ['a/2', 6],
        ['a/sub/5', 14],
      ]);
      expect((await store.list('a')).map((o) => o.name)).toEqual(['a/1', 'a/2', 'a/sub/5', 'ab/3']);
      expect((await store.list('a/s')).map((o) => o.name)).toEqual(['a/sub/5']);
      expect((await store.list('')).map((o) => o.name)).toEqual([...names].sort());
      expect(await store.list('zzz/')).toEqual([]);
    });

    test('delete removes; deleting again, or something never created, is not an error', async () => {
      await store.createIfAbsent('_staging/t/part-1', Buffer.from('data'));
      await store.delete('_staging/t/part-1');
      expect(await store.get('_staging/t/part-1')).toBeUndefined();
      expect(await store.list('_staging/')).toEqual([]);
      await expect(store.delete('_staging/t/part-1')).resolves.toBeUndefined();
      await expect(store.delete('_staging/never/was')).resolves.toBeUndefined();
      // The name is free again.
      expect(await store.createIfAbsent('_staging/t/part-1', Buffer.from('again'))).toBe(true);
      expect((await store.get('_staging/t/part-1'))?.toString()).toBe('again');
    });

    test(`a big object (${subject.bigObjectBytes} bytes) round-trips byte for byte`, async () => {
      const big = randomBytes(subject.bigObjectBytes);
      expect(await store.createIfAbsent('big/part-0.avro', big)).toBe(true);
      const back = await store.get('big/part-0.avro');
      expect(back?.length).toBe(big.length);
      expect(back?.equals(big)).toBe(true);
      expect(await store.createIfAbsent('big/part-0.avro', randomBytes(16))).toBe(false);
      expect((await store.get('big/part-0.avro'))?.equals(big)).toBe(true);
    });

    test('getRange: the bytes [start, end), shorter past the end, undefined when missing', async () => {
      const data = randomBytes(10_000);
      await store.createIfAbsent('range/part-0.avro', data);
      const range = (start: number, end: number): Promise<Buffer | undefined> =>
        store.getRange('range/part-0.avro', start, end);
      expect((await range(0, 4096))?.equals(data.subarray(0, 4096))).toBe(true);
      expect((await range(1234, 5678))?.equals(data.subarray(1234, 5678))).toBe(true);
      expect((await range(9_000, 20_000))?.equals(data.subarray(9_000))).toBe(true);
      expect((await range(0, 10_000))?.equals(data)).toBe(true);
      expect(await range(10_000, 10_001)).toEqual(Buffer.alloc(0));
      expect(await range(12_000, 13_000)).toEqual(Buffer.alloc(0));
      expect(await range(500, 500)).toEqual(Buffer.alloc(0));
      expect(await store.getRange('range/missing', 0, 10)).toBeUndefined();
      expect(await store.getRange('range/missing', 0, 0)).toBeUndefined();
      expect(await store.getRange('range', 0, 10)).toBeUndefined(); // a prefix of an object is not an object
      await store.createIfAbsent('range/empty', Buffer.alloc(0));
      expect(await store.getRange('range/empty', 0, 10)).toEqual(Buffer.alloc(0));
      for (const [start, end] of [
        [-1, 4],
        [5, 4],
        [0.5, 4],
      ] as const) {
        await expect(range(start, end)).rejects.toThrow(RangeError);
      }
    });

    test('names with spaces, unicode and Hive partition signs round-trip', async () => {
      const names = ['t/dt=2026-11-28/hour=00/part 1.avro', 't/ünïcødé/ø', 't/a+b%20c'];
      for (const n of names) expect(await store.createIfAbsent(n, Buffer.from(n))).toBe(true);
      for (const n of names) expect((await store.get(n))?.toString()).toBe(n);
      expect((await store.list('t/')).map((o) => o.name).sort()).toEqual([...names].sort());
    });

    describe('folders', () => {
      const publish = '_staging/t/dt=2026-11-28/hour=17/_publish/';
      const visible = 't/dt=2026-11-28/hour=17/';
      const put = async (names: string[]): Promise<void> => {
        for (const n of names) expect(await store.createIfAbsent(n, Buffer.from(n))).toBe(true);
      };

      test('renameFolder moves every object, nested ones too, and creates the parents of the target', async () => {
        const files = ['part-0.avro', 'late/part-0.avro', '_SUCCESS'];
        await put([...files.map((f) => publish + f), '_staging/t/dt=2026-11-28/hour=17/keep']);
        expect(await store.renameFolder(publish, visible)).toBe('renamed');
        expect((await store.list('t/')).map((o) => o.name)).toEqual(files.map((f) => visible + f).sort());
        expect((await store.get(`${visible}late/part-0.avro`))?.toString()).toBe(`${publish}late/part-0.avro`);
        expect((await store.list('_staging/')).map((o) => o.name)).toEqual(['_staging/t/dt=2026-11-28/hour=17/keep']);
      });

      test("renameFolder onto a folder holding objects: 'target-exists', nothing moves", async () => {
        await put([`${publish}part-0.avro`, `${visible}part-0.avro`]);
        expect(await store.renameFolder(publish, visible)).toBe('target-exists');
        expect((await store.get(`${visible}part-0.avro`))?.toString()).toBe(`${visible}part-0.avro`);
        expect((await store.list('_staging/')).map((o) => o.name)).toEqual([`${publish}part-0.avro`]);
      });

      test("renameFolder of a folder that is not there: 'source-missing', nothing created", async () => {
        expect(await store.renameFolder('_staging/none/_publish/', visible)).toBe('source-missing');
        expect(await store.list('')).toEqual([]);
      });

      test('renameFolder may take a target folder that its objects were deleted from', async () => {
        await put([`${visible}old`, `${publish}new`]);
        await store.delete(`${visible}old`);
        expect(await store.renameFolder(publish, visible)).toBe('renamed');
        expect((await store.list('t/')).map((o) => o.name)).toEqual([`${visible}new`]);
      });

      test('two renames racing to one target: exactly one wins', async () => {
        await put(['a/_publish/x', 'b/_publish/y']);
        const results = await Promise.all([
          store.renameFolder('a/_publish/', 'out/'),
          store.renameFolder('b/_publish/', 'out/'),
        ]);
        expect([...results].sort()).toEqual(['renamed', 'target-exists']);
        expect(await store.list('out/')).toHaveLength(1);
      });

      test('a lister of the target during renameFolder sees all of its objects or none, never a part', async () => {
        const names = Array.from({ length: 300 }, (_, i) => `part-${String(i).padStart(4, '0')}`);
        for (let i = 0; i < names.length; i += 50) {
          await Promise.all(names.slice(i, i + 50).map((n) => store.createIfAbsent(publish + n, Buffer.from(n))));
        }
        let renaming = true;
        const seen = new Set<number>();
        const lister = (async () => {
          while (renaming) {
            const listed = (await store.list('t/')).map((o) => o.name);
            expect(listed).toEqual(listed.length === 0 ? [] : names.map((n) => visible + n));
            seen.add(listed.length);
          }
        })();
        const result = await store.renameFolder(publish, visible);
        renaming = false;
        await lister;
        expect(result).toBe('renamed');
        expect(seen.size).toBeGreaterThan(0);
        expect((await store.list('')).map((o) => o.name)).toEqual(names.map((n) => visible + n));
      });

      test('listChildren: one level, objects with sizes and the folders that hold objects', async () => {
        await put(['t/a', 't/bb', 't/d1/x', 't/d1/y/z', 't/d2/q', 't/e/gone', 'tt/no']);
        await store.delete('t/e/gone');
        expect(await store.listChildren('t/')).toEqual({
          objects: [
            { name: 't/a', size: 3 },
            { name: 't/bb', size: 4 },
          ],
          prefixes: ['t/d1/', 't/d2/'],
        });
        expect(await store.listChildren('t/d1/')).toEqual({
          objects: [{ name: 't/d1/x', size: 6 }],
          prefixes: ['t/d1/y/'],
        });
        expect(await store.listChildren('')).toEqual({ objects: [], prefixes: ['t/', 'tt/'] });
        expect(await store.listChildren('nothing/')).toEqual({ objects: [], prefixes: [] });
      });

      test('deleteMany deletes every name, missing ones included', async () => {
        const names = Array.from({ length: 40 }, (_, i) => `many/part-${String(i).padStart(3, '0')}`);
        await put(names.slice(0, 30));
        await store.deleteMany([...names, 'many/never']);
        expect(await store.list('many/')).toEqual([]);
        await expect(store.deleteMany([])).resolves.toBeUndefined();
      });

      test('deleteMany refuses an invalid name before deleting anything', async () => {
        await put(['keep/a']);
        const error = await store.deleteMany(['keep/a', '../escape']).catch((e: unknown) => e);
        expect(isHourglassError(error, 'STORAGE_INVALID_NAME')).toBe(true);
        expect(await store.exists('keep/a')).toBe(true);
      });

      test('deleteFolder removes an empty folder only; absent or holding objects, it does nothing', async () => {
        await put(['f/empty/x', 'f/full/y']);
        await store.delete('f/empty/x');
        await store.deleteFolder('f/empty/');
        await store.deleteFolder('f/full/');
        await store.deleteFolder('f/never/');
        expect((await store.list('f/')).map((o) => o.name)).toEqual(['f/full/y']);
        // The empty folder is gone: there is nothing to rename any more.
        expect(await store.renameFolder('f/empty/', 'g/')).toBe('source-missing');
        expect(await store.renameFolder('f/full/', 'g/')).toBe('renamed');
      });

      test.each(['a', '/a/', 'a//', '../a/', 'a/.tmp-1/'])('refuses the folder name %j', async (folder) => {
        for (const call of [
          () => store.renameFolder(folder, 'ok/'),
          () => store.renameFolder('ok/', folder),
          () => store.deleteFolder(folder),
        ]) {
          expect(isHourglassError(await call().catch((e: unknown) => e), 'STORAGE_INVALID_NAME')).toBe(true);
        }
      });

      test('a folder cannot be renamed into itself', async () => {
        await put(['in/x']);
        expect(isHourglassError(await store.renameFolder('in/', 'in/sub/').catch((e) => e), 'STORAGE_REJECTED')).toBe(
          true,
        );
        expect((await store.list('')).map((o) => o.name)).toEqual(['in/x']);
      });
    });

    test.each(['', '/abs', 'a//b', 'a/', '../escape', 'a/../../b', './a', 'a/.tmp-123', 'bad\nname'])(
      'refuses the invalid name %j with STORAGE_INVALID_NAME',
      async (name) => {
        const calls: (() => Promise<unknown>)[] = [
          () => store.createIfAbsent(name, Buffer.from('x')),
          () => store.put(name, Buffer.from('x')),
          () => store.get(name),
          () => store.getRange(name, 0, 1),
          () => store.exists(name),
          () => store.delete(name),
        ];
        for (const call of calls) {
          const error = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isHourglassError(error, 'STORAGE_INVALID_NAME')).toBe(true);
        }
        expect(await store.list('')).toEqual([]);
      },
    );
  });
}

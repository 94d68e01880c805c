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

    test('names with spaces, unicode and Hive partition signs round-trip', async () => {
      const names = ['t/dt=2026-11-28/hour=00/part 1.avro', 't/ünïcødé/ø', 't/a+b%20c'];
      for (const n of names) expect(await store.createIfAbsent(n, Buffer.from(n))).toBe(true);
      for (const n of names) expect((await store.get(n))?.toString()).toBe(n);
      expect((await store.list('t/')).map((o) => o.name).sort()).toEqual([...names].sort());
    });

    test.each(['', '/abs', 'a//b', 'a/', '../escape', 'a/../../b', './a', 'a/.tmp-123', 'bad\nname'])(
      'refuses the invalid name %j with STORAGE_INVALID_NAME',
      async (name) => {
        const calls: (() => Promise<unknown>)[] = [
          () => store.createIfAbsent(name, Buffer.from('x')),
          () => store.put(name, Buffer.from('x')),
          () => store.get(name),
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

import { randomBytes } from 'node:crypto';
import { isHourglassError } from '@hourglass/common';
import { fakePerFile, startFake, storeOn, uniquePrefix } from './gcs-support';

/**
 * GcsStore under injected GCS faults. Every case counts what the fake received and what
 * it holds: a fault may cost retries, never a lost or doubled object, nor a wrong answer.
 * (The client's backoff starts at 1 s, so each retry costs about a second.)
 */
const fakeOf = fakePerFile();

const BUCKET = 'hourglass-test';

const errorOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('GcsStore under injected faults', () => {
  test('503s on a create are retried by the client; one object results', async () => {
    const store = storeOn(fakeOf(), { prefix: 'f503' });
    fakeOf().faults.failNext(2, 503, { routes: ['upload.multipart'] });
    expect(await store.createIfAbsent('x', Buffer.from('data'))).toBe(true);
    expect(fakeOf().requests.count('upload.multipart')).toBe(3);
    expect(fakeOf().faults.fired.failed).toBe(2);
    expect(fakeOf().object(BUCKET, 'f503/x')?.data.toString()).toBe('data');
    expect(await store.list('')).toEqual([{ name: 'x', size: 4 }]);
  });

  test('retries run out: STORAGE_UNAVAILABLE, and nothing is stored', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix(), maxRetries: 2 });
    fakeOf().faults.failNext(100, 503, { routes: ['upload.multipart'] });
    const error = await errorOf(store.createIfAbsent('x', Buffer.from('data')));
    expect(isHourglassError(error, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(fakeOf().requests.count('upload.multipart')).toBe(3);
    expect(await store.list('')).toEqual([]);
  });

  test('a 503 on a resumable chunk resends from the offset the server kept', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix(), resumableThreshold: 256 * 1024, chunkSize: 256 * 1024 });
    const data = randomBytes(256 * 1024 * 3 + 1);
    fakeOf().faults.failNext(1, 503, { routes: ['upload.resumable.chunk'] });
    expect(await store.createIfAbsent('big', data)).toBe(true);
    expect((await store.get('big'))?.equals(data)).toBe(true);
    expect(fakeOf().requests.count('upload.resumable.start')).toBe(1);
    expect(fakeOf().requests.count('upload.resumable.chunk')).toBe(5); // 4 chunks + 1 resent
    expect(fakeOf().requests.count('upload.resumable.status')).toBe(1);
  });

  test('a create whose first attempt was stored but whose answer was lost resolves true, once', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix() });
    fakeOf().faults.dropAfterCommit(1, { routes: ['upload.multipart'] });
    expect(await store.createIfAbsent('_SUCCESS', Buffer.from('manifest'))).toBe(true);
    expect(fakeOf().faults.fired.droppedAfterCommit).toBe(1);
    // The client retried into its own object (412) and the store recognised it as ours.
    expect(fakeOf().requests.count('upload.multipart')).toBe(2);
    expect(await store.list('')).toEqual([{ name: '_SUCCESS', size: 8 }]);
    // Someone else's create after that is still refused.
    expect(await store.createIfAbsent('_SUCCESS', Buffer.from('manifest'))).toBe(false);
  });

  test('a lost answer to the last chunk of a resumable create also resolves true', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix(), resumableThreshold: 256 * 1024, chunkSize: 256 * 1024 });
    const data = randomBytes(256 * 1024 * 2 + 7);
    fakeOf().faults.dropAfterCommit(1, { routes: ['upload.resumable.chunk'] });
    expect(await store.createIfAbsent('big', data)).toBe(true);
    expect(fakeOf().faults.fired.droppedAfterCommit).toBe(1);
    expect((await store.get('big'))?.equals(data)).toBe(true);
    expect(await store.list('')).toHaveLength(1);
  });

  test('a lost answer to a put still resolves, with the new bytes stored', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix() });
    await store.put('lease', Buffer.from('old'));
    fakeOf().faults.dropAfterCommit(1, { routes: ['upload.multipart'] });
    await store.put('lease', Buffer.from('new'));
    expect(fakeOf().faults.fired.droppedAfterCommit).toBe(1);
    expect((await store.get('lease'))?.toString()).toBe('new');
  });

  test('connections dropped before the server acts are retried for every operation', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix() });
    fakeOf().faults.dropConnections(1, { routes: ['upload.multipart'] });
    expect(await store.createIfAbsent('x', Buffer.from('x'))).toBe(true);
    fakeOf().faults.dropConnections(1, { routes: ['object.download'] });
    expect((await store.get('x'))?.toString()).toBe('x');
    fakeOf().faults.dropConnections(1, { routes: ['object.list'] });
    expect(await store.list('')).toEqual([{ name: 'x', size: 1 }]);
    fakeOf().faults.dropConnections(1, { routes: ['object.get'] });
    expect(await store.exists('x')).toBe(true);
    fakeOf().faults.dropConnections(1, { routes: ['object.delete'] });
    await store.delete('x');
    expect(fakeOf().faults.fired.dropped).toBe(5);
    expect(fakeOf().requests.snapshot()).toEqual({
      'upload.multipart': 2,
      'object.download': 2,
      'object.list': 2,
      'object.get': 2,
      'object.delete': 2,
    });
    expect(await store.exists('x')).toBe(false);
  });

  test('random 503s (seeded) and lost answers: each name ends up exactly once, exactly one creator wins', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix(), maxRetries: 10 });
    fakeOf().faults.failRate(0.2, { seed: 42 });
    fakeOf().faults.dropAfterCommit(8, { routes: ['upload.multipart'] });
    const names = Array.from({ length: 20 }, (_, i) => `_staging/part-${i}`);
    // Three contenders per name, two with identical bytes (as two finalizers of one hour
    // would write): exactly one of the three may be told it created the object.
    const attempts = names.flatMap((name) =>
      [0, 1, 2].map(async (writer) => {
        const data = Buffer.from(writer < 2 ? name : `${name} by ${writer}`);
        return { name, data, created: await store.createIfAbsent(name, data) };
      }),
    );
    const results = await Promise.all(attempts);
    fakeOf().faults.failRate(0);
    expect(fakeOf().faults.fired.failed).toBeGreaterThan(0);
    expect(fakeOf().faults.fired.droppedAfterCommit).toBe(8);

    const listed = await store.list('_staging/');
    expect(listed.map((o) => o.name).sort()).toEqual([...names].sort());
    for (const name of names) {
      const winners = results.filter((r) => r.name === name && r.created);
      expect(winners).toHaveLength(1);
      expect(await store.get(name)).toEqual(winners[0]?.data);
    }
  });

  test('slow answers: operations wait and succeed without spurious retries', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix() });
    fakeOf().faults.delay(300);
    expect(await store.createIfAbsent('slow', Buffer.from('s'))).toBe(true);
    expect((await store.get('slow'))?.toString()).toBe('s');
    expect(await store.list('')).toEqual([{ name: 'slow', size: 1 }]);
    expect(fakeOf().requests.snapshot()).toEqual({ 'upload.multipart': 1, 'object.download': 1, 'object.list': 1 });
    expect(fakeOf().faults.fired.delayed).toBe(3);
  });

  test('answers slower than the client timeout: the write landed anyway and the create still says true', async () => {
    // Every upload answer comes 1.5 s late, the client waits 0.5 s: all attempts time out,
    // but the first one was stored. The store must find its own object, not report failure.
    const store = storeOn(fakeOf(), { prefix: uniquePrefix(), maxRetries: 2, requestTimeoutMs: 500 });
    fakeOf().faults.delay(1500, { routes: ['upload.multipart'] });
    expect(await store.createIfAbsent('late', Buffer.from('late bytes'))).toBe(true);
    // No upload was answered in time (the client retries timeouts, up to 3 attempts);
    // the store then looked the object up and found its own writer token on it.
    expect(fakeOf().requests.count('upload.multipart')).toBeGreaterThanOrEqual(1);
    expect(fakeOf().requests.count('upload.multipart')).toBeLessThanOrEqual(3);
    expect(fakeOf().requests.count('object.get')).toBe(1);
    fakeOf().faults.delay(0);
    expect(await store.list('')).toEqual([{ name: 'late', size: 10 }]);
  });

  test('reads slower than the client timeout: STORAGE_UNAVAILABLE after the retries', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix(), maxRetries: 1, requestTimeoutMs: 300 });
    await store.createIfAbsent('x', Buffer.from('x'));
    fakeOf().faults.delay(1000, { routes: ['object.download'] });
    expect(isHourglassError(await errorOf(store.get('x')), 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(fakeOf().requests.count('object.download')).toBe(2);
  });

  test('a corrupted download is detected: STORAGE_CHECKSUM_MISMATCH', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix() });
    await store.createIfAbsent('part-0.avro', randomBytes(4096));
    fakeOf().faults.corruptDownloads(1);
    expect(isHourglassError(await errorOf(store.get('part-0.avro')), 'STORAGE_CHECKSUM_MISMATCH')).toBe(true);
    expect(fakeOf().faults.fired.corrupted).toBe(1);
  });

  test('bytes corrupted on the way up (single request): detected, nothing left stored, a retry succeeds', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix() });
    const data = randomBytes(2048);
    fakeOf().faults.corruptUploads(1);
    expect(isHourglassError(await errorOf(store.createIfAbsent('part', data)), 'STORAGE_CHECKSUM_MISMATCH')).toBe(true);
    expect(fakeOf().faults.fired.corrupted).toBe(1);
    // The client deleted what GCS stored: the bad bytes are not left under the name.
    expect(await store.list('')).toEqual([]);
    expect(await store.createIfAbsent('part', data)).toBe(true);
    expect((await store.get('part'))?.equals(data)).toBe(true);
  });

  test('bytes corrupted on the way up (resumable): GCS refuses the declared checksum, nothing is stored', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix(), resumableThreshold: 256 * 1024, chunkSize: 256 * 1024 });
    const data = randomBytes(256 * 1024 * 2 + 1);
    fakeOf().faults.corruptUploads(1);
    expect(isHourglassError(await errorOf(store.createIfAbsent('big', data)), 'STORAGE_CHECKSUM_MISMATCH')).toBe(true);
    expect(await store.list('')).toEqual([]);
    expect(await store.createIfAbsent('big', data)).toBe(true);
    expect((await store.get('big'))?.equals(data)).toBe(true);
  });

  test('GCS unreachable: STORAGE_UNAVAILABLE (transient), for reads and writes', async () => {
    const gone = await startFake();
    const store = storeOn(gone, { maxRetries: 1 });
    await gone.stop();
    expect(isHourglassError(await errorOf(store.get('x')), 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(isHourglassError(await errorOf(store.createIfAbsent('x', Buffer.from('x'))), 'STORAGE_UNAVAILABLE')).toBe(
      true,
    );
  });
});

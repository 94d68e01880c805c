import { isHourglassError } from '@hourglass/common';
import { createStore, type ObjectStore } from '@hourglass/storage';
import { fakePerFile, startFake, storeOn, uniquePrefix } from './gcs-support';

/**
 * GcsStore when GCS does not answer, answers wrongly, or answers "slow down": every call ends
 * within HOURGLASS_STORE_TIMEOUT, and a create whose outcome was hidden from it still gets the
 * right answer. Each case counts what the fake received and holds.
 */
const fakeOf = fakePerFile();

const BUCKET = 'hourglass-test';
const TIMEOUT_MS = 1000;
/** Time past the bound that a loaded 2-core machine may add to a call that gives up. */
const SLACK_MS = 1500;

const errorOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

/** Runs `call`, expects STORAGE_UNAVAILABLE, and returns how long it took. */
async function unavailableAfter(call: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  const error = await errorOf(call());
  expect(isHourglassError(error, 'STORAGE_UNAVAILABLE')).toBe(true);
  return Date.now() - started;
}

describe('HOURGLASS_STORE_TIMEOUT: a request GCS never answers', () => {
  const calls: [string, (s: ObjectStore) => Promise<unknown>][] = [
    ['get', (s) => s.get('x')],
    ['exists', (s) => s.exists('x')],
    ['list', (s) => s.list('')],
    ['listChildren', (s) => s.listChildren('')],
    ['put', (s) => s.put('lease', Buffer.from('1'))],
    ['createIfAbsent', (s) => s.createIfAbsent('x', Buffer.from('1'))],
    ['delete', (s) => s.delete('x')],
    ['deleteMany', (s) => s.deleteMany(['x', 'y'])],
    ['deleteFolder', (s) => s.deleteFolder('f/')],
    ['renameFolder', (s) => s.renameFolder('f/', 'g/')],
  ];

  test.each(calls)('%s fails STORAGE_UNAVAILABLE within the bound instead of hanging', async (_, call) => {
    const store = storeOn(fakeOf(), { timeoutMs: TIMEOUT_MS });
    fakeOf().faults.hang(Infinity);
    const took = await unavailableAfter(() => call(store));
    expect(fakeOf().faults.fired.hung).toBeGreaterThan(0);
    // A write checks once whether it landed after all: one more bounded request.
    expect(took).toBeLessThan(2 * TIMEOUT_MS + SLACK_MS);
    expect(took).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
  });

  test('a folder rename whose operation is never polled to the end gives up within the bound', async () => {
    const store = storeOn(fakeOf(), { timeoutMs: TIMEOUT_MS });
    await store.createIfAbsent('f/x', Buffer.from('x'));
    fakeOf().faults.hang(Infinity, { routes: ['operation.get'] });
    const took = await unavailableAfter(() => store.renameFolder('f/', 'g/'));
    expect(took).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    expect(fakeOf().requests.count('folder.rename')).toBe(1);
  });

  test('createStore reads HOURGLASS_STORE_TIMEOUT and refuses a bad value at start-up', async () => {
    const env = { HOURGLASS_STORE_TIMEOUT: '1s' };
    const saved = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = fakeOf().url;
    try {
      const store = createStore(`gs://${BUCKET}/${uniquePrefix()}`, { env });
      fakeOf().faults.hang(Infinity);
      expect(await unavailableAfter(() => store.get('x'))).toBeLessThan(1000 + SLACK_MS);
    } finally {
      if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = saved;
    }
    for (const bad of ['soon', '0ms', '-1s']) {
      const error = await errorOf(
        Promise.resolve().then(() => createStore('/tmp/x', { env: { HOURGLASS_STORE_TIMEOUT: bad } })),
      );
      expect(isHourglassError(error, 'CONFIG_INVALID')).toBe(true);
    }
  });
});

describe('ambiguous writes: the outcome is hidden from the client', () => {
  test('a 5xx answered after the create was stored: the retry meets it, true, one object', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix() });
    fakeOf().faults.failAfterCommit(1, 503, { routes: ['upload.multipart'] });
    expect(await store.createIfAbsent('m/_SUCCESS', Buffer.from('manifest'))).toBe(true);
    expect(fakeOf().faults.fired.failedAfterCommit).toBe(1);
    expect(fakeOf().requests.count('upload.multipart')).toBe(2); // the retry got 412
    expect(await store.list('')).toEqual([{ name: 'm/_SUCCESS', size: 8 }]);
  });

  test('a 5xx after the store with no client retry left: the writer token still says "ours"', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix(), maxRetries: 0 });
    fakeOf().faults.failAfterCommit(1, 500);
    expect(await store.createIfAbsent('m/_SUCCESS', Buffer.from('manifest'))).toBe(true);
    expect(await store.createIfAbsent('m/_SUCCESS', Buffer.from('manifest'))).toBe(false);
  });

  test('racing creators, the winner told 503 after its write: still exactly one true', async () => {
    const prefix = uniquePrefix();
    fakeOf().faults.failAfterCommit(1, 503, { routes: ['upload.multipart'] });
    const manifest = Buffer.from('{"same":"bytes"}');
    const results = await Promise.all(
      Array.from({ length: 6 }, () => storeOn(fakeOf(), { prefix }).createIfAbsent('w/_SUCCESS', manifest)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(fakeOf().faults.fired.failedAfterCommit).toBe(1);
  });

  test('a create that lands after the client gave up: the retry with the same bytes resolves true', async () => {
    const store = storeOn(fakeOf(), { prefix: uniquePrefix(), timeoutMs: TIMEOUT_MS, maxRetries: 0 });
    const data = Buffer.from('staged part');
    fakeOf().faults.applyLate(1, TIMEOUT_MS + 500, { routes: ['upload.multipart'] });
    const first = await errorOf(store.createIfAbsent('s/part-1', data));
    expect(isHourglassError(first, 'STORAGE_UNAVAILABLE')).toBe(true);
    await waitFor(() => store.exists('s/part-1'));
    expect(fakeOf().faults.fired.appliedLate).toBe(1);
    // The caller retries: it meets its own late write (412) and is told it created the object.
    expect(await store.createIfAbsent('s/part-1', data)).toBe(true);
    expect(await store.createIfAbsent('s/part-1', data)).toBe(false);
  });

  test('a late write is not mistaken for ours by another writer, even with the same bytes', async () => {
    const prefix = uniquePrefix();
    const late = storeOn(fakeOf(), { prefix, timeoutMs: TIMEOUT_MS, maxRetries: 0 });
    const data = Buffer.from('same bytes');
    fakeOf().faults.applyLate(1, TIMEOUT_MS + 500, { routes: ['upload.multipart'] });
    expect(isHourglassError(await errorOf(late.createIfAbsent('n', data)), 'STORAGE_UNAVAILABLE')).toBe(true);
    await waitFor(() => late.exists('n'));
    expect(await storeOn(fakeOf(), { prefix }).createIfAbsent('n', data)).toBe(false);
    // and the late writer, retrying with other bytes, is not told it created it either
    expect(await late.createIfAbsent('n', Buffer.from('other bytes'))).toBe(false);
  });
});

describe("GCS's per-object write limit (opt-in in the fakeOf())", () => {
  test('a second write of one name within a second is refused 429; the client backs off and succeeds', async () => {
    // A fake of its own: the hung requests above may still be retried in the background.
    const limited = await startFake({ writeRateLimitMs: 1000 });
    try {
      const store = storeOn(limited);
      const started = Date.now();
      await store.put('_watermarks/t/replica-1', Buffer.from('1'));
      await store.put('_watermarks/t/replica-1', Buffer.from('2'));
      await store.put('_watermarks/t/replica-2', Buffer.from('1')); // another name: not limited
      expect(limited.writeRateLimit.refused).toBe(1);
      expect(limited.requests.count('upload.multipart')).toBe(4);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect((await store.get('_watermarks/t/replica-1'))?.toString()).toBe('2');
      const stats = (await (await fetch(`${limited.url}/_fake/stats`)).json()) as Record<string, unknown>;
      expect(stats.faultsFired).toMatchObject({ rateLimited: 1 });
    } finally {
      await limited.stop();
    }
  });
});

/** Polls `condition` until true (a late write lands on the fake's own timer). */
async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

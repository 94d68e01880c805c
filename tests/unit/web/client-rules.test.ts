import { seededRandom } from '@hourglass/common';
import { PERMANENT_STATUSES, backoffMs, newEventId, retryAfterMs } from '@hourglass/client-web';
import { PersistentQueue } from '@hourglass/client-web/queue';

/** The browser client's platform-free parts: retry rules and the bounded stored queue. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('event ids are v4 UUIDs, distinct', () => {
  const ids = new Set(Array.from({ length: 1000 }, () => newEventId()));
  expect(ids.size).toBe(1000);
  for (const id of ids) expect(id).toMatch(UUID);
});

test('backoff is full jitter under a doubling cap', () => {
  const random = seededRandom(20);
  for (let attempt = 0; attempt <= 40; attempt++) {
    const cap = Math.min(30_000, 500 * 2 ** attempt);
    const d = backoffMs(attempt, 500, 30_000, random);
    expect(d).toBeGreaterThanOrEqual(0);
    expect(d).toBeLessThanOrEqual(cap);
  }
  expect(backoffMs(3, 500, 30_000, () => 1)).toBe(4000);
});

test('Retry-After is read in seconds; permanent statuses are never retried', () => {
  expect(retryAfterMs('2')).toBe(2000);
  expect(retryAfterMs('')).toBeUndefined();
  expect(retryAfterMs('soon')).toBeUndefined();
  expect(retryAfterMs(null)).toBeUndefined();
  expect([...PERMANENT_STATUSES].some((s) => s === 429 || s >= 500)).toBe(false);
});

test('the queue survives a reload, keeps its bound and counts what it drops', () => {
  const data = new Map<string, string>();
  const store = { getItem: (k: string) => data.get(k) ?? null, setItem: (k: string, v: string) => void data.set(k, v) };
  const q = new PersistentQueue(store, 'q', 3);
  const event = (i: number) => ({ type: 't', id: `id-${i}`, client_ts: i, payload: {} });
  const dropped = [1, 2, 3, 4, 5].map((i) => q.push(event(i)));
  expect(dropped).toEqual([0, 0, 0, 1, 1]);
  q.remove(new Set(['id-4']));
  const reloaded = new PersistentQueue(store, 'q', 3);
  expect(reloaded.all().map((e) => e.id)).toEqual(['id-3', 'id-5']);
  data.set('q', '{not json');
  expect(new PersistentQueue(store, 'q', 3).length).toBe(0);
});

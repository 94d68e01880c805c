import { hostname } from 'node:os';
import { ManualClock } from '@hourglass/common';
import { ReplicaWatermark, defaultReplicaId } from '@hourglass/consumer';
import {
  type Lease,
  assignWindow,
  checkWindowSize,
  closerOf,
  earliestOpenWindow,
  globalWatermark,
  isClosable,
  leaseName,
  leaseState,
  parseLease,
  parsePartition,
  partitionPath,
  routeEvent,
  sanitizeReplicaId,
  serializeLease,
} from '@hourglass/bucket-format';

/** Window assignment and watermark rules as pure functions, time from a ManualClock. */
const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
const MIN = 60_000;
const HOUR = 60 * MIN;

describe('windows', () => {
  test('an event belongs to the window [start, end) holding its gateway_ts', () => {
    expect(assignWindow(T0, HOUR)).toEqual({ start: T0, end: T0 + HOUR });
    expect(assignWindow(T0 + HOUR - 1, HOUR)).toEqual({ start: T0, end: T0 + HOUR });
    expect(assignWindow(T0 + HOUR, HOUR)).toEqual({ start: T0 + HOUR, end: T0 + 2 * HOUR });
    expect(assignWindow(T0 + 61_000, MIN)).toEqual({ start: T0 + MIN, end: T0 + 2 * MIN });
  });

  test('window sizes are whole minutes dividing a day', () => {
    for (const ok of [MIN, 5 * MIN, 15 * MIN, HOUR, 2 * HOUR, 24 * HOUR]) expect(checkWindowSize(ok)).toBeUndefined();
    for (const bad of [30_000, 7 * MIN, 5 * HOUR, 0]) expect(checkWindowSize(bad)).toMatch(/whole number of minutes/);
  });

  test('Hive partitions: dt/hour for hourly windows, plus minute for shorter ones, and back', () => {
    const hourly = { start: T0 + 17 * HOUR, end: T0 + 18 * HOUR };
    expect(partitionPath('track_played', hourly)).toBe('track_played/dt=2026-01-01/hour=17');
    const minute = { start: T0 + 17 * HOUR + 5 * MIN, end: T0 + 17 * HOUR + 6 * MIN };
    expect(partitionPath('track_played', minute)).toBe('track_played/dt=2026-01-01/hour=17/minute=05');
    expect(parsePartition('dt=2026-01-01/hour=17', HOUR)).toEqual(hourly);
    expect(parsePartition('dt=2026-01-01/hour=17/minute=05', MIN)).toEqual(minute);
    expect(parsePartition('dt=2026-01-01/hour=17/minute=05', 10 * MIN)).toBeUndefined();
    expect(parsePartition('nonsense', MIN)).toBeUndefined();
  });

  test('nothing closes before the watermark reaches end + grace', () => {
    const w = assignWindow(T0, HOUR);
    const grace = 5 * MIN;
    expect(isClosable(w, w.end, grace)).toBe(false);
    expect(isClosable(w, w.end + grace - 1, grace)).toBe(false);
    expect(isClosable(w, w.end + grace, grace)).toBe(true);
  });

  test('late events go to the earliest open window and keep their time', () => {
    const grace = 5 * MIN;
    const wm = T0 + HOUR + 7 * MIN; // window 0 closable (end + grace = 01:05), window 1 open
    const late = routeEvent(T0 + 30 * MIN, wm, HOUR, grace);
    expect(late).toEqual({ window: { start: T0 + HOUR, end: T0 + 2 * HOUR }, late: true });
    const onTime = routeEvent(T0 + 30 * MIN, T0 + HOUR + 4 * MIN, HOUR, grace);
    expect(onTime).toEqual({ window: { start: T0, end: T0 + HOUR }, late: false });
    // far behind: still the first open window, not the event's own or one after it
    expect(routeEvent(T0 - 10 * HOUR, wm, HOUR, grace).window.start).toBe(T0 + HOUR);
    expect(earliestOpenWindow(wm, HOUR, grace)).toEqual({ start: T0 + HOUR, end: T0 + 2 * HOUR });
    expect(earliestOpenWindow(T0 + HOUR + grace, HOUR, grace).start).toBe(T0 + HOUR);
  });

  test('a window known closed (the cursor) is never a target, whatever the local watermark', () => {
    const lastClosed = { start: T0 + HOUR, end: T0 + 2 * HOUR };
    const r = routeEvent(T0 + HOUR + 1, -Infinity, HOUR, 5 * MIN, lastClosed);
    expect(r).toEqual({ window: { start: T0 + 2 * HOUR, end: T0 + 3 * HOUR }, late: true });
    const open = routeEvent(T0 + 2 * HOUR + 1, -Infinity, HOUR, 5 * MIN, lastClosed);
    expect(open).toEqual({ window: { start: T0 + 2 * HOUR, end: T0 + 3 * HOUR }, late: false });
  });
});

describe('replica watermark', () => {
  const options = { idleAfterMs: 5_000, maxPublishDelayMs: 10_000 };

  test('holding events: the watermark stays at the oldest held gateway_ts', () => {
    const clock = new ManualClock(T0 + HOUR);
    const wm = new ReplicaWatermark(options);
    wm.observe(T0 + 10 * MIN, clock.now());
    expect(wm.advance(clock.now(), T0 + 10 * MIN)).toBe(T0 + 10 * MIN);
    clock.advance(30 * MIN);
    wm.observe(T0 + 50 * MIN, clock.now());
    // still holding the old event: no movement, however much time passes
    expect(wm.advance(clock.now(), T0 + 10 * MIN)).toBe(T0 + 10 * MIN);
  });

  test('receiving but holding nothing: the smallest gateway_ts seen since the last step', () => {
    const clock = new ManualClock(T0 + HOUR);
    const wm = new ReplicaWatermark(options);
    wm.observe(T0 + 20 * MIN, clock.now());
    wm.observe(T0 + 15 * MIN, clock.now());
    expect(wm.advance(clock.now(), undefined)).toBe(T0 + 15 * MIN);
    clock.advance(1_000);
    // nothing new since the last step but not idle yet: no movement
    expect(wm.advance(clock.now(), undefined)).toBe(T0 + 15 * MIN);
  });

  test('idle: now minus the max publish delay', () => {
    const clock = new ManualClock(T0 + HOUR);
    const wm = new ReplicaWatermark(options);
    expect(wm.isIdle(clock.now())).toBe(true);
    expect(wm.advance(clock.now(), undefined)).toBe(T0 + HOUR - 10_000);
  });

  test('a replica that just subscribed is not idle yet: a backlog takes a moment to flow', () => {
    const clock = new ManualClock(T0 + HOUR);
    const wm = new ReplicaWatermark(options, clock.now());
    expect(wm.advance(clock.now(), undefined)).toBe(-Infinity);
    clock.advance(4_999);
    expect(wm.advance(clock.now(), undefined)).toBe(-Infinity);
    clock.advance(1);
    expect(wm.advance(clock.now(), undefined)).toBe(T0 + HOUR + 5_000 - 10_000);
  });

  test('idle again after messages stop for idleAfter', () => {
    const clock = new ManualClock(T0 + HOUR);
    const wm = new ReplicaWatermark(options);
    wm.advance(clock.now(), undefined);
    wm.observe(T0, clock.now());
    clock.advance(4_999);
    expect(wm.isIdle(clock.now())).toBe(false);
    clock.advance(1);
    expect(wm.isIdle(clock.now())).toBe(true);
    expect(wm.advance(clock.now(), undefined)).toBe(T0 + HOUR + 5_000 - 10_000);
  });

  test('after a freeze the replica is not idle until idleAfter has passed awake: unread answers may wait', () => {
    const clock = new ManualClock(T0 + HOUR);
    const wm = new ReplicaWatermark(options);
    wm.observe(T0 + HOUR, clock.now());
    const before = wm.advance(clock.now(), undefined);
    clock.advance(20_000); // frozen: to the clock, nothing arrived for 20 s
    wm.resumed(clock.now());
    expect(wm.isIdle(clock.now())).toBe(false);
    expect(wm.advance(clock.now(), undefined)).toBe(before);
    clock.advance(4_999);
    expect(wm.isIdle(clock.now())).toBe(false);
    clock.advance(1);
    expect(wm.advance(clock.now(), undefined)).toBe(clock.now() - 10_000);
  });

  test('monotonic: an older held event or an old message never moves it back', () => {
    const clock = new ManualClock(T0 + HOUR);
    const wm = new ReplicaWatermark(options);
    const first = wm.advance(clock.now(), undefined);
    wm.observe(T0, clock.now());
    expect(wm.advance(clock.now(), T0)).toBe(first);
    expect(wm.advance(clock.now(), undefined)).toBe(first);
    wm.raiseTo(first - 1);
    expect(wm.value).toBe(first);
  });

  test('never beyond a ceiling: the stale lease of a dead replica whose messages come back here', () => {
    const clock = new ManualClock(T0 + HOUR);
    const wm = new ReplicaWatermark(options);
    expect(wm.advance(clock.now(), undefined, T0 + 5 * MIN)).toBe(T0 + 5 * MIN);
    clock.advance(MIN);
    expect(wm.advance(clock.now(), undefined, T0 + 5 * MIN)).toBe(T0 + 5 * MIN);
    expect(wm.advance(clock.now(), undefined)).toBe(T0 + HOUR + MIN - 10_000);
  });

  test('never beyond now minus the publish delay: a publish still in flight may be that old', () => {
    const clock = new ManualClock(T0);
    const wm = new ReplicaWatermark(options);
    wm.observe(T0, clock.now());
    expect(wm.advance(clock.now(), undefined)).toBe(T0 - 10_000);
  });
});

describe('leases and the global watermark', () => {
  const lease = (replicaId: string, watermark: number, renewedAt: number, incarnation = 'i1'): Lease => ({
    replicaId,
    incarnation,
    eventType: 'track_played',
    watermark,
    renewedAt,
    ttlMs: 30_000,
    ackDeadlineMs: 60_000,
  });

  test('live, then stale (still counted until held messages can come back), then expired', () => {
    const l = lease('a', T0, T0);
    expect(leaseState(l, T0 + 29_999)).toBe('live');
    expect(leaseState(l, T0 + 30_000)).toBe('stale');
    expect(leaseState(l, T0 + 89_999)).toBe('stale');
    expect(leaseState(l, T0 + 90_000)).toBe('expired');
  });

  test('global = min over live and stale leases; expired ones are ignored', () => {
    const clock = new ManualClock(T0 + 10 * MIN);
    const leases = [
      lease('a', T0 + 5 * MIN, clock.now()),
      lease('b', T0 + 3 * MIN, clock.now() - 40_000), // stale: still counts
      lease('c', T0, clock.now() - 100_000), // expired: ignored
    ];
    expect(globalWatermark(leases, clock.now())).toBe(T0 + 3 * MIN);
    clock.advance(50_000); // b expires too
    expect(globalWatermark(leases, clock.now())).toBe(T0 + 5 * MIN);
  });

  test('monotonic: a lower lease appearing later does not move it back', () => {
    const now = T0 + 10 * MIN;
    expect(globalWatermark([lease('a', T0 + 5 * MIN, now), lease('new', T0, now)], now, T0 + 5 * MIN)).toBe(
      T0 + 5 * MIN,
    );
    expect(globalWatermark([], now, T0)).toBe(T0);
    expect(globalWatermark([], now)).toBeUndefined();
  });

  test('the closer of a type: one live lease of a closing replica, the same whatever the order read, spread over replicas by type', () => {
    const now = T0;
    const live = [lease('b', 0, now), lease('c', 0, now), lease('d', 0, now, 'k2'), lease('d', 0, now, 'z9')];
    const dead = lease('a', 0, now - 31_000);
    const types = Array.from({ length: 400 }, (_, i) => `type_${i}`);
    const closers = new Map<string, number>();
    for (const t of types) {
      const closer = closerOf([dead, ...live], now, t)!;
      expect(closerOf([...live].reverse(), now, t)).toBe(closer); // order and expired leases do not matter
      expect(closer).not.toBe('a.i1');
      closers.set(closer, (closers.get(closer) ?? 0) + 1);
    }
    // 400 types over 4 live identities: each closes some, none more than half
    expect([...closers.keys()].sort()).toEqual(['b.i1', 'c.i1', 'd.k2', 'd.z9']);
    for (const n of closers.values()) expect(n).toBeGreaterThan(50);
    // a replica that joins takes only its share: the others keep theirs
    const joined = [...live, lease('e', 0, now)];
    const moved = types.filter((t) => closerOf(joined, now, t) !== closerOf(live, now, t));
    expect(moved.every((t) => closerOf(joined, now, t) === 'e.i1')).toBe(true);
    expect(moved.length).toBeGreaterThan(40);
    expect(moved.length).toBeLessThan(140);
    // a replica that never closes (HOURGLASS_CLOSER=false) is passed by
    const quiet = live.map((l) => ({ ...l, closes: l.replicaId !== 'b' }));
    for (const t of types) expect(closerOf(quiet, now, t)).not.toBe('b.i1');
    expect(closerOf([{ ...lease('b', 0, now), closes: false }], now, 'x')).toBeUndefined();
    expect(closerOf([], now, 'x')).toBeUndefined();
  });

  test('one replica id started twice writes two leases; a lease from before incarnations keeps its old name', () => {
    expect(leaseName('track_played', 'localhost-1', 'a1')).not.toBe(leaseName('track_played', 'localhost-1', 'b2'));
    expect(leaseName('track_played', 'r', '')).toBe('_watermarks/track_played/r.json');
    const old = { replicaId: 'r', eventType: 'track_played', watermark: T0, renewedAt: T0, ttlMs: 1, ackDeadlineMs: 1 };
    expect(parseLease(Buffer.from(JSON.stringify(old)))).toEqual({ ...old, incarnation: '' });
  });

  test('the default replica id differs per process start, even with the same host name and pid', () => {
    const ids = new Set(Array.from({ length: 20 }, () => defaultReplicaId()));
    expect(ids.size).toBe(20);
    expect([...ids].every((id) => id.startsWith(sanitizeReplicaId(`${hostname()}-${process.pid}-`)))).toBe(true);
  });

  test('a replica that knows nothing publishes null and reads back -Infinity', () => {
    const l = lease('a', -Infinity, T0);
    const text = serializeLease(l).toString();
    expect(JSON.parse(text).watermark).toBeNull();
    expect(parseLease(Buffer.from(text))).toEqual(l);
    expect(parseLease(Buffer.from('{"torn'))).toBeUndefined();
  });
});

import { ManualClock, systemClock } from '@hourglass/common';

test('a manual clock moves only when told', () => {
  const clock = new ManualClock(1_000);
  expect(clock.now()).toBe(1_000);
  expect(clock.now()).toBe(1_000);
  clock.advance(500);
  expect(clock.now()).toBe(1_500);
  clock.set(10_000);
  expect(clock.now()).toBe(10_000);
  clock.advance(0);
  clock.set(10_000);
  expect(clock.now()).toBe(10_000);
});

test('a manual clock starts at the epoch by default', () => {
  expect(new ManualClock().now()).toBe(0);
});

test('a manual clock refuses to go backwards', () => {
  const clock = new ManualClock(5_000);
  expect(() => clock.advance(-1)).toThrow(RangeError);
  expect(() => clock.set(4_999)).toThrow(RangeError);
  expect(clock.now()).toBe(5_000);
});

test('the system clock reads epoch milliseconds', () => {
  const before = Date.now();
  const now = systemClock.now();
  expect(Number.isInteger(now)).toBe(true);
  expect(now).toBeGreaterThanOrEqual(before);
});

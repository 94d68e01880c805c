import { hours, minutes, ms, parseBytes, parseDuration, seconds } from '@hourglass/common';

test('duration constructors are milliseconds', () => {
  expect([ms(5), seconds(2), minutes(3), hours(1)]).toEqual([5, 2000, 180_000, 3_600_000]);
});

test.each([
  ['250ms', 250],
  ['5s', 5000],
  ['1.5s', 1500],
  ['1m', 60_000],
  ['2h', 7_200_000],
  ['1500', 1500],
  ['0', 0],
  [' 10 s ', 10_000],
])('parseDuration(%j) = %i', (text, expected) => {
  expect(parseDuration(text)).toBe(expected);
});

test.each(['', 'soon', '-1s', '5 sec', '1d', '1e3', 's', '5ss', '1,5s'])('parseDuration(%j) is undefined', (text) => {
  expect(parseDuration(text)).toBeUndefined();
});

test.each([
  ['65536', 65536],
  ['1b', 1],
  ['64kb', 64_000],
  ['64KiB', 65_536],
  ['10mb', 10_000_000],
  ['1.5mib', 1_572_864],
  ['1gb', 1_000_000_000],
  ['2gib', 2 * 1024 ** 3],
  [' 3 MB ', 3_000_000],
])('parseBytes(%j) = %i', (text, expected) => {
  expect(parseBytes(text)).toBe(expected);
});

test.each(['', 'lots', '-1kb', '1tb', '1e6', 'kb', '10 m b'])('parseBytes(%j) is undefined', (text) => {
  expect(parseBytes(text)).toBeUndefined();
});

import { ReceiveLag } from '@hourglass/consumer/stage/receive-lag';

const T = 1_000_000;

describe('ReceiveLag', () => {
  test('without a publish time the whole lag counts', () => {
    expect(new ReceiveLag().of(T, T - 700, undefined)).toBe(700);
  });

  test("a type's steady gateway wait (its linger) is not counted; a wait above it is", () => {
    const lag = new ReceiveLag();
    // bundles that lingered 250 ms, staged 100 ms after their publish
    for (let i = 0; i < 20; i++) expect(lag.of(T + i * 300, T + i * 300 - 350, T + i * 300 - 100)).toBe(100);
    // a gateway slowed to 900 ms before the publish: 650 ms more than its steady wait counts
    expect(lag.of(T + 6_100, T + 6_100 - 1_000, T + 6_100 - 100)).toBe(750);
    // a consumer behind: 2 s in Pub/Sub
    expect(lag.of(T + 6_200, T + 6_200 - 2_250, T + 6_200 - 2_000)).toBe(2_000);
  });

  test('the baseline forgets a wait 10–30 s after it was seen, so a longer linger becomes the steady one', () => {
    const lag = new ReceiveLag();
    expect(lag.of(T, T - 115, T - 100)).toBe(100); // a 15 ms linger
    // from here the type's linger is 250 ms: at first above the remembered 15 ms
    expect(lag.of(T + 1_000, T + 1_000 - 350, T + 1_000 - 100)).toBe(335);
    expect(lag.of(T + 12_000, T + 12_000 - 350, T + 12_000 - 100)).toBe(335); // still remembered
    expect(lag.of(T + 23_000, T + 23_000 - 350, T + 23_000 - 100)).toBe(100); // forgotten
  });

  test('a publish time before the oldest event (clocks apart) counts no wait', () => {
    expect(new ReceiveLag().of(T, T - 300, T - 400)).toBe(300);
  });
});

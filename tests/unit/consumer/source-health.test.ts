import { ReplicaWatermark } from '@hourglass/consumer';

/**
 * The idle rule and source health (pure, no Pub/Sub): a replica whose subscription cannot be read
 * (Pulls failing, stream down, pulling paused, or the backlog of an outage not drained yet) keeps
 * its watermark where it is — neither the idle rule nor the smallest gateway_ts received in a
 * tick may move it — and counts as idle only `idleAfter` after the source is healthy again.
 */
const IDLE_AFTER = 1000;
const PUBLISH_DELAY = 2000;
const T = 1_000_000;

test('unhealthy: the watermark stays put whatever arrives and however long it lasts', () => {
  const wm = new ReplicaWatermark({ idleAfterMs: IDLE_AFTER, maxPublishDelayMs: PUBLISH_DELAY }, T);
  expect(wm.advance(T + 5000, undefined)).toBe(T + 5000 - PUBLISH_DELAY); // idle: follows the clock
  wm.setSourceHealthy(false, T + 5000);
  wm.observe(T + 20_000, T + 30_000); // a message of the backlog, newer than what still waits
  expect(wm.advance(T + 60_000, undefined)).toBe(T + 3000);
  expect(wm.advance(T + 120_000, undefined)).toBe(T + 3000);
  expect(wm.isIdle(T + 120_000)).toBe(false);
  // healthy again: not idle before idleAfter has passed since then
  wm.setSourceHealthy(true, T + 120_000);
  expect(wm.isIdle(T + 120_000 + IDLE_AFTER - 1)).toBe(false);
  expect(wm.advance(T + 120_000 + IDLE_AFTER - 1, undefined)).toBe(T + 3000);
  expect(wm.advance(T + 120_000 + IDLE_AFTER, undefined)).toBe(T + 120_000 + IDLE_AFTER - PUBLISH_DELAY);
});

test('healthy: a message seen in the tick is the candidate, as before', () => {
  const wm = new ReplicaWatermark({ idleAfterMs: IDLE_AFTER, maxPublishDelayMs: PUBLISH_DELAY }, T);
  wm.observe(T + 500, T + 10_000);
  expect(wm.advance(T + 10_000, undefined)).toBe(T + 500);
});

import {
  Ledger,
  Pipeline,
  deadLettered,
  expectNothingLost,
  nackedMessages,
  runTraffic,
  settle,
  FULL,
} from './pipeline';

/**
 * The store (GCS fake) answers every request with 503 for longer than the subscription's
 * delivery attempts last (dead-letter policy: 5 attempts, ack deadline 10 s: 50 s) while the
 * gateway keeps publishing. A temporary store failure must not spend delivery attempts: the
 * consumer holds what it has (leases extended, watermark pinned), retries its writes, stops
 * pulling, and catches up when the store is back. Counted: nothing dead-lettered, nothing
 * nacked, nothing lost, nothing late, nothing doubled. (Before: every failed write nacked, and
 * after 5 nacks Pub/Sub moved healthy events to the dead-letter topic.)
 */
jest.setTimeout(600_000);

const MAX_DELIVERY_ATTEMPTS = 5;

test('store down for longer than 5 delivery cycles: dead-lettered 0, nacked 0, lost 0, late 0', async () => {
  const p = await Pipeline.start({
    consumers: 1,
    store: 'gcs',
    maxDeliveryAttempts: MAX_DELIVERY_ATTEMPTS,
    // held messages keep their leases through the outage (the harness's default is 10 s)
    consumerEnv: { HOURGLASS_MAX_ACK_EXTENSION: '10m' },
  });
  const ledger = new Ledger();
  const outageMs = FULL ? 90_000 : MAX_DELIVERY_ATTEMPTS * 10_000 + 5_000;
  try {
    const fake = p.gcsFake!;
    let downAt: number | undefined;
    let upAt: number | undefined;
    await runTraffic(p, ledger, {
      durationMs: outageMs + (FULL ? 30_000 : 10_000),
      ratePerSec: FULL ? 2000 : 1000,
      during: (elapsed) => {
        if (downAt === undefined && elapsed >= 5_000) {
          downAt = elapsed;
          fake.faults.failRate(1);
        } else if (downAt !== undefined && upAt === undefined && elapsed - downAt >= outageMs) {
          upAt = elapsed;
          fake.faults.failRate(0);
        }
      },
    });
    expect(upAt).toBeDefined();
    const t = await settle(p, ledger);
    const dead = await deadLettered(p);
    const nacked = nackedMessages(p);
    expect(fake.faults.fired.failed).toBeGreaterThan(0);
    expectNothingLost(
      'store-outage',
      t,
      `, store down ${outageMs / 1000} s, 503s ${fake.faults.fired.failed}, dead-lettered ${dead}, nacked ${nacked}`,
    );
    expect(dead).toBe(0);
    expect(nacked).toBe(0);
    expect(t.late).toBe(0);
  } finally {
    await p.stop();
  }
});

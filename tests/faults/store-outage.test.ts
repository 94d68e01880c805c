import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Ledger,
  Pipeline,
  deadLettered,
  expectNothingLost,
  nackedMessages,
  runTraffic,
  settle,
  whyLate,
  FULL,
} from './pipeline';

/**
 * Staging writes fail at once for longer than the subscription's delivery attempts last
 * (dead-letter policy: 5 attempts, ack deadline 10 s: 50 s) while the gateway keeps publishing:
 * the local store's `_staging` folder is moved away and a file put in its place, so every staged
 * write fails (ENOTDIR) and finalize cannot list staging; leases still renew. (With the GCS fake
 * answering 503, the storage client's own retries held each write for ~30 s, and the old code
 * reached no nack within the outage either: that setting does not tell the two apart.) A temporary store failure must not spend delivery attempts: the
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
    store: 'local',
    maxDeliveryAttempts: MAX_DELIVERY_ATTEMPTS,
    // held messages keep their leases through the outage (the harness's default is 10 s)
    consumerEnv: { HOURGLASS_MAX_ACK_EXTENSION: '10m' },
  });
  const ledger = new Ledger();
  const outageMs = FULL ? 90_000 : MAX_DELIVERY_ATTEMPTS * 10_000 + 5_000;
  try {
    const staging = join(p.dir, 'data', '_staging');
    const down = (): void => {
      renameSync(staging, `${staging}.away`);
      writeFileSync(staging, 'staging is down\n');
    };
    const up = (): void => {
      rmSync(staging);
      renameSync(`${staging}.away`, staging);
    };
    let downAt: number | undefined;
    let upAt: number | undefined;
    await runTraffic(p, ledger, {
      durationMs: outageMs + (FULL ? 30_000 : 10_000),
      ratePerSec: FULL ? 2000 : 1000,
      during: (elapsed) => {
        if (downAt === undefined && elapsed >= 5_000) {
          downAt = elapsed;
          down();
        } else if (downAt !== undefined && upAt === undefined && elapsed - downAt >= outageMs) {
          upAt = elapsed;
          up();
        }
      },
    });
    expect(upAt).toBeDefined();
    const t = await settle(p, ledger);
    const dead = await deadLettered(p);
    const nacked = nackedMessages(p);
    const failedWrites = p.log('consumer-0').split('"msg":"store write failed; holding, retrying"').length - 1;
    expectNothingLost(
      'store-outage',
      t,
      `, staging down ${outageMs / 1000} s, failed writes logged ${failedWrites}, dead-lettered ${dead}, nacked ${nacked}`,
    );
    expect(dead).toBe(0);
    expect(nacked).toBe(0);
    if (t.late > 0) throw new Error(`late ${t.late}, expected 0\n${await whyLate(p)}`);
    expect(failedWrites).toBeGreaterThan(0); // the outage did hit staging
  } finally {
    await p.stop();
  }
});

import { FULL, sleep } from './pipeline';
import { Fleet } from './fleet';
import { TypeLedger, opsTable, sendTraffic } from './fleet-count';

/**
 * Store operations per consumer replica per minute, and how they grow with types and replicas:
 * steady traffic (no fault) over the GCS fake, every replica counted by its own front-end of the
 * fake, the first 20 s (start-up, first leases) left out. The short form (CI) runs one fleet;
 * `make test-faults` runs 25 and 100 types on 2 and 4 replicas. docs/capacity.md quotes the table.
 *
 * The bounds checked: a replica writes one lease for all its types, at most once per tick (1 s),
 * so its lease writes per minute stay under 60 (+10% for a tick that runs late and catches up),
 * whatever the types; its lease reads stay under 60 × (replicas + 1) (one per replica per tick,
 * plus a replica killed or restarted), whatever the types. With per-type leases (before
 * 2026-12-03) both grew with the types: 500–1,200 writes and 2,500–5,800 reads per replica-minute
 * at 25–100 types.
 */
const FULL_CONFIGS: [types: number, replicas: number][] = [
  [25, 2],
  [25, 4],
  [100, 2],
  [100, 4],
];
/** HOURGLASS_FLEET_CONFIGS="25x2,100x4" picks the fleets to measure. */
const CONFIGS: [types: number, replicas: number][] = process.env.HOURGLASS_FLEET_CONFIGS
  ? process.env.HOURGLASS_FLEET_CONFIGS.split(',').map((c) => c.split('x').map(Number) as [number, number])
  : FULL
    ? FULL_CONFIGS
    : [[25, 2]];
const MEASURE_MS = FULL ? 60_000 : 40_000;
const RATE = 500;

jest.setTimeout(CONFIGS.length * 300_000);

test(`store operations per replica per minute for ${CONFIGS.map(([t, r]) => `${t} types × ${r} replicas`).join(', ')}`, async () => {
  const lines: string[] = [];
  for (const [types, replicas] of CONFIGS) {
    const fleet = await Fleet.start({ types, replicas, store: 'gcs' });
    try {
      const ledger = new TypeLedger();
      const warmUntil = Date.now() + 20_000;
      await sendTraffic(fleet, ledger, { untilMs: warmUntil, ratePerSec: RATE });
      for (const r of fleet.replicas) r.ops.reset();
      await sendTraffic(fleet, ledger, { untilMs: Date.now() + MEASURE_MS, ratePerSec: RATE });
      for (const r of fleet.replicas) r.ops.stoppedMs = Date.now();
      lines.push(opsTable(`${types} types × ${replicas} replicas, ${RATE} events/s`, fleet));
      process.stdout.write(`${lines.at(-1)!}\n`); // each fleet as it is measured
      for (const r of fleet.replicas) {
        const perMinute = r.ops.perMinute();
        expect(perMinute.leaseWrite).toBeGreaterThan(0);
        expect(perMinute.leaseWrite).toBeLessThanOrEqual(60 * 1.1);
        expect(perMinute.leaseRead).toBeLessThanOrEqual(60 * (replicas + 1) * 1.1);
      }
      // traffic flowed (on a loaded machine the client falls short of the rate)
      expect(ledger.count(ledger.accepted)).toBeGreaterThan(RATE * 10);
    } finally {
      await fleet.stop();
    }
    await sleep(1000);
  }
  process.stdout.write(`fleet-ops (${FULL ? 'full' : 'short'}):\n${lines.join('\n')}\n`);
});

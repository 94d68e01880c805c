import { FULL, sleep } from './pipeline';
import { Fleet } from './fleet';
import { TypeLedger, opsTable, sendTraffic } from './fleet-count';

/**
 * Store operations per consumer replica per minute, and how they grow with types and replicas:
 * steady traffic (no fault) over the GCS fake, every replica counted by its own front-end of the
 * fake, the first 20 s (start-up, first leases) left out. The short form (CI) runs one fleet;
 * `make test-faults` runs 25 and 100 types on 2 and 4 replicas, and 100 types on 4 replicas with 2
 * per type (HOURGLASS_REPLICAS_PER_TYPE=2). docs/capacity.md quotes the table.
 *
 * The bounds checked: a replica writes one lease for all its types, at most once per tick (1 s),
 * so its lease writes per minute stay under 60 (+10% for a tick that runs late and catches up),
 * whatever the types; its lease reads stay under 60 × (replicas + 1) (one per replica per tick,
 * plus a replica killed or restarted), whatever the types. With per-type leases (before
 * 2026-12-03) both grew with the types: 500–1,200 writes and 2,500–5,800 reads per replica-minute
 * at 25–100 types.
 */
/** Types, replicas, and replicas per type (HOURGLASS_REPLICAS_PER_TYPE; 0: all). */
type FleetConfig = [types: number, replicas: number, perType: number];
const FULL_CONFIGS: FleetConfig[] = [
  [25, 2, 0],
  [25, 4, 0],
  [100, 2, 0],
  [100, 4, 0],
  [100, 4, 2],
];
/** HOURGLASS_FLEET_CONFIGS="25x2,100x4x2" picks the fleets to measure (a third number: replicas per type). */
const CONFIGS: FleetConfig[] = process.env.HOURGLASS_FLEET_CONFIGS
  ? process.env.HOURGLASS_FLEET_CONFIGS.split(',').map((c) => {
      const [types, replicas, perType] = c.split('x').map(Number);
      return [types!, replicas!, perType ?? 0];
    })
  : FULL
    ? FULL_CONFIGS
    : [
        [25, 2, 0],
        [25, 4, 2],
      ];
const MEASURE_MS = FULL ? 60_000 : 40_000;
const RATE = 500;

jest.setTimeout(CONFIGS.length * 300_000);

const label = ([types, replicas, perType]: FleetConfig): string =>
  `${types} types × ${replicas} replicas${perType > 0 ? ` (${perType} per type)` : ''}`;

test(`store operations per replica per minute for ${CONFIGS.map(label).join(', ')}`, async () => {
  const lines: string[] = [];
  for (const config of CONFIGS) {
    const [types, replicas, perType] = config;
    const consumerEnv = perType > 0 ? { HOURGLASS_REPLICAS_PER_TYPE: String(perType) } : undefined;
    const fleet = await Fleet.start({ types, replicas, store: 'gcs', ...(consumerEnv ? { consumerEnv } : {}) });
    try {
      const ledger = new TypeLedger();
      const warmUntil = Date.now() + 20_000;
      await sendTraffic(fleet, ledger, { untilMs: warmUntil, ratePerSec: RATE });
      for (const r of fleet.replicas) r.ops.reset();
      await sendTraffic(fleet, ledger, { untilMs: Date.now() + MEASURE_MS, ratePerSec: RATE });
      for (const r of fleet.replicas) r.ops.stoppedMs = Date.now();
      lines.push(opsTable(`${label(config)}, ${RATE} events/s`, fleet));
      process.stdout.write(`${lines.at(-1)!}\n`); // each fleet as it is measured
      for (const r of fleet.replicas) {
        const perMinute = r.ops.perMinute();
        expect(perMinute.leaseWrite).toBeGreaterThan(0);
        expect(perMinute.leaseWrite).toBeLessThanOrEqual(60 * 1.1);
        expect(perMinute.leaseRead).toBeLessThanOrEqual(60 * (replicas + 1) * 1.1);
      }
      // (replica, type) pairs that staged in the measured minute: every replica stages every type,
      // or each type is staged by perType replicas (no replica joined or left meanwhile)
      const pairs = fleet.replicas.reduce((n, r) => n + r.ops.stagedTypes.size, 0);
      process.stdout.write(`  (replica, type) pairs staging: ${pairs}\n`);

      expect(pairs).toBeLessThanOrEqual(types * (perType > 0 ? perType : replicas));
      expect(pairs).toBeGreaterThanOrEqual(types * (perType > 0 ? perType : replicas) * 0.9);
      // traffic flowed (on a loaded machine the client falls short of the rate)
      expect(ledger.count(ledger.accepted)).toBeGreaterThan(RATE * 10);
    } finally {
      await fleet.stop();
    }
    await sleep(1000);
  }
  process.stdout.write(`fleet-ops (${FULL ? 'full' : 'short'}):\n${lines.join('\n')}\n`);
});

import { FULL, sleep } from './pipeline';
import { Fleet, FLEET_GRACE_MS, FLEET_PUBLISH_TIMEOUT_MS, type Replica } from './fleet';
import {
  TypeLedger,
  WINDOW_MS,
  closeDelays,
  closesPerReplica,
  sendTraffic,
  settleTypes,
  totalOf,
  trafficWindows,
} from './fleet-count';

/**
 * In CI (short form): 16 types, one window. `make test-faults`: 25 types, three windows.
 * `make test-scale`: 100 types (HOURGLASS_FLEET_TYPES=100), the scale, which on the 2-core
 * machine it is developed on does not meet its close bound: 100 types on 5 replicas, the emulator,
 * the gateway and the traffic saturate both cores and windows close 1–2 minutes late, though
 * nothing is lost or duplicated (docs/capacity.md, "The fleet scale test on one machine").
 *
 * A fleet at scale on one machine: generated event types, 4 consumer replicas, one-minute
 * windows, modest traffic. 15 s into a window replica-0 (the closer of about a quarter of the types) is SIGKILLed; 10 s later a
 * fifth replica joins. Every window of every type must be published within grace + publish
 * timeout + 10 s of its end, and every type counts sent, accepted, stored, lost, duplicated.
 * It runs on the local store (the real filesystem); fleet-ops.test.ts counts the store operations
 * per replica on the GCS fake.
 *
 * The lease settings are short so that the killed replica's lease stops holding the watermark
 * inside the window it died in: ttl 15 s + ack deadline 10 s + redelivery allowance 5 s (a 5 s ttl
 * lapsed under load: a tick of 100 types took longer, and the replicas fenced their own staging).
 */
/**
 * 16 types in CI, 25 in the full form; HOURGLASS_FLEET_TYPES sets any other count. Against the
 * emulator each type costs every replica a subscription of short polls and a staged file per
 * second: the machine, not the event rate, bounds the types one host can run.
 */
const TYPES = Number(process.env.HOURGLASS_FLEET_TYPES ?? (FULL ? 25 : 16));
const REPLICAS = 4;
const RATE = FULL ? 2000 : 1000;
/** Windows of traffic; the kill and the new replica land in the last one. */
const WINDOWS = FULL ? 3 : 1;
const CLOSE_BOUND_MS = FLEET_GRACE_MS + FLEET_PUBLISH_TIMEOUT_MS + 10_000;

jest.setTimeout(FULL || TYPES > 25 ? 900_000 : 420_000);

test(`${TYPES} types, ${REPLICAS} replicas, the closer killed and a replica added: every window on time, lost 0, duplicated 0`, async () => {
  const fleet = await Fleet.start({
    types: TYPES,
    replicas: REPLICAS,
    store: 'local',
    consumerEnv: {
      HOURGLASS_LEASE_TTL: '15s',
      HOURGLASS_ACK_DEADLINE: '10s',
      HOURGLASS_MAX_ACK_EXTENSION: '10s',
      HOURGLASS_REDELIVERY_ALLOWANCE: '5s',
      HOURGLASS_IDLE_AFTER: '1s',
      // at least the client's retry deadline (90 s in sendTraffic), as operations.md says: under
      // load a re-send came 71 s after its first copy, past the default 1 min, and was stored twice
      HOURGLASS_DEDUP_HORIZON: '2m',
      // each type pulled by 2 of the live replicas (type-assignment.ts): the kill moves the killed
      // replica's types to others once its lease lapses, the added replica takes a share
      HOURGLASS_REPLICAS_PER_TYPE: process.env.HOURGLASS_FLEET_PER_TYPE ?? '2',
    },
  });
  const ledger = new TypeLedger();
  try {
    // Start at a window's beginning (or within its first 8 s), so the traffic fills whole windows.
    const phase = Date.now() % WINDOW_MS;
    if (phase > 8_000) await sleep(WINDOW_MS - phase + 250);
    const firstWindow = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS;
    const lastWindow = firstWindow + (WINDOWS - 1) * WINDOW_MS;
    const killAt = lastWindow + 15_000;
    const addAt = killAt + 10_000;
    const killed: Replica = fleet.replicas[0]!;
    let added: Promise<Replica> | undefined;
    await sendTraffic(fleet, ledger, {
      untilMs: lastWindow + WINDOW_MS - 2_500,
      ratePerSec: RATE,
      during: () => {
        if (Date.now() >= killAt && killed.process.running) fleet.kill(killed);
        if (Date.now() >= addAt && added === undefined) added = fleet.addReplica();
      },
    });
    await added;
    expect(killed.process.running).toBe(false);
    expect(fleet.replicas).toHaveLength(REPLICAS + 1);

    const windows = trafficWindows(ledger);
    const delays = await closeDelays(fleet, windows, 180_000);
    const tallies = await settleTypes(fleet, ledger, 90_000);
    const total = totalOf(tallies);
    const worst = (k: 'lost' | 'duplicated' | 'unexpected'): string =>
      tallies
        .filter((t) => t[k] > 0)
        .slice(0, 5)
        .map((t) => `${t.type} ${k} ${t[k]} of ${t.accepted}`)
        .join(', ');
    process.stdout.write(
      [
        `fleet-scale (${FULL ? 'full' : 'short'}): ${TYPES} types, ${REPLICAS}+1 replicas, ${RATE} events/s, ${windows.length} traffic window(s)`,
        `  sent ${total.sent}, accepted ${total.accepted}, stored ${total.stored} (late ${total.late}), lost ${total.lost}, duplicated ${total.duplicated}, unexpected ${total.unexpected}`,
        `  per type: accepted ${Math.min(...tallies.map((t) => t.accepted))}..${Math.max(...tallies.map((t) => t.accepted))}; ${worst('lost')} ${worst('duplicated')}`,
        `  windows published ${delays.length}; delay after window end: max ${(Math.max(...delays) / 1000).toFixed(1)} s, ` +
          `median ${(delays.sort((a, b) => a - b)[Math.floor(delays.length / 2)]! / 1000).toFixed(1)} s (bound ${CLOSE_BOUND_MS / 1000} s)`,
        `  windows closed per replica: ${closesPerReplica(fleet)}`,
      ].join('\n') + '\n',
    );
    expect(delays).toHaveLength(TYPES * windows.length);
    expect(Math.max(...delays)).toBeLessThanOrEqual(CLOSE_BOUND_MS);
    expect(total.accepted).toBeGreaterThan(RATE * 40);
    for (const t of tallies) expect(t.accepted).toBeGreaterThan(0);
    expect(total.lost).toBe(0);
    expect(total.duplicated).toBe(0);
    expect(total.unexpected).toBe(0);
  } finally {
    await fleet.stop();
  }
});

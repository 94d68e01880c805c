import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '@hourglass/emulator';
import { start as startGcsFake } from '@hourglass/gcs-fake';
import { EVENT_TYPES, FULL, Ledger, WINDOW_MS, describeTally, runTraffic, settle, tally } from '../faults/pipeline';
import { Deployment, type SharedServices } from './deployment';
import { WindowReader } from './reader';
import type { TfVars } from './terraform-env';

/**
 * The deployed configuration, run locally (issue #13): each scenario is a deployment whose
 * services get exactly the environment infra/*.tf gives them, run as Cloud Run runs them
 * (every instance PID 1 with hostname `localhost`, see instance.ts). The three deployments
 * share one Pub/Sub emulator and one GCS fake, as three projects with a bucket each.
 *
 * What an operator would change for a test pipeline goes through the module's variables
 * (tfvars below), never by editing the evaluated environment.
 */
jest.setTimeout(FULL ? 1_500_000 : 600_000);

const tfvarsFor = (scenario: string): TfVars => ({
  project_id: `hg-deployed-${scenario}`,
  bucket_name: `hg-deployed-${scenario}`,
  // One-minute windows so a run takes minutes: HOURGLASS_WINDOW through the module's service_env.
  service_env: { HOURGLASS_WINDOW: '1m' },
  // A grace in proportion to the window (300 s by default, for hours).
  grace_seconds: 5,
});

const RATE = FULL ? 2000 : 300;
const CONSUMERS = FULL ? 3 : 2;
/** Traffic after the fault: it spans the next window's end in the long form. */
/** Traffic after the fault, at least; it ends 2 s before a window's end, so the last window closes soon after. */
const AFTER_FAULT_MS = FULL ? 150_000 : 20_000;

/**
 * The last window closes within its grace (5 s) and publish timeout (5 s) after its end, unless a
 * consumer died holding a lease: then the lease's TTL (30 s) plus the ack deadline (60 s) first.
 * Four minutes bounds that with the machine's load.
 */
const CLOSE_TIMEOUT_MS = 240_000;

let shared: Promise<SharedServices & { dir: string }> | undefined;
/** Started by the first scenario (concurrent tests start before beforeAll hooks finish). */
function sharedServices(): Promise<SharedServices & { dir: string }> {
  shared ??= (async () => {
    for (const tool of ['unshare', 'nsenter', 'ip']) {
      if (spawnSync(tool, ['--version']).error) throw new Error(`${tool} is required (util-linux, iproute2)`);
    }
    if (process.getuid?.() !== 0) throw new Error('the deployed-config suite creates namespaces: run it as root');
    const dir = mkdtempSync(join(tmpdir(), 'hg-deployed-'));
    const emulator = await startEmulator({ heapMb: 1024, logFile: join(dir, 'emulator.log') });
    const gcs = await startGcsFake({ autoCreateBuckets: false });
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
    process.env.STORAGE_EMULATOR_HOST = gcs.url;
    process.env.METADATA_SERVER_DETECTION = 'none';
    return { emulator, gcs, dir };
  })();
  return shared;
}

afterAll(async () => {
  if (!shared) return;
  const s = await shared;
  await s.emulator.stop();
  await s.gcs.stop();
  if (!process.env.HOURGLASS_KEEP_FAULT_DIRS) rmSync(s.dir, { recursive: true, force: true });
});

/** Milliseconds from `t` until the wall clock is `phaseMs` into a window. */
const untilPhase = (t: number, phaseMs: number): number => (phaseMs - (t % WINDOW_MS) + WINDOW_MS) % WINDOW_MS;

/**
 * The fault lands mid-window (15–38 s into it), at least 10 s after traffic starts; traffic
 * stops 2 s before the first window end at least AFTER_FAULT_MS after the fault.
 */
function faultPlan(): { faultAtMs: number; durationMs: number } {
  const now = Date.now();
  let at = now + 10_000;
  const phase = at % WINDOW_MS;
  if (phase < 15_000 || phase > 38_000) at += untilPhase(at, 15_000);
  const stop = at + AFTER_FAULT_MS + untilPhase(at + AFTER_FAULT_MS + 2_000, 0);
  return { faultAtMs: at - now, durationMs: stop - now };
}

async function scenario(name: string, gateways: number, fault: (d: Deployment) => Promise<void>): Promise<void> {
  const s = await sharedServices();
  const d = await Deployment.start(name, join(s.dir, name), s, {
    tfvars: tfvarsFor(name),
    consumers: CONSUMERS,
    gateways,
    auditTypes: EVENT_TYPES,
  });
  const reader = new WindowReader(d.store, d.registry.eventTypes()).start();
  const ledger = new Ledger();
  try {
    const plan = faultPlan();
    let faulted: Promise<void> | undefined;
    await runTraffic(d, ledger, {
      durationMs: plan.durationMs,
      ratePerSec: RATE,
      during: (elapsed) => {
        if (!faulted && elapsed >= plan.faultAtMs) faulted = fault(d);
      },
    });
    await faulted;
    const t = await settle(d, ledger, 150_000, CLOSE_TIMEOUT_MS).catch(async (e: Error) => {
      process.stdout.write(`${describeTally(name, await tally(d, ledger))}; ${reader.describe()}\n`);
      throw e;
    });
    await reader.stop();
    const ids = d.replicaIds();
    const instances = d.consumers.length;
    process.stdout.write(
      `${describeTally(name, t)}; ${reader.describe()}; ${instances} consumer instances, replica ids: ${ids.join(', ')}\n${t.diagnosis ?? ''}`,
    );
    // Enough traffic to count; a loaded machine offers less than RATE, so this is not RATE x duration.
    expect(t.accepted).toBeGreaterThan(1000);
    expect(reader.listings).toBeGreaterThan(100);
    // Every count at once, so a failure shows all that went wrong.
    expect({
      lost: t.lost,
      duplicated: t.duplicated,
      unexpected: t.unexpected,
      manifestMismatches: t.manifestMismatches,
      filesOfUnclosedWindowsSeen: [...reader.unclosedFiles],
      distinctReplicaIds: ids.length,
    }).toEqual({
      lost: 0,
      duplicated: 0,
      unexpected: 0,
      manifestMismatches: [],
      filesOfUnclosedWindowsSeen: [],
      distinctReplicaIds: instances,
    });
  } finally {
    await reader.stop();
    await d.stop();
  }
}

test.concurrent('deployed: a consumer instance SIGKILLed mid-window and replaced by a new one', () =>
  scenario('killed', 1, async (d) => {
    const victim = d.consumers[1]!;
    victim.signal('SIGKILL');
    await victim.exited(10_000);
    await d.addInstance('consumer');
  }),
);

test.concurrent('deployed: a consumer instance gone for good', () =>
  scenario('gone', 1, async (d) => {
    const victim = d.consumers[1]!;
    victim.signal('SIGKILL');
    await victim.exited(10_000);
  }),
);

test.concurrent('deployed: a rolling replacement of every consumer instance (a new revision)', () =>
  scenario('rolling', 2, async (d) => {
    const old = [...d.consumers];
    d.newRevision();
    await Promise.all(old.map(() => d.addInstance('consumer')));
    await Promise.all(old.map((c) => c.stop()));
  }),
);

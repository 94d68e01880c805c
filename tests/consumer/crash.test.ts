import { cpSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { provisionTopology } from '@hourglass/cli';
import { Defaults, seconds, silentLogger, sha256Hex } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import { finalizeWindow } from '@hourglass/consumer';
import { parseStagedName, publishDir, type IntervalWindow } from '@hourglass/bucket-format';
import {
  MINUTE,
  auditType,
  countAgainst,
  generateBundles,
  newPubSub,
  publishBundles,
  tempDir,
  uniquePrefix,
  type PublishedEvent,
} from './support';
import { fastProcessEnv, killAll, leaseOf, replicaLeaseOf, spawnConsumer, waitFor } from './process-support';

/**
 * Consumers as real processes (services/consumer/dist/main.js) on the real emulator and
 * filesystem, killed with SIGKILL mid-window and mid-finalize, stopped with SIGTERM, and one
 * of two replicas killed for good. Time is the real clock: events are stamped in the recent
 * past, windows are one minute, grace two seconds. Every run ends with the same count:
 * every distinct event exactly once in the closed windows.
 */
jest.setTimeout(180_000);

const TYPE = 'track_played';
const registry = SchemaRegistry.load('schemas');
const pubsub = newPubSub();
const logDir = tempDir('crash-logs');
afterEach(() => killAll());
afterAll(() => pubsub.close());

interface Setup {
  prefix: string;
  root: string;
  store: ObjectStore;
  env: Record<string, string>;
  base: number;
  windows: IntervalWindow[];
  published: PublishedEvent[];
}

async function setup(): Promise<Setup> {
  const prefix = uniquePrefix();
  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE], ackDeadline: seconds(10) });
  const root = tempDir('crash');
  const base = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
  return {
    prefix,
    root,
    store: new LocalDirectoryStore(root),
    base,
    windows: [0, 1, 2, 3].map((i) => ({ start: base + i * MINUTE, end: base + (i + 1) * MINUTE })),
    published: [],
    env: {
      // what comes back after the short redelivery allowance is late, not lost
      ...fastProcessEnv(root, prefix, TYPE),
      HOURGLASS_STAGE_MAX_EVENTS: '100000',
      HOURGLASS_FINAL_FILE_BYTES: '32kib',
      HOURGLASS_AVRO_BLOCK_BYTES: '8kib',
    },
  };
}

async function publish(s: Setup, events: number, seed: number): Promise<void> {
  const { bundles, distinct } = generateBundles(registry, TYPE, {
    events,
    start: s.base,
    spanMs: 4 * MINUTE,
    maxBundle: 100,
    dupRate: 0.03,
    seed,
  });
  await publishBundles(pubsub, s.prefix, TYPE, bundles);
  s.published.push(...distinct);
}

async function stagedFiles(s: Setup): Promise<string[]> {
  return (await s.store.list(`_staging/${TYPE}/`)).map((o) => o.name).filter((n) => n.endsWith('.avro'));
}

async function allClosed(s: Setup): Promise<boolean> {
  for (const w of s.windows) {
    const d = new Date(w.start);
    const partition = `${TYPE}/dt=${d.toISOString().slice(0, 10)}/hour=${d.toISOString().slice(11, 13)}/minute=${d.toISOString().slice(14, 16)}`;
    if (!(await s.store.exists(`${partition}/_SUCCESS`))) return false;
  }
  // nothing left in staging: late events (if any) are in closed windows too
  return (await stagedFiles(s)).length === 0;
}

/**
 * Converged: the four windows closed, nothing left in staging, and every published event in
 * a closed window. Messages a killed replica held may come back after its lease expired: they
 * are then late and land in a later window, which closes within a minute (real time).
 */
async function converged(s: Setup): Promise<boolean> {
  if (!(await allClosed(s))) return false;
  const audit = await auditType(s.store, TYPE, MINUTE);
  return countAgainst(audit, s.published).present === s.published.length;
}

const CONVERGE = { timeoutMs: 120_000, intervalMs: 500 };

async function expectExactlyOnce(s: Setup): Promise<void> {
  const audit = await auditType(s.store, TYPE, MINUTE);
  expect(audit.problems).toEqual([]);
  expect(countAgainst(audit, s.published)).toEqual({
    expected: s.published.length,
    present: s.published.length,
    lost: 0,
    duplicated: 0,
    unexpected: 0,
  });
}

test('SIGKILL mid-window, restart on another replica: same counts', async () => {
  const s = await setup();
  // Everything is published before the kill: this emulator may park messages published after a
  // subscriber died on that subscriber's dead stream for minutes (real Pub/Sub does not).
  await publish(s, 3000, 11);
  await publish(s, 2000, 12);
  const first = spawnConsumer('k1', s.env, logDir);
  await waitFor(async () => (await stagedFiles(s)).length > 0, 'a first staged file');
  expect(await first.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
  // killed mid-window: nothing was closed yet
  expect((await s.store.list(`${TYPE}/`)).filter((o) => o.name.endsWith('_SUCCESS'))).toEqual([]);
  const second = spawnConsumer('k2', s.env, logDir);
  await waitFor(() => converged(s), 'every event in a closed window', CONVERGE);
  await second.kill('SIGTERM');
  await expectExactlyOnce(s);
});

test('SIGKILL mid-finalize (after the first final file), rerun elsewhere: same counts, same bytes', async () => {
  const s = await setup();
  await publish(s, 4000, 21);
  const crashing = spawnConsumer('f1', { ...s.env, HOURGLASS_TEST_CRASH_AFTER: 'part-written' }, logDir);
  const exit = await crashing.exited;
  expect(exit.signal).toBe('SIGKILL');
  expect(crashing.log()).toContain('HOURGLASS_TEST_CRASH_AFTER');
  // the window being finalized has a plan and one final file, no manifest
  const plans = (await s.store.list(`_staging/${TYPE}/`)).filter((o) => o.name.endsWith('/_plan.json'));
  expect(plans).toHaveLength(1);
  const crashed = parseStagedName(TYPE, plans[0]!.name, MINUTE)!.window;
  const partition = plans[0]!.name.slice(`_staging/`.length, plans[0]!.name.lastIndexOf('/'));
  expect(await s.store.list(`${partition}/`)).toEqual([]); // nothing published
  const leftBehind = await s.store.list(publishDir(TYPE, crashed));
  expect(leftBehind.map((o) => o.name)).toEqual([`${publishDir(TYPE, crashed)}part-00000.avro`]);
  const firstPartHash = sha256Hex((await s.store.get(leftBehind[0]!.name))!);

  // the reference: an uninterrupted finalize of a copy of the store in this process
  const refRoot = tempDir('crash-ref');
  cpSync(s.root, refRoot, { recursive: true });
  const reference = new LocalDirectoryStore(refRoot);
  await finalizeWindow(
    {
      store: reference,
      registry,
      eventType: TYPE,
      windowMs: MINUTE,
      graceMs: 2000,
      format: { finalFileBytes: 32 * 1024, blockBytes: 8 * 1024, deflateLevel: Defaults.finalDeflateLevel },
      logger: silentLogger,
      sweepOrphan: async () => undefined,
    },
    crashed,
    0, // ignored: the committed plan's watermark is used
  );

  const rerun = spawnConsumer('f2', s.env, logDir);
  await waitFor(() => converged(s), 'every event in a closed window', CONVERGE);
  await rerun.kill('SIGTERM');
  const hashes = async (store: ObjectStore): Promise<Record<string, string>> => {
    const out: Record<string, string> = {};
    for (const o of await store.list(`${partition}/`)) out[o.name] = sha256Hex((await store.get(o.name))!);
    return out;
  };
  const after = await hashes(s.store);
  expect(Object.keys(after).length).toBeGreaterThan(2); // several parts and the manifest
  expect(after).toEqual(await hashes(reference));
  expect(after[`${partition}/part-00000.avro`]).toBe(firstPartHash);
  await expectExactlyOnce(s);
});

test('two replicas, one killed for good: the other closes every window once the lease runs out', async () => {
  const s = await setup();
  await publish(s, 7000, 31); // all before the kill (see the first test)
  const a = spawnConsumer('r-a', s.env, logDir); // the type's closer or not: the rendezvous of type and lease decides
  const b = spawnConsumer('r-b', s.env, logDir);
  await waitFor(async () => (await stagedFiles(s)).length > 0, 'a first staged file');
  await a.kill('SIGKILL');
  const lease = (await leaseOf(s.store, TYPE, 'r-a'))!;
  expect(lease).toBeDefined();
  await waitFor(() => converged(s), 'every event in a window closed by r-b', CONVERGE);
  await b.kill('SIGTERM');
  expect(b.log()).toContain('window closed');
  expect(a.log()).not.toContain('window closed');
  // no window that r-a's lease held back closed before that lease stopped counting
  for (const w of s.windows) {
    if (w.end + 2000 <= lease.watermark) continue;
    const d = new Date(w.start).toISOString();
    const manifest = join(
      s.root,
      TYPE,
      `dt=${d.slice(0, 10)}`,
      `hour=${d.slice(11, 13)}`,
      `minute=${d.slice(14, 16)}`,
      '_SUCCESS',
    );
    expect(statSync(manifest).mtimeMs).toBeGreaterThanOrEqual(lease.renewedAt + lease.ttlMs + lease.ackDeadlineMs);
  }
  await expectExactlyOnce(s);
});

test('SIGTERM: stages and acks what it holds, leaves a released lease, exits 0', async () => {
  const s = await setup();
  await publish(s, 3000, 41);
  const first = spawnConsumer('t1', s.env, logDir);
  await waitFor(async () => (await stagedFiles(s)).length > 0, 'a first staged file');
  expect(await first.kill('SIGTERM')).toEqual({ code: 0, signal: null });
  expect(first.log()).toContain('consumer stopped');
  const lease = (await replicaLeaseOf(s.store, 't1'))!;
  expect(lease.ttlMs).toBe(0);
  expect(Object.keys(lease.watermarks)).toEqual([]);
  const second = spawnConsumer('t2', s.env, logDir);
  await waitFor(() => converged(s), 'every event in a closed window', CONVERGE);
  await second.kill('SIGTERM');
  await expectExactlyOnce(s);
});

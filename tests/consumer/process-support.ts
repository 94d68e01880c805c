import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Lease, type ReplicaLeaseRecord, readLeaseBoard, readLeases } from '@hourglass/bucket-format';
import type { ObjectStore } from '@hourglass/storage';

/**
 * Consumers as child processes running the built entry point (services/consumer/dist/main.js,
 * built by `npx tsc -b` / `make test`), so tests can SIGKILL and SIGTERM them for real.
 */
export const MAIN = join(__dirname, '..', '..', 'services', 'consumer', 'dist', 'main.js');

export interface ConsumerProcess {
  readonly replicaId: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log(): string;
}

const running = new Set<ConsumerProcess>();

export function spawnConsumer(replicaId: string, env: Record<string, string>, logDir: string): ConsumerProcess {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npx tsc -b\` first (make test does)`);
  const logFile = join(logDir, `${replicaId}-${Date.now()}.log`);
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
      METADATA_SERVER_DETECTION: 'none',
      HOURGLASS_LOG_LEVEL: process.env.HOURGLASS_TEST_CHILD_LOG_LEVEL ?? 'info',
      HOURGLASS_REPLICA_ID: replicaId,
      HOURGLASS_CONSUMER_HOST: '127.0.0.1',
      HOURGLASS_CONSUMER_PORT: '0',
      ...env,
    },
    stdio: ['ignore', out, out],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const proc: ConsumerProcess = {
    replicaId,
    child,
    logFile,
    exited,
    kill: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    log: () => readFileSync(logFile, 'utf8'),
  };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

/** Stops every consumer a test left running (afterEach): SIGTERM (its log then says what it did), SIGKILL after 5 s. */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...running].map(async (p) => {
      const timer = setTimeout(() => void p.kill('SIGKILL'), 5000);
      await p.kill('SIGTERM');
      clearTimeout(timer);
    }),
  );
}

/** Polls `condition` every `intervalMs` of real time. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 60_000, intervalMs = 100 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The lease a replica's process wrote, as a type sees it (its replica lease; one process started under the id). */
export async function leaseOf(store: ObjectStore, eventType: string, replicaId: string): Promise<Lease | undefined> {
  const leases = (await readLeases(store, eventType)).filter((l) => l.replicaId === replicaId);
  if (leases.length > 1) throw new Error(`${leases.length} leases of ${replicaId}: expected one process start`);
  return leases[0];
}

/**
 * The one replica lease of `replicaId`'s process start. After a graceful stop it has ttl 0 and serves
 * no type: a type it drained clean is gone from it, one it left messages of is `retired`.
 */
export async function replicaLeaseOf(store: ObjectStore, replicaId: string): Promise<ReplicaLeaseRecord | undefined> {
  const records = (await readLeaseBoard(store)).replicas.filter((r) => r.replicaId === replicaId);
  if (records.length > 1) throw new Error(`${records.length} leases of ${replicaId}: expected one process start`);
  return records[0];
}

/** A consumer process on the real clock: one-minute windows, 2 s grace, fast leases and ticks (the kill suites' settings). */
export function fastProcessEnv(root: string, prefix: string, eventType: string): Record<string, string> {
  return {
    HOURGLASS_STORE: root,
    HOURGLASS_PREFIX: prefix,
    HOURGLASS_EVENT_TYPES: eventType,
    HOURGLASS_WINDOW: '1m',
    HOURGLASS_GRACE: '2s',
    HOURGLASS_PUBLISH_TIMEOUT: '1s',
    HOURGLASS_IDLE_AFTER: '4s',
    HOURGLASS_LEASE_TTL: '2s',
    HOURGLASS_ACK_DEADLINE: '10s',
    // short, so a dead replica's lease stops counting soon
    HOURGLASS_REDELIVERY_ALLOWANCE: '10s',
    HOURGLASS_TICK: '200ms',
    HOURGLASS_STAGE_MAX_AGE: '1500ms',
  };
}

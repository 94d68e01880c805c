import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { resolve } from 'node:path';
import { HourglassError } from '@hourglass/common';
import { start as startGcsFake, type RunningGcsFake } from '@hourglass/gcs-fake';
import { createStore, LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';

/**
 * The consumer side of `hourglass up`: N consumer replicas on consecutive ports, each with
 * its own replica id, over either a local directory or the GCS fake run as a server in this
 * process (`--store gcs-fake`), so the whole @google-cloud/storage path (create-if-absent
 * uploads, delimiter listings, the HNS folder rename that publishes a window) runs locally.
 */

/** Where the replicas keep their data: a directory, or the GCS fake over HTTP. */
export type FleetStoreKind = 'local' | 'gcs-fake';

/** The bucket the fake serves; `gs://hourglass-local/data` is the store URL the replicas get. */
export const FAKE_BUCKET = 'hourglass-local';
const FAKE_STORE_URL = `gs://${FAKE_BUCKET}/data`;
/** The fake listens 10 ports above the gateway (8090 for the default 8080), so stacks do not collide. */
const FAKE_PORT_OFFSET = 10;
const MAX_REPLICAS = 64;

export interface FleetStore {
  kind: FleetStoreKind;
  /** What the replicas get as HOURGLASS_STORE, and what `hourglass ls --store` takes. */
  url: string;
  /** The same store, opened in this process (the closed-window watcher reads it). */
  store: ObjectStore;
  /** Environment the replicas (and a CLI reading the store) need: STORAGE_EMULATOR_HOST for the fake. */
  env: Record<string, string>;
  fake?: RunningGcsFake;
}

export function parseReplicas(text: string): number {
  const n = /^[1-9][0-9]*$/.test(text) ? Number(text) : NaN;
  if (!(n <= MAX_REPLICAS)) {
    throw new HourglassError('CONFIG_INVALID', `--replicas ${JSON.stringify(text)} is not 1..${MAX_REPLICAS}`, {
      path: '--replicas',
    });
  }
  return n;
}

export function parseStoreKind(text: string): FleetStoreKind {
  if (text === 'local' || text === 'gcs-fake') return text;
  throw new HourglassError('CONFIG_INVALID', `--store ${JSON.stringify(text)} is neither local nor gcs-fake`, {
    path: '--store',
  });
}

/** Ports of the replicas: the consumer port and the next ones; none may be the gateway's or the fake's. */
export function replicaPorts(consumerPort: number, replicas: number, gatewayPort: number): number[] {
  const ports = Array.from({ length: replicas }, (_, i) => consumerPort + i);
  const taken = [gatewayPort, gatewayPort + FAKE_PORT_OFFSET];
  const clash = ports.find((p) => taken.includes(p) || p > 65535);
  if (clash !== undefined) {
    throw new HourglassError(
      'CONFIG_INVALID',
      `replica port ${clash} collides with the gateway or GCS fake port, or is not a port`,
      { path: '--consumer-port' },
    );
  }
  return ports;
}

/** A replica id unique on this machine: the stack (its gateway port) and the replica's index. */
export const replicaIdOf = (gatewayPort: number, index: number): string => `up-${gatewayPort}-r${index}`;

/** Opens the store: the data directory, or a GCS fake (hierarchical namespace) started here. */
export async function openFleetStore(kind: FleetStoreKind, dataDir: string, gatewayPort: number): Promise<FleetStore> {
  if (kind === 'local') return { kind, url: dataDir, store: new LocalDirectoryStore(dataDir), env: {} };
  const fake = await startGcsFake({ port: gatewayPort + FAKE_PORT_OFFSET, buckets: [FAKE_BUCKET] });
  // This process reads the store through the real client too.
  process.env.STORAGE_EMULATOR_HOST = fake.url;
  return {
    kind,
    url: FAKE_STORE_URL,
    store: createStore(FAKE_STORE_URL),
    env: { STORAGE_EMULATOR_HOST: fake.url },
    fake,
  };
}

export interface ReplicaProcess {
  id: string;
  port: number;
  url: string;
  logFile: string;
  child: ChildProcess;
}

/** Starts the replicas as child processes (services/consumer/dist/main.js), each logging to its own file. */
export function startReplicas(o: {
  root: string;
  runDir: string;
  gatewayPort: number;
  ports: readonly number[];
  store: FleetStore;
  env: NodeJS.ProcessEnv;
}): ReplicaProcess[] {
  return o.ports.map((port, i) => {
    const id = replicaIdOf(o.gatewayPort, i);
    // One replica keeps the log name it always had.
    const logFile = resolve(o.runDir, o.ports.length === 1 ? 'consumer.log' : `consumer-${i}.log`);
    const out = openSync(logFile, 'a');
    const env = {
      ...o.env,
      ...o.store.env,
      HOURGLASS_STORE: o.store.url,
      HOURGLASS_CONSUMER_PORT: String(port),
      HOURGLASS_REPLICA_ID: id,
    };
    const child = spawn(process.execPath, [resolve(o.root, 'services/consumer/dist/main.js')], {
      env,
      stdio: ['ignore', out, out],
    });
    return { id, port, url: `http://127.0.0.1:${port}`, logFile, child };
  });
}

/** The console lines naming each replica and the store. */
export function describeFleet(replicas: readonly ReplicaProcess[], store: FleetStore): string[] {
  const lines = replicas.map(
    (r) => `consumer  ${r.url}/metrics  (replica ${r.id}, readyz ${r.url}/readyz, log ${r.logFile})`,
  );
  const first = replicas[0];
  if (first) lines.push(`status    ${first.url}/status  (every type's windows, watermark, leases, dead letters)`);
  if (store.fake) {
    lines.push(
      `gcs fake  ${store.fake.url}  (HNS bucket ${FAKE_BUCKET}, in memory; requests: ${store.fake.url}/_fake/stats)`,
    );
  }
  return lines;
}

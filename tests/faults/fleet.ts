import { manifestName, type IntervalWindow } from '@hourglass/bucket-format';
import { GATEWAY_NODE_ARGS } from '@hourglass/common';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Defaults } from '@hourglass/common';
import { freePort, startEmulator, type RunningEmulator } from '@hourglass/emulator';
import { SchemaRegistry } from '@hourglass/schemas';
import { createStore, type ObjectStore } from '@hourglass/storage';
import { FakeState, start as startGcsFake, type RequestLogEntry, type RunningGcsFake } from '@hourglass/gcs-fake';
import { provisionTopology, waitReady } from '@hourglass/cli';
import { ServiceProcess } from './pipeline';

/**
 * A fleet of consumer replicas for the scale tests: generated event types (schemas written by
 * the test), one gateway, N replicas, over a local directory or the GCS fake. On the fake every
 * replica talks to its own front-end; the front-ends share one FakeState (one bucket, one
 * namespace), so the store operations of each replica are counted exactly, without a proxy.
 * The fake runs in the test's process: at 100 types × 4 replicas (~2,000 requests/s) on a loaded
 * 2-core machine it answers too slowly, so the kill scenario runs on the local store.
 */
const ROOT = join(__dirname, '..', '..');
export const BUCKET = 'hourglass-fleet';
const STORE_URL = `gs://${BUCKET}/data`;
export const FLEET_GRACE_MS = 5_000;
export const FLEET_PUBLISH_TIMEOUT_MS = 2_000;

/** Generated type names: fleet_t000, fleet_t001, ... */
export const fleetTypes = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `fleet_t${String(i).padStart(3, '0')}`);

/** Writes `<dir>/<type>/v1.avsc` for each type: the gateway's meta record and a few payload fields. */
export function writeSchemas(dir: string, types: readonly string[]): void {
  const meta = JSON.parse(readFileSync(join(ROOT, 'schemas/ab_exposure/v1.avsc'), 'utf8')).fields[0];
  types.forEach((type, i) => {
    mkdirSync(join(dir, type), { recursive: true });
    const schema = {
      type: 'record',
      name: `Fleet${i}`,
      namespace: 'hourglass.fleet',
      fields: [
        meta,
        { name: 'user_id', type: 'string' },
        { name: 'item_id', type: 'string' },
        { name: 'amount', type: 'long' },
        { name: 'flag', type: 'boolean' },
      ],
    };
    writeFileSync(join(dir, type, 'v1.avsc'), JSON.stringify(schema, null, 2));
  });
}

/** Kinds of store operations a replica makes, from the request and the object it names. */
export const OP_KINDS = [
  'leaseWrite',
  'cursorWrite',
  'create',
  'list',
  'leaseRead',
  'cursorRead',
  'read',
  'delete',
  'rename',
  'other',
] as const;
export type OpKind = (typeof OP_KINDS)[number];

export function opKindOf(e: RequestLogEntry): OpKind {
  const name = e.name ?? '';
  if (e.route.startsWith('upload.')) {
    if (name.includes('/_watermarks/')) return name.endsWith('/_closed.json') ? 'cursorWrite' : 'leaseWrite';
    return 'create';
  }
  if (e.route === 'object.list') return 'list';
  if (e.route === 'object.get' || e.route === 'object.download') {
    if (name.includes('/_watermarks/')) return name.endsWith('/_closed.json') ? 'cursorRead' : 'leaseRead';
    return 'read';
  }
  if (e.route === 'object.delete' || e.route === 'folder.delete') return 'delete';
  if (e.route === 'folder.rename' || e.route === 'operation.get') return 'rename';
  return 'other';
}

/** Store operations of one replica, by kind, and how long it ran. */
export class StoreOps {
  readonly counts = Object.fromEntries(OP_KINDS.map((k) => [k, 0])) as Record<OpKind, number>;
  startedMs = Date.now();
  stoppedMs: number | undefined;

  /** The types this replica wrote staged data files of (`_staging/<type>/dt=…/hour=…/minute=…/<replica>…avro`). */
  readonly stagedTypes = new Set<string>();

  note(e: RequestLogEntry): void {
    const kind = opKindOf(e);
    this.counts[kind]++;
    const staged = kind === 'create' && /(?:^|\/)_staging\/([^/]+)\/.*\/[^/_][^/]*\.avro$/.exec(e.name ?? '');
    if (staged) this.stagedTypes.add(staged[1]!);
  }

  /** Counts from now on (a measurement that leaves out start-up). */
  reset(): void {
    for (const k of OP_KINDS) this.counts[k] = 0;
    this.stagedTypes.clear();
    this.startedMs = Date.now();
  }

  /** Operations per minute of the replica's life, by kind (and in total). */
  perMinute(untilMs = Date.now()): Record<OpKind | 'total', number> {
    const minutes = ((this.stoppedMs ?? untilMs) - this.startedMs) / 60_000;
    const out = { total: 0 } as Record<OpKind | 'total', number>;
    for (const k of OP_KINDS) {
      out[k] = Math.round(this.counts[k] / minutes);
      out.total += out[k];
    }
    return out;
  }
}

export interface Replica {
  id: string;
  process: ServiceProcess;
  /** The replica's front-end of the fake (GCS store only). */
  front: RunningGcsFake | undefined;
  ops: StoreOps;
}

export interface FleetOptions {
  types: number;
  replicas: number;
  store: 'local' | 'gcs';
  /** Extra consumer settings (the scale test shortens the lease and the redelivery allowance). */
  consumerEnv?: Record<string, string>;
}

export class Fleet {
  readonly dir = mkdtempSync(join(tmpdir(), 'hg-fleet-'));
  readonly schemasDir = join(this.dir, 'schemas');
  readonly types: string[];
  readonly registry: SchemaRegistry;
  readonly state = new FakeState(false);
  readonly replicas: Replica[] = [];
  readonly startedMs = Date.now();
  emulator!: RunningEmulator;
  gateway!: ServiceProcess;
  gatewayUrl = '';
  /** The test's own view of the bucket, through a front-end of its own (not counted for any replica). */
  store!: ObjectStore;
  private reader: RunningGcsFake | undefined;

  private get storeUrl(): string {
    return this.options.store === 'gcs' ? STORE_URL : join(this.dir, 'data');
  }
  private baseEnv: NodeJS.ProcessEnv = {};
  private nextReplica = 0;

  private constructor(private readonly options: FleetOptions) {
    this.types = fleetTypes(options.types);
    writeSchemas(this.schemasDir, this.types);
    this.registry = SchemaRegistry.load(this.schemasDir);
    this.state.insertBucket(BUCKET);
  }

  static async start(options: FleetOptions): Promise<Fleet> {
    const f = new Fleet(options);
    // A fleet that fails to start stops what it started, so no process outlives the test.
    await f.init().catch(async (e: unknown) => {
      await f.stop();
      throw e;
    });
    return f;
  }

  private async init(): Promise<void> {
    this.emulator = await startEmulator({ heapMb: 1024, logFile: join(this.dir, 'emulator.log') });
    process.env.PUBSUB_EMULATOR_HOST = this.emulator.host;
    process.env.METADATA_SERVER_DETECTION = 'none';
    await provisionTopology({ projectId: Defaults.projectId, prefix: Defaults.prefix, eventTypes: this.types });
    if (this.options.store === 'gcs') {
      this.reader = await startGcsFake({ state: this.state });
      process.env.STORAGE_EMULATOR_HOST = this.reader.url;
    }
    this.store = createStore(this.storeUrl);
    this.baseEnv = {
      ...process.env,
      PUBSUB_EMULATOR_HOST: this.emulator.host,
      METADATA_SERVER_DETECTION: 'none',
      HOURGLASS_SCHEMAS_DIR: this.schemasDir,
      HOURGLASS_PUBLISH_TIMEOUT: `${FLEET_PUBLISH_TIMEOUT_MS}ms`,
      HOURGLASS_LOG_LEVEL: 'info',
    };
    const port = await freePort();
    this.gatewayUrl = `http://127.0.0.1:${port}`;
    this.gateway = new ServiceProcess(
      'gateway',
      'services/gateway/dist/server.js',
      { ...this.baseEnv, HOURGLASS_GATEWAY_PORT: String(port), HOURGLASS_AUTH: 'disabled', HOURGLASS_GATEWAY_ID: 'gw' },
      join(this.dir, 'gateway.log'),
      GATEWAY_NODE_ARGS,
    );
    await waitReady(`${this.gatewayUrl}/readyz`, 120_000);
    const starting: Promise<Replica>[] = [];
    for (let i = 0; i < this.options.replicas; i++) starting.push(this.addReplica());
    await Promise.all(starting);
    this.replicas.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  }

  /** Starts one more replica (id `replica-<n>`) with its own port and its own counted front-end of the fake. */
  async addReplica(): Promise<Replica> {
    // The index is taken before the first await: replicas started together get distinct ids.
    const i = this.nextReplica++;
    const ops = new StoreOps();
    const front =
      this.options.store === 'gcs'
        ? await startGcsFake({ state: this.state, onRequest: (e) => ops.note(e) })
        : undefined;
    const port = await freePort();
    const id = `replica-${i}`;
    const service = new ServiceProcess(
      id,
      'services/consumer/dist/main.js',
      {
        ...this.baseEnv,
        ...(front ? { STORAGE_EMULATOR_HOST: front.url } : {}),
        HOURGLASS_STORE: this.storeUrl,
        HOURGLASS_WINDOW: '1m',
        HOURGLASS_GRACE: `${FLEET_GRACE_MS}ms`,
        HOURGLASS_START: new Date(this.startedMs).toISOString(),
        HOURGLASS_REPLICA_ID: id,
        HOURGLASS_CONSUMER_PORT: String(port),
        ...this.options.consumerEnv,
      },
      join(this.dir, `${id}.log`),
    );
    const replica = { id, process: service, front, ops };
    this.replicas.push(replica);
    await waitReady(`http://127.0.0.1:${port}/readyz`, 300_000).catch(async (e: unknown) => {
      const why = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.text(), String);
      throw new Error(`${id}: ${String(e)}: ${why}\n${this.log(id).split('\n').slice(-8).join('\n')}`);
    });
    return replica;
  }

  kill(replica: Replica): void {
    replica.process.signal('SIGKILL');
    replica.ops.stoppedMs = Date.now();
  }

  log(name: string): string {
    try {
      return readFileSync(join(this.dir, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** When the window's `_SUCCESS` became visible (the publishing rename sets `updated`), or undefined. */
  publishedAt(type: string, w: IntervalWindow): number | undefined {
    if (this.options.store === 'local') {
      // written just before the rename(2) that publishes the window
      const manifest = join(this.storeUrl, manifestName(type, w));
      return existsSync(manifest) ? statSync(manifest).mtimeMs : undefined;
    }
    const o = this.state.buckets.get(BUCKET)?.objects.get(`data/${manifestName(type, w)}`);
    return o ? Date.parse(o.updated) : undefined;
  }

  async stop(): Promise<void> {
    for (const r of this.replicas) {
      if (r.process.running) await r.process.stop();
      r.ops.stoppedMs ??= Date.now();
    }
    await this.gateway?.stop();
    await this.emulator?.stop();
    for (const r of this.replicas) await r.front?.stop();
    await this.reader?.stop();
    if (!process.env.HOURGLASS_KEEP_FAULT_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}

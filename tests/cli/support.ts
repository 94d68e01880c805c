import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { silentLogger } from '@hourglass/common';
import { EventGenerator } from '@hourglass/client';
import { SchemaRegistry, type EventRecord } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import { type FinalizeContext, finalizeWindow, writeReplicaLease } from '@hourglass/consumer';
import {
  type IntervalWindow,
  type Manifest,
  OcfWriter,
  assignWindow,
  publishDir,
  partitionPath,
  schemaTextOf,
  stagedFileName,
  syncMarkerFor,
} from '@hourglass/bucket-format';
import { writeCursor } from '@hourglass/consumer/coordination';
import { HOUR, MINUTE, T0, tempDir } from '../support/fixtures';

/**
 * Support for the CLI suites: a real local store whose windows the consumer's own code wrote
 * (staged container files → finalizeWindow → final files and _SUCCESS), and a runner for the
 * built CLI as a child process.
 */
export const REPO = join(__dirname, '..', '..');
export const BUILT_CLI = join(REPO, 'packages', 'cli', 'dist', 'main.js');
export { HOUR, MINUTE, T0, tempDir };
const GRACE = 10_000;

export const registry = SchemaRegistry.load(join(REPO, 'schemas'));

// ---------------------------------------------------------------------------------------------
// The CLI as an operator runs it

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Environment of a CLI run: the test's own, minus anything that would pick a store or a schema directory. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // a zone east of UTC by a fraction of an hour: what the CLI prints must not depend on it
  const env: NodeJS.ProcessEnv = { ...process.env, HOURGLASS_LOG_LEVEL: 'silent', TZ: 'Asia/Kolkata' };
  for (const k of ['HOURGLASS_STORE', 'HOURGLASS_SCHEMAS_DIR', 'STORAGE_EMULATOR_HOST']) delete env[k];
  return { ...env, ...extra };
}

/** Runs `node packages/cli/dist/main.js ...args` from the repository root. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 45_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [BUILT_CLI, ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: Date.now() - started,
      });
    });
  });
}

/** At most `limit` CLI processes at a time (two cores: node start-up is most of each run). */
export class CliPool {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await runCli(args, env);
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export const lines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);
export const STACK_FRAME = /^\s+at /m;

// ---------------------------------------------------------------------------------------------
// A store written by the consumer's code

/** Events of a type's newest schema: generated payloads plus the meta the gateway adds. */
export class Events {
  private readonly generator: EventGenerator;

  constructor(private readonly type: string) {
    this.generator = new EventGenerator(registry, { types: [type], seed: 7 });
  }

  /** `n` new events with gateway_ts spread over [start, start + span). */
  make(n: number, start: number, span: number): EventRecord[] {
    return Array.from({ length: n }, (_, i) => {
      const ts = start + Math.floor((i * span) / n);
      return {
        ...this.generator.next().payload,
        meta: { event_id: randomUUID(), gateway_ts: ts, client_ts: ts - 17, gateway_id: 'gw-cli-test' },
      } as EventRecord;
    });
  }
}

export const idsOf = (records: readonly EventRecord[]): string[] => records.map((r) => r.meta.event_id);

export class StoreWriter {
  readonly store: ObjectStore;
  private seq = 0;

  constructor(
    readonly root: string,
    readonly type: string,
    readonly windowMs: number,
  ) {
    this.store = new LocalDirectoryStore(root);
  }

  window(start: number): IntervalWindow {
    return assignWindow(start, this.windowMs);
  }

  /** The partition relative to the type, as `hourglass cat` takes it. */
  partition(w: IntervalWindow): string {
    return partitionPath(this.type, w).slice(this.type.length + 1);
  }

  /** One staged file, written the way the stager writes them (newest schema, deflate). */
  async stage(w: IntervalWindow, records: readonly EventRecord[], opts: { late?: boolean; replica?: string } = {}) {
    const latest = registry.get(this.type).latest;
    const name = stagedFileName(this.type, w, opts.late ?? false, opts.replica ?? 'r1', 'cli', this.seq++);
    const writer = new OcfWriter({
      type: latest.type,
      schema: schemaTextOf(latest),
      syncMarker: syncMarkerFor(name),
      deflateLevel: 6,
      blockBytes: 4096,
    });
    for (const r of records) writer.appendRecord(r);
    if (!(await this.store.createIfAbsent(name, await writer.finish()))) throw new Error(`${name} exists`);
    return name;
  }

  /** Closes a window the way the closer does; small final files so a window has several. */
  async close(w: IntervalWindow): Promise<Manifest> {
    const { manifest, created } = await finalizeWindow(this.context(), w, w.end + GRACE);
    if (!created) throw new Error(`${partitionPath(this.type, w)} was closed already`);
    return manifest;
  }

  /** A closer that dies after its first final file: final files in the unpublished folder, no manifest (ls says finalizing). */
  async crashWhileClosing(w: IntervalWindow): Promise<{ files: number; bytes: number }> {
    const crash = new Error('simulated crash after part-written');
    const ctx = this.context((step) => {
      if (step === 'part-written') throw crash;
    });
    const outcome = await finalizeWindow(ctx, w, w.end + GRACE).catch((e: unknown) => e);
    if (outcome !== crash) throw new Error(`finalize of ${partitionPath(this.type, w)} did not stop as planned`);
    const final = await this.store.list(publishDir(this.type, w)); // unpublished: readers see none
    return { files: final.length, bytes: final.reduce((n, o) => n + o.size, 0) };
  }

  private context(onStep?: FinalizeContext['onStep']): FinalizeContext {
    return {
      store: this.store,
      registry,
      eventType: this.type,
      windowMs: this.windowMs,
      graceMs: GRACE,
      format: { finalFileBytes: 4 * 1024, blockBytes: 2048, deflateLevel: 6 },
      logger: silentLogger,
      sweepOrphan: () => Promise.reject(new Error('no orphans expected in the CLI fixture')),
      ...(onStep ? { onStep } : {}),
    };
  }

  async lease(replicaId: string, watermark: number, renewedAt: number, ttlMs: number, ackDeadlineMs: number) {
    await writeReplicaLease(this.store, {
      replicaId,
      incarnation: 'i1',
      renewedAt,
      ttlMs,
      ackDeadlineMs,
      closes: true,
      watermarks: { [this.type]: watermark },
    });
  }

  async cursor(lastClosed: IntervalWindow): Promise<void> {
    await writeCursor(this.store, {
      eventType: this.type,
      lastClosed,
      watermark: lastClosed.end + GRACE,
      updatedAt: Date.now(),
    });
  }
}

/** What the fixture wrote into one window, to compare the CLI's output with. */
export interface WindowTruth {
  partition: string;
  status: 'open' | 'finalizing' | 'closed';
  /** Distinct event ids that must come out of the window (duplicates dropped). */
  ids: Set<string>;
  /** The manifest finalize wrote (closed windows). */
  manifest?: Manifest;
  /** The counts its manifest must have (closed windows), from what was staged. */
  counts?: Counts;
  /** Final files already written (finalizing windows). */
  final?: { files: number; bytes: number };
}

export interface Counts {
  records: number;
  late: number;
  duplicatesDropped: number;
}

export interface Group {
  type: string;
  windows: WindowTruth[];
}

export interface Fixture {
  root: string;
  /** track_played, one-minute windows: A closed (in-window duplicates), B closed (late file, duplicates of A), C open. */
  minute: Group;
  /** page_viewed, one-hour windows: H0 closed and empty, H1 closed, H2 finalizing (its closer crashed). */
  hour: Group;
  /** search_performed, 15-minute windows: 00:15 closed. */
  quarter: Group;
  /** ab_exposure, one-day windows: 2026-01-01 closed (its partition is dt=…/hour=00, like a 1-hour window's). */
  day: Group;
  leases: { live: string; stale: string; expired: string; globalWatermark: number };
}

export async function buildFixture(root: string): Promise<Fixture> {
  /** Closes `w`; `events` and `counts` are what its manifest must hold (from what was staged, not from finalize). */
  const closed = async (
    writer: StoreWriter,
    w: IntervalWindow,
    events: readonly EventRecord[],
    counts: Counts,
  ): Promise<WindowTruth> => ({
    partition: writer.partition(w),
    status: 'closed',
    ids: new Set(idsOf(events)),
    manifest: await writer.close(w),
    counts,
  });

  // --- track_played, 1-minute windows
  const tp = new StoreWriter(root, 'track_played', MINUTE);
  const gen = new Events(tp.type);
  const A = tp.window(T0);
  const B = tp.window(T0 + MINUTE);
  const C = tp.window(T0 + 2 * MINUTE);

  // A: two replicas staged overlapping events (8 in-window duplicates)
  const a1 = gen.make(30, A.start, MINUTE);
  const a2 = gen.make(20, A.start + 500, MINUTE - 1000);
  await tp.stage(A, a1, { replica: 'r1' });
  await tp.stage(A, [...a2, ...a1.slice(0, 8)], { replica: 'r2' });
  const wA = await closed(tp, A, [...a1, ...a2], { records: 50, late: 0, duplicatesDropped: 8 });

  // B: on-time events in two files (3 duplicates among them), then a late file with 6 new events
  // of A's time and 4 copies of events A already holds (duplicates of a closed window)
  const b1 = gen.make(25, B.start, MINUTE);
  const b2 = gen.make(5, B.start + 100, 5_000);
  const lateNew = gen.make(6, A.start + 1_000, 30_000);
  await tp.stage(B, b1, { replica: 'r1' });
  await tp.stage(B, [...b2, ...b1.slice(3, 6)], { replica: 'r1' });
  await tp.stage(B, [...lateNew, ...a1.slice(10, 12), ...a2.slice(0, 2)], { late: true, replica: 'r2' });
  const wB = await closed(tp, B, [...b1, ...b2, ...lateNew], { records: 36, late: 6, duplicatesDropped: 7 });

  // C: still open, staged files only
  await tp.stage(C, gen.make(7, C.start, 20_000), { replica: 'r1' });
  await tp.stage(C, gen.make(3, C.start + 30_000, 1_000), { replica: 'r2' });
  const wC: WindowTruth = { partition: tp.partition(C), status: 'open', ids: new Set() };

  const now = Date.now();
  await tp.lease('replica-live', C.start + 30_000, now, 10 * MINUTE, MINUTE);
  await tp.lease('replica-stale', C.start + 10_000, now - 11 * MINUTE, 10 * MINUTE, 10 * MINUTE);
  await tp.lease('replica-expired', A.start, now - 2 * HOUR, 10_000, 10_000);
  await tp.cursor(B);

  // --- page_viewed, 1-hour windows: H0 has nothing staged (an empty closed window)
  const pv = new StoreWriter(root, 'page_viewed', HOUR);
  const H0 = pv.window(T0);
  const H1 = pv.window(T0 + HOUR);
  const wH0 = await closed(pv, H0, [], { records: 0, late: 0, duplicatesDropped: 0 });
  const h1 = new Events(pv.type).make(12, H1.start, HOUR);
  await pv.stage(H1, h1.slice(0, 7));
  await pv.stage(H1, h1.slice(5), { replica: 'r2' });
  const wH1 = await closed(pv, H1, h1, { records: 12, late: 0, duplicatesDropped: 2 });
  // H2: its closer died after the first final file (more than one file's worth staged)
  const H2 = pv.window(T0 + 2 * HOUR);
  await pv.stage(H2, new Events(pv.type).make(80, H2.start, HOUR));
  const wH2: WindowTruth = {
    partition: pv.partition(H2),
    status: 'finalizing',
    ids: new Set(),
    final: await pv.crashWhileClosing(H2),
  };

  // --- other window sizes, one closed window each
  const other = async (type: string, windowMs: number, start: number, n: number): Promise<Group> => {
    const writer = new StoreWriter(root, type, windowMs);
    const w = writer.window(start);
    const events = new Events(type).make(n, w.start + 1, windowMs - 2);
    await writer.stage(w, events);
    return { type, windows: [await closed(writer, w, events, { records: n, late: 0, duplicatesDropped: 0 })] };
  };

  return {
    root,
    minute: { type: tp.type, windows: [wA, wB, wC] },
    hour: { type: pv.type, windows: [wH0, wH1, wH2] },
    quarter: await other('search_performed', 15 * MINUTE, T0 + 15 * MINUTE, 9),
    day: await other('ab_exposure', 24 * HOUR, T0, 11),
    leases: {
      live: 'replica-live',
      stale: 'replica-stale',
      expired: 'replica-expired',
      globalWatermark: C.start + 10_000,
    },
  };
}

import { setTimeout as delay } from 'node:timers/promises';
import { type Clock, Defaults, HourglassError, type Logger } from '@hourglass/common';
import type { SchemaRegistry } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import { deleteExpiredLeases, writeCursor, writeLease } from './coordination.js';
import {
  type ClosedTail,
  type EarlySegments,
  type FinalizeContext,
  type FinalizeStep,
  cleanupStaging,
  createOrSame,
  finalizeEarly,
  publishWindow,
} from './finalize.js';
import { firstWindowToClose } from './event-range.js';
import {
  type ClosedCursor,
  type IntervalWindow,
  type Lease,
  assignWindow,
  closerOf,
  earliestOpenWindow,
  globalWatermark,
  isClosable,
  leaseIdentity,
  leaseState,
  nextWindow,
  readCursor,
  readLeases,
  stagingDir,
  windowLabel,
} from '@hourglass/bucket-format';
import type { ConsumerMetrics } from './metrics.js';
import { listStagedWindows } from './staged-windows.js';
import { Stager } from './stager.js';
import { ReplicaWatermark } from './watermark.js';

/**
 * Everything one replica does for one event type: staging (Stager), its watermark, its lease
 * `_watermarks/<type>/<replicaId>.<incarnation>.json`, and — when it is the type's closer — closing windows.
 */
export interface TypeRuntimeOptions {
  eventType: string;
  replicaId: string;
  incarnation: string;
  windowMs: number;
  graceMs: number;
  startAt: number | undefined;
  leaseTtlMs: number;
  ackDeadlineMs: number;
  maxAckExtensionMs: number;
  maxPublishDelayMs: number;
  idleAfterMs: number;
  stageMaxEvents: number;
  stageMaxBytes: number;
  stageMaxAgeMs: number;
  blockBytes: number;
  finalFileBytes: number;
  /** 0: staged files use Avro's null codec. */
  stageDeflateLevel: number;
  finalDeflateLevel: number;
  /** Segments in which a window's on-time staged files are finalized before it closes (0: none). */
  earlySegments: number;
  /** Copies of an event this far apart in `gateway_ts` are deduplicated across windows too (0: off). */
  dedupHorizonMs: number;
  closer: boolean;
}

export interface TypeRuntimeDeps {
  store: ObjectStore;
  registry: SchemaRegistry;
  clock: Clock;
  logger: Logger;
  metrics: ConsumerMetrics;
  onFinalizeStep?: (step: FinalizeStep, detail: string) => void | Promise<void>;
}

export interface WindowClosed {
  eventType: string;
  window: IntervalWindow;
  records: number;
  created: boolean;
  durationMs: number;
}

export class TypeRuntime {
  readonly watermark: ReplicaWatermark;
  readonly stager: Stager;
  /** Windows this replica closed (manifest created or found), in order. */
  readonly closed: WindowClosed[] = [];
  private published: Lease | undefined;
  /** Other replicas' leases as last read (every tick). */
  private others: Lease[] = [];
  private cursor: ClosedCursor | undefined;
  private global: number | undefined;
  /** The next window's early segments, and how many were due when they last ran. */
  private early: { window: IntervalWindow; segments: EarlySegments | undefined; due: number } | undefined;
  /** The last window this replica closed: its tail ids, against which the next window dedups. */
  private lastTail: ClosedTail | undefined;
  /** The cursor holds a close not yet written to the store; when it was last written. */
  private cursorUnwritten = false;
  private cursorWrittenAt = -Infinity;
  /** The windows with staged data as last walked, and when. */
  private stagedScan: { at: number; windows: Map<number, IntervalWindow> } | undefined;
  private renewing: Promise<void> | undefined;
  private closing: Promise<number> | undefined;
  private stopping = false;
  /** Replica id and incarnation: what tells this process's lease from every other's. */
  private readonly identity: string;
  private readonly log: Logger;
  private readonly finalizeContext: FinalizeContext;

  constructor(
    private readonly options: TypeRuntimeOptions,
    private readonly deps: TypeRuntimeDeps,
  ) {
    this.identity = leaseIdentity(options);
    this.log = deps.logger.child({ eventType: options.eventType });
    this.watermark = new ReplicaWatermark(
      { idleAfterMs: options.idleAfterMs, maxPublishDelayMs: options.maxPublishDelayMs },
      deps.clock.now(),
    );
    this.stager = new Stager(
      {
        eventType: options.eventType,
        replicaId: options.replicaId,
        incarnation: options.incarnation,
        windowMs: options.windowMs,
        graceMs: options.graceMs,
        maxEvents: options.stageMaxEvents,
        maxBytes: options.stageMaxBytes,
        maxAgeMs: options.stageMaxAgeMs,
        blockBytes: options.blockBytes,
        deflateLevel: options.stageDeflateLevel,
        writeAttempts: Defaults.stageWriteAttempts,
        maxHoldMs: options.maxAckExtensionMs,
      },
      {
        store: deps.store,
        registry: deps.registry,
        clock: deps.clock,
        logger: this.log,
        metrics: deps.metrics,
        watermark: this.watermark,
        lastClosed: () => this.cursor?.lastClosed,
        ensureLease: () => this.ensureLease(),
      },
    );
    this.finalizeContext = {
      store: deps.store,
      registry: deps.registry,
      eventType: options.eventType,
      windowMs: options.windowMs,
      graceMs: options.graceMs,
      format: {
        finalFileBytes: options.finalFileBytes,
        blockBytes: options.blockBytes,
        deflateLevel: options.finalDeflateLevel,
        dedupHorizonMs: options.dedupHorizonMs,
      },
      logger: this.log,
      ...(deps.onFinalizeStep ? { onStep: deps.onFinalizeStep } : {}),
      sweepOrphan: (name, from) => this.sweepOrphan(name, from),
    };
  }

  get eventType(): string {
    return this.options.eventType;
  }

  /** What this replica knows: its own watermark, the one it published, and the type's global one. */
  watermarks(): { local: number; published: number | undefined; global: number | undefined } {
    return { local: this.watermark.value, published: this.published?.watermark, global: this.global };
  }

  lastClosed(): IntervalWindow | undefined {
    return this.cursor?.lastClosed;
  }

  /**
   * Before the first message: start no lower than what is already closed (the cursor's
   * watermark) or what live replicas publish, and publish a lease, so a joining replica
   * never routes an event into a window another replica may be closing.
   */
  async start(): Promise<void> {
    const now = this.deps.clock.now();
    this.noteCursor(await readCursor(this.deps.store, this.options.eventType));
    // An earlier process under the same replica id (a restart with a fixed HOURGLASS_REPLICA_ID)
    // has an incarnation of its own, so its lease is one of the others: it stays live, then stale
    // while the messages it held come back, then expires, like any replica that stopped.
    this.others = await this.readOtherLeases();
    const fromOthers = globalWatermark(this.others, now);
    if (fromOthers !== undefined) this.watermark.raiseTo(fromOthers);
    await this.renewLease();
  }

  private async readOtherLeases(): Promise<Lease[]> {
    const own = this.identity;
    return (await readLeases(this.deps.store, this.options.eventType)).filter((l) => leaseIdentity(l) !== own);
  }

  private noteCursor(cursor: ClosedCursor | undefined): void {
    if (!cursor) return;
    if (!this.cursor || cursor.lastClosed.start > this.cursor.lastClosed.start) this.cursor = cursor;
    // Safe to raise: windows up to the cursor are closed whatever this replica still holds.
    this.watermark.raiseTo(cursor.watermark);
    if (this.global === undefined || cursor.watermark > this.global) this.global = cursor.watermark;
  }

  /** One step: flush aged part files, read the cursor and the other leases, advance the watermark, renew the lease. */
  async tick(): Promise<void> {
    const now = this.deps.clock.now();
    this.stager.flushAged(now);
    const writeAge = this.stager.oldestWriteAgeMs(now);
    if (writeAge > this.options.maxAckExtensionMs / 2) {
      this.log.error({ writeAgeMs: writeAge }, 'a staged file write has been running for half the max lease extension');
    }
    try {
      this.noteCursor(await readCursor(this.deps.store, this.options.eventType));
      this.others = await this.readOtherLeases();
    } catch (e) {
      this.storeError('read', e);
    }
    const at = this.deps.clock.now();
    this.watermark.advance(at, this.stager.heldMin(), staleCeiling(this.others, at));
    try {
      await this.renewLeaseIfDue();
    } catch (e) {
      this.storeError('lease', e);
    }
  }

  private storeError(operation: string, e: unknown): void {
    this.deps.metrics.storeErrors.add(1, { event_type: this.options.eventType, operation });
    this.log.warn({ err: e, operation }, 'store operation failed; retrying next tick');
  }

  /**
   * The cursor is written once per close pass, and no sooner than the store's rewrite interval
   * after its last write (GCS: one write per second per object name); a pass that may not write
   * leaves it for the next. A cursor behind the manifests only makes a closer re-check them.
   */
  private async writeCursorIfDue(): Promise<void> {
    const now = this.deps.clock.now();
    if (!this.cursor || !this.cursorUnwritten || now - this.cursorWrittenAt < this.rewriteIntervalMs) return;
    await writeCursor(this.deps.store, this.cursor);
    this.cursorUnwritten = false;
    this.cursorWrittenAt = this.deps.clock.now();
  }

  /** The lease is renewed every tick, but no sooner than the store's rewrite interval after the last write. */
  private renewLeaseIfDue(): Promise<void> | undefined {
    const last = this.published?.renewedAt;
    if (last !== undefined && this.deps.clock.now() - last < this.rewriteIntervalMs) return undefined;
    return this.renewLease();
  }

  private get rewriteIntervalMs(): number {
    return this.deps.store.rewriteIntervalMs ?? 0;
  }

  private renewLease(): Promise<void> {
    if (!this.renewing) {
      const lease: Lease = {
        replicaId: this.options.replicaId,
        incarnation: this.options.incarnation,
        eventType: this.options.eventType,
        watermark: this.watermark.value,
        renewedAt: this.deps.clock.now(),
        ttlMs: this.options.leaseTtlMs,
        ackDeadlineMs: this.options.ackDeadlineMs,
      };
      this.renewing = writeLease(this.deps.store, lease)
        .then(() => {
          this.published = lease;
        })
        .finally(() => {
          this.renewing = undefined;
        });
    }
    return this.renewing;
  }

  private leaseFresh(): boolean {
    return this.published !== undefined && this.deps.clock.now() < this.published.renewedAt + this.published.ttlMs;
  }

  /**
   * Self-fencing: a staged file is written only while this replica's lease is live, so no
   * closer can have stopped counting this replica (that takes ttl + ack deadline).
   */
  async ensureLease(): Promise<void> {
    if (this.leaseFresh()) return;
    await this.renewLease();
    if (!this.leaseFresh()) {
      throw new HourglassError('LEASE_EXPIRED', `lease of ${this.options.replicaId} for ${this.options.eventType}`);
    }
  }

  /** One closer pass unless one is running; resolves to the number of windows closed. */
  closeWindows(): Promise<number> {
    if (!this.closing) {
      this.closing = this.closePass()
        .catch((e: unknown) => {
          this.storeError('close', e);
          return 0;
        })
        .finally(() => {
          this.closing = undefined;
        });
    }
    return this.closing;
  }

  private async closePass(): Promise<number> {
    const { eventType, graceMs } = this.options;
    const own = this.published;
    if (!own) return 0;
    const now = this.deps.clock.now();
    // the other leases as read by the tick that precedes every close pass
    const others = this.others;
    const leases = [...others, own];
    this.global = globalWatermark(leases, now, this.global);
    if (!this.options.closer || closerOf(leases, now) !== this.identity) return 0;
    await deleteExpiredLeases(this.deps.store, others, now);
    this.noteCursor(await readCursor(this.deps.store, eventType));

    const stagedWindows = await this.stagedWindows(now);
    const global = this.global;
    let closes = 0;
    let w: IntervalWindow | undefined = this.cursor
      ? nextWindow(this.cursor.lastClosed)
      : this.options.startAt !== undefined
        ? assignWindow(this.options.startAt, this.options.windowMs)
        : firstWindowToClose(stagedWindows.values(), now, this.options.windowMs);
    while (
      w &&
      global !== undefined &&
      isClosable(w, global, graceMs) &&
      closes < Defaults.maxClosesPerTick &&
      !this.stopping
    ) {
      await this.close(w, global);
      this.cursor = { eventType, lastClosed: w, watermark: global, updatedAt: this.deps.clock.now() };
      this.cursorUnwritten = true;
      stagedWindows.delete(w.start);
      closes++;
      w = nextWindow(w);
    }
    await this.writeCursorIfDue();
    // Early segments of the next window to close: when the watermark passes each 1/n of it, what
    // was staged so far; the last at its end. Its close after the grace then has only stragglers.
    const n = this.options.earlySegments;
    if (w && global !== undefined && n > 0 && !this.stopping) {
      const window = w;
      const state = this.early?.window.start === window.start ? this.early : undefined;
      const due = Math.min(n, Math.floor(((global - window.start) * n) / (window.end - window.start)));
      if (due > (state?.due ?? 0)) {
        const before = state?.segments?.segments.length ?? 0;
        let started = 0; // when the job starts, not when it queues behind other types' jobs
        this.early = { window, segments: undefined, due }; // no reuse if this throws
        const segments = await oneAtATime(() => {
          started = performance.now();
          return finalizeEarly(this.finalizeContext, window, state?.segments, this.lastTail);
        });
        this.early = { window, segments, due };
        if (segments && segments.segments.length > before) {
          this.log.info(
            {
              window: windowLabel(window),
              segment: segments.segments.length - 1,
              stagedFiles: segments.segments[segments.segments.length - 1]!.length,
              watermark: new Date(global).toISOString(),
              durationMs: Math.round(performance.now() - started),
            },
            'window finalized early',
          );
        }
      }
    }
    // Staged data at or before the cursor: leftovers of a crashed cleanup, orphans that missed a
    // plan, or a window before the type's first closed one. finalizeWindow handles each case.
    const cursor = this.cursor;
    if (cursor && global !== undefined) {
      for (const left of [...stagedWindows.values()].sort((a, b) => a.start - b.start)) {
        if (this.stopping || left.start > cursor.lastClosed.start) continue;
        await this.close(left, global);
      }
    }
    return closes;
  }

  /**
   * The windows with anything staged, walked again at most every `stagingScanInterval` once a
   * cursor exists (closes keep the map current for the windows they clean up): staged data at or
   * before the cursor is rare, and the early segments list their own window.
   */
  private async stagedWindows(now: number): Promise<Map<number, IntervalWindow>> {
    const scan = this.stagedScan;
    if (scan && this.cursor && now - scan.at < Defaults.stagingScanInterval) return scan.windows;
    const windows = await listStagedWindows(this.deps.store, this.options.eventType, this.options.windowMs);
    this.stagedScan = { at: now, windows };
    return windows;
  }

  private async close(w: IntervalWindow, global: number): Promise<void> {
    let started = 0; // when the job starts, not when it queues behind other types' jobs
    const early = this.early?.window.start === w.start ? this.early.segments : undefined;
    const result = await oneAtATime(() => {
      started = performance.now();
      return publishWindow(this.finalizeContext, w, global, early, this.lastTail);
    });
    // deletes need no turn in the finalize queue: other types' closes go on meanwhile
    await cleanupStaging(this.finalizeContext, w);
    if (this.early?.window.start === w.start) this.early = undefined;
    // leftovers of older windows close too: keep the newest window's tail
    if (result.tail && (!this.lastTail || result.tail.window.start > this.lastTail.window.start)) {
      this.lastTail = result.tail;
    }
    const durationMs = performance.now() - started;
    const { eventType, graceMs } = this.options;
    const attrs = { event_type: eventType };
    this.closed.push({
      eventType,
      window: w,
      records: result.manifest.counts.records,
      created: result.created,
      durationMs,
    });
    if (result.created) {
      this.deps.metrics.windowsClosed.add(1, attrs);
      this.deps.metrics.duplicatesDropped.add(result.manifest.counts.duplicatesDropped, attrs);
      this.deps.metrics.closeDelay.record(Math.max(0, this.deps.clock.now() - (w.end + graceMs)) / 1000, attrs);
      this.deps.metrics.finalizeDuration.record(durationMs / 1000, attrs);
      this.log.info(
        {
          window: windowLabel(w),
          records: result.manifest.counts.records,
          late: result.manifest.counts.late,
          duplicatesDropped: result.manifest.counts.duplicatesDropped,
          files: result.manifest.files.length,
          watermark: new Date(global).toISOString(),
          durationMs: Math.round(durationMs),
        },
        'window closed',
      );
    }
  }

  /**
   * A staged file found in a closed window's staging after its manifest: its events are
   * copied (same bytes) as a late file into the earliest open window, then it is deleted.
   * The watermark is held while copying so the target window stays open.
   */
  private async sweepOrphan(name: string, from: IntervalWindow): Promise<void> {
    const release = this.stager.hold(this.watermark.value);
    try {
      const { eventType, windowMs, graceMs } = this.options;
      let notBefore = nextWindow(from);
      if (this.cursor && this.cursor.lastClosed.start >= notBefore.start)
        notBefore = nextWindow(this.cursor.lastClosed);
      const target = earliestOpenWindow(this.watermark.value, windowMs, graceMs, notBefore);
      const file = name.slice(name.lastIndexOf('/') + 1);
      const moved = `${stagingDir(eventType, target)}late-orphan-${from.start}-${file}`;
      const data = await this.deps.store.get(name);
      if (!data) return;
      await this.ensureLease();
      if (!(await createOrSame(this.deps.store, moved, data))) {
        throw new HourglassError('STORAGE_PRECONDITION_FAILED', `${moved} exists`);
      }
      await this.deps.store.delete(name);
      this.log.warn({ orphan: name, movedTo: moved, from: windowLabel(from), to: windowLabel(target) }, 'orphan moved');
    } finally {
      release();
    }
  }

  /** Graceful stop: no new messages, stage what is held, finish the current close, last lease. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.stager.drain();
    await this.closing;
    if (this.cursor && this.cursorUnwritten) {
      await writeCursor(this.deps.store, this.cursor).catch((e: unknown) => this.storeError('cursor', e));
    }
    // the last lease too keeps the store's rewrite interval (a throttled write would be lost)
    const sinceLease = this.deps.clock.now() - (this.published?.renewedAt ?? -Infinity);
    if (sinceLease < this.rewriteIntervalMs) await delay(this.rewriteIntervalMs - sinceLease);
    this.watermark.advance(this.deps.clock.now(), this.stager.heldMin());
    // ttl 0: the replica is gone; the lease still counts for one ack deadline, while the
    // messages nacked during the drain find another replica.
    const lease: Lease = {
      replicaId: this.options.replicaId,
      incarnation: this.options.incarnation,
      eventType: this.options.eventType,
      watermark: this.watermark.value,
      renewedAt: this.deps.clock.now(),
      ttlMs: 0,
      ackDeadlineMs: this.options.ackDeadlineMs,
    };
    try {
      await writeLease(this.deps.store, lease);
      this.published = lease;
    } catch (e) {
      this.storeError('lease', e);
    }
  }

  leaseStateNow(): ReturnType<typeof leaseState> | undefined {
    return this.published ? leaseState(this.published, this.deps.clock.now()) : undefined;
  }
}

/**
 * Finalize work of every type runs one job at a time, process-wide. It shares the event loop with
 * staging: each job yields between staged files, and with five types finalizing at once staging
 * waited behind up to five files' scans at every turn.
 */
let finalizeTail: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(job: () => Promise<T>): Promise<T> {
  const run = finalizeTail.then(job, job);
  finalizeTail = run.catch(() => undefined);
  return run;
}

/** The lowest watermark among stale leases (replicas that stopped renewing), or Infinity. */
function staleCeiling(others: readonly Lease[], now: number): number {
  let ceiling = Infinity;
  for (const lease of others) {
    if (leaseState(lease, now) === 'stale' && lease.watermark < ceiling) ceiling = lease.watermark;
  }
  return ceiling;
}

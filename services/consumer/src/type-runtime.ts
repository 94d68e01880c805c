import type { Clock, Logger } from '@hourglass/common';
import type { SchemaRegistry } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import { type LeaseState, globalWatermark, type IntervalWindow } from '@hourglass/bucket-format';
import { type WindowClosed, WindowCloser } from './close/closer.js';
import type { FinalizeContext } from './finalize/context.js';
import type { FinalizeQueue } from './close/finalize-queue.js';
import type { FinalizePacer } from './close/finalize-pacer.js';
import { moveOrphan } from './close/orphans.js';
import type { CloseConfig, StageConfig, TypeScope, WatermarkConfig } from './config.js';
import type { FinalizeStep } from './finalize/context.js';
import type { ConsumerMetrics } from './metrics.js';
import type { WindowNotices } from './notify/notifier.js';
import { Stager } from './stage/stager.js';
import { LeaseKeeper } from './watermark/lease-keeper.js';
import { ReplicaLeaseKeeper } from './watermark/replica-lease.js';
import { ReplicaWatermark } from './watermark/replica-watermark.js';
import { TypeProgress } from './watermark/type-progress.js';

export type { WindowClosed } from './close/closer.js';

/** One type's runtime: its scope and the sub-configs of consumerParts, passed on unchanged. */
export interface TypeRuntimeOptions {
  scope: TypeScope;
  stage: StageConfig;
  watermark: WatermarkConfig;
  close: CloseConfig;
}

export interface TypeRuntimeDeps {
  store: ObjectStore;
  registry: SchemaRegistry;
  clock: Clock;
  logger: Logger;
  metrics: ConsumerMetrics;
  onFinalizeStep?: (step: FinalizeStep, detail: string) => void | Promise<void>;
  notices?: WindowNotices;
  queue: FinalizeQueue;
  /** Slows finalize while staging lags (close/finalize-pacer.ts); absent: finalize yields one loop turn per chunk. */
  pacer?: FinalizePacer;
  /**
   * The process's lease, shared by its types: the process reads the leases and renews it once
   * per tick (TickLoop). Absent: this runtime keeps a lease of its own and does both in tick().
   */
  replicaLease?: ReplicaLeaseKeeper;
}

/**
 * Everything one replica does for one event type, wired together: staging (Stager), its
 * watermark, its view of the replica's lease (LeaseKeeper over ReplicaLeaseKeeper), the
 * type's cursor and global watermark (TypeProgress) and — when it is the type's closer —
 * closing windows (WindowCloser).
 */
export class TypeRuntime {
  readonly watermark: ReplicaWatermark;
  readonly stager: Stager;
  private readonly leases: LeaseKeeper;
  /** The process's lease; this runtime reads and renews it itself only when it is its own. */
  private readonly replicaLease: ReplicaLeaseKeeper;
  private readonly ownsLease: boolean;
  private readonly progress: TypeProgress;
  private readonly closer: WindowCloser;
  private readonly log: Logger;

  constructor(
    private readonly options: TypeRuntimeOptions,
    private readonly deps: TypeRuntimeDeps,
  ) {
    const { scope } = options;
    this.log = deps.logger.child({ eventType: scope.eventType });
    this.watermark = new ReplicaWatermark(
      { idleAfterMs: options.watermark.idleAfterMs, maxPublishDelayMs: options.watermark.maxPublishDelayMs },
      deps.clock.now(),
    );
    this.ownsLease = deps.replicaLease === undefined;
    this.replicaLease =
      deps.replicaLease ?? new ReplicaLeaseKeeper({ ...scope, closes: options.close.closer }, options.watermark, deps);
    this.replicaLease.serve(scope.eventType, () => this.watermark.value);
    this.leases = new LeaseKeeper(scope.eventType, this.replicaLease);
    this.progress = new TypeProgress(scope, deps, this.watermark);
    this.stager = new Stager(scope, options.stage, {
      store: deps.store,
      registry: deps.registry,
      clock: deps.clock,
      logger: this.log,
      metrics: deps.metrics,
      watermark: this.watermark,
      lastClosed: () => this.progress.cursor?.lastClosed,
      ensureLease: () => this.ensureLease(),
      ...(deps.pacer ? { pacer: deps.pacer } : {}),
    });
    this.closer = new WindowCloser(scope, options.close, {
      store: deps.store,
      registry: deps.registry,
      clock: deps.clock,
      logger: this.log,
      metrics: deps.metrics,
      leases: this.leases,
      progress: this.progress,
      ...(deps.onFinalizeStep ? { onFinalizeStep: deps.onFinalizeStep } : {}),
      ...(deps.notices ? { notices: deps.notices } : {}),
      sweepOrphan: (name, from) => this.sweepOrphan(name, from),
      storeError: (operation, e) => this.storeError(operation, e),
      traceLinks: this.stager.traceLinks,
      queue: deps.queue,
      ...(deps.pacer ? { pacer: deps.pacer } : {}),
    });
  }

  get eventType(): string {
    return this.options.scope.eventType;
  }

  /** Windows this replica closed (manifest created or found), in order. */
  get closed(): readonly WindowClosed[] {
    return this.closer.closed;
  }

  /** What this replica knows: its own watermark, the one it published, and the type's global one. */
  watermarks(): { local: number; published: number | undefined; global: number | undefined } {
    return { local: this.watermark.value, published: this.leases.own?.watermark, global: this.progress.global };
  }

  lastClosed(): IntervalWindow | undefined {
    return this.progress.cursor?.lastClosed;
  }

  /**
   * Before the first message: start no lower than what is already closed (the cursor's
   * watermark) or what live replicas publish, and publish a lease, so a joining replica
   * never routes an event into a window another replica may be closing. With a shared lease
   * the process reads the leases before and writes its lease after every type's start.
   */
  async start(): Promise<void> {
    const now = this.deps.clock.now();
    await this.progress.readCursor();
    // An earlier process under the same replica id (a restart with a fixed HOURGLASS_REPLICA_ID)
    // has an incarnation of its own, so its lease is one of the others: it stays live, then stale
    // while the messages it held come back, then expires, like any replica that stopped.
    if (this.ownsLease) await this.replicaLease.refresh();
    const fromOthers = globalWatermark(this.leases.others, now);
    if (fromOthers !== undefined) this.watermark.raiseTo(fromOthers);
    if (this.ownsLease) await this.replicaLease.renew();
  }

  /** One step: read the leases, advance(), renew the lease (the process does the lease parts when it shares one). */
  async tick(): Promise<void> {
    if (this.ownsLease) await this.replicaLease.refresh().catch((e: unknown) => this.storeError('read', e));
    await this.advance();
    if (this.ownsLease) await this.replicaLease.renewIfDue()?.catch((e: unknown) => this.storeError('lease', e));
  }

  /** This type's part of a tick: flush aged part files, read the cursor if due, advance the watermark. */
  async advance(): Promise<void> {
    const now = this.deps.clock.now();
    this.stager.flushAged(now);
    const writeAge = this.stager.oldestWriteAgeMs(now);
    if (writeAge > this.options.stage.maxHoldMs / 2) {
      this.log.error({ writeAgeMs: writeAge }, 'a staged file write has been running for half the max lease extension');
    }
    try {
      await this.progress.readCursorIfDue();
    } catch (e) {
      this.storeError('read', e);
    }
    const at = this.deps.clock.now();
    this.watermark.advance(at, this.stager.heldMin(), this.leases.staleCeiling(at));
  }

  private storeError(operation: string, e: unknown): void {
    this.deps.metrics.storeErrors.add(1, { event_type: this.eventType, operation });
    this.log.warn({ err: e, operation }, 'store operation failed; retrying next tick');
  }

  /** Self-fencing: resolves once this replica's lease is live; rejects with LEASE_EXPIRED if it cannot be. */
  ensureLease(): Promise<void> {
    return this.leases.ensure();
  }

  /** What this type's finalize jobs are given (the shard worker's too). */
  get finalizeContext(): FinalizeContext {
    return this.closer.finalizeContext;
  }

  /** One closer pass unless one is running; resolves to the number of windows closed. */
  closeWindows(): Promise<number> {
    return this.closer.closeWindows();
  }

  private sweepOrphan(name: string, from: IntervalWindow): Promise<void> {
    return moveOrphan(
      this.options.scope,
      {
        store: this.deps.store,
        logger: this.log,
        watermark: this.watermark.value,
        lastClosed: this.progress.cursor?.lastClosed,
        hold: (ts) => this.stager.hold(ts),
        ensureLease: () => this.ensureLease(),
      },
      name,
      from,
    );
  }

  /** Graceful stop: no new messages, stage what is held, finish the current close, last lease (the process's, when shared). */
  async stop(): Promise<void> {
    this.closer.halt();
    await this.stager.drain();
    await this.closer.stop();
    await this.progress.writeCursorIfUnwritten().catch((e: unknown) => this.storeError('cursor', e));
    this.watermark.advance(this.deps.clock.now(), this.stager.heldMin());
    if (this.ownsLease) await writeLastLease(this.replicaLease, (e) => this.storeError('lease', e));
  }

  leaseStateNow(): LeaseState | undefined {
    return this.leases.stateNow();
  }
}

/** The last lease (ttl 0), once the store allows the name to be written again. */
export async function writeLastLease(lease: ReplicaLeaseKeeper, onError: (e: unknown) => void): Promise<void> {
  await lease.untilRewritable();
  await lease.writeLast().catch(onError);
}

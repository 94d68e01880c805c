import type { Span } from '@opentelemetry/api';
import { Defaults, type Logger } from '@hourglass/common';
import type { SchemaRegistry } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import {
  closerOf,
  type IntervalWindow,
  assignWindow,
  isClosable,
  nextWindow,
  windowLabel,
} from '@hourglass/bucket-format';
import type { CloseConfig, TypeScope } from '../config.js';
import { cleanupStaging } from '../finalize/cleanup.js';
import type { ClosedTail, EarlySegments, FinalizeContext, FinalizeStep } from '../finalize/context.js';
import { finalizeEarly } from '../finalize/early.js';
import { publishWindow } from '../finalize/publish.js';
import type { ConsumerMetrics } from '../metrics.js';
import { firstWindowToClose } from '../source/event-range.js';
import type { LeaseKeeper } from '../watermark/lease-keeper.js';
import type { TypeProgress } from '../watermark/type-progress.js';
import type { WindowNotices } from '../notify/notifier.js';
import { type WindowTraceLinks, endSpan, startFinalizeSpan } from '../spans.js';
import type { FinalizeQueue } from './finalize-queue.js';
import type { FinalizePacer } from './finalize-pacer.js';
import { listStagedWindows } from './staged-windows.js';

export interface WindowClosed {
  eventType: string;
  window: IntervalWindow;
  records: number;
  created: boolean;
  durationMs: number;
}

export interface CloserDeps {
  store: ObjectStore;
  registry: SchemaRegistry;
  clock: { now(): number };
  logger: Logger;
  metrics: ConsumerMetrics;
  leases: LeaseKeeper;
  progress: TypeProgress;
  onFinalizeStep?: (step: FinalizeStep, detail: string) => void | Promise<void>;
  /** Closed-window notices (notify/): made durable before the cursor passes a window. */
  notices?: WindowNotices;
  /** Moves a staged file that missed its window's plan to the earliest open window, as late data. */
  sweepOrphan: (name: string, from: IntervalWindow) => Promise<void>;
  /** Stage spans of each window, linked from its finalize span (spans.ts); absent: no finalize span. */
  traceLinks?: WindowTraceLinks;
  /** The consumer's finalize queue: one finalize job at a time, whatever its type. */
  queue: FinalizeQueue;
  /** Slows finalize while staging lags; absent: one loop turn between chunks. */
  pacer?: FinalizePacer;
  /** A store operation failed: counted and logged, retried next pass. */
  storeError: (operation: string, e: unknown) => void;
}

/**
 * Closing one type's windows, when this replica is its closer: in order from the cursor while
 * the global watermark passes each window's end + grace, early segments of the next window as
 * the watermark passes each 1/n of it, and staged leftovers at or before the cursor. Every
 * finalize job takes its turn in the consumer's finalize queue (finalize-queue.ts).
 */
export class WindowCloser {
  /** Windows this replica closed (manifest created or found), in order. */
  readonly closed: WindowClosed[] = [];
  /** The next window's early segments, and how many were due when they last ran. */
  private early: { window: IntervalWindow; segments: EarlySegments | undefined; due: number } | undefined;
  /** The last window this replica closed: its tail ids, against which the next window dedups. */
  private lastTail: ClosedTail | undefined;
  /** The windows with staged data as last walked, and when. */
  private stagedScan: { at: number; windows: Map<number, IntervalWindow> } | undefined;
  private closing: Promise<number> | undefined;
  private stopping = false;
  /** What this type's finalize jobs are given (the shard worker runs other replicas' shard jobs with it too). */
  readonly finalizeContext: FinalizeContext;

  constructor(
    private readonly scope: TypeScope,
    private readonly config: CloseConfig,
    private readonly deps: CloserDeps,
  ) {
    this.finalizeContext = {
      store: deps.store,
      registry: deps.registry,
      eventType: scope.eventType,
      windowMs: scope.windowMs,
      graceMs: scope.graceMs,
      format: config.format,
      shardBytes: config.shardBytes,
      earlySegmentMinBytes: config.earlySegmentMinBytes,
      spill: config.spill,
      ...(config.shardJobs
        ? {
            shardJobs: {
              identity: deps.leases.identity,
              now: () => deps.clock.now(),
              claimMs: Defaults.finalizeShardClaim,
              pollMs: Defaults.finalizeShardPoll,
            },
          }
        : {}),
      logger: deps.logger,
      ...(deps.pacer ? { pace: deps.pacer.pause } : {}),
      ...(deps.onFinalizeStep ? { onStep: deps.onFinalizeStep } : {}),
      sweepOrphan: deps.sweepOrphan,
    };
  }

  /** One closer pass unless one is running; resolves to the number of windows closed. */
  closeWindows(): Promise<number> {
    if (!this.closing) {
      this.closing = this.closePass()
        .catch((e: unknown) => {
          this.deps.storeError('close', e);
          return 0;
        })
        .finally(() => {
          this.closing = undefined;
        });
    }
    return this.closing;
  }

  /** From now on no window closes (a running pass ends after its current close). */
  halt(): void {
    this.stopping = true;
  }

  /** Halts; resolves when the running pass ends. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.closing;
  }

  private async closePass(): Promise<number> {
    const { leases, progress } = this.deps;
    const own = leases.own;
    if (!own) return 0;
    const now = this.deps.clock.now();
    // the other leases as read by the tick that precedes every close pass
    const others = leases.others;
    const all = [...others, own];
    progress.updateGlobal(all, now);
    if (!this.config.closer || closerOf(all, now, this.scope.eventType) !== leases.identity) return 0;
    this.deps.notices?.resume(this.scope.eventType);
    // its own closes keep its cursor current; another closer's show when a close is due
    await progress.readCursorIfDue();
    const stagedWindows = await this.stagedWindows(now);
    const global = progress.global;
    if (global === undefined) {
      await progress.writeCursorIfDue();
      return 0;
    }
    const { closes, next } = await this.closeDue(stagedWindows, global, now);
    await progress.writeCursorIfDue();
    if (next && this.config.earlySegments > 0 && !this.stopping) await this.finalizeEarlyIfDue(next, global);
    await this.closeLeftovers(stagedWindows, global);
    return closes;
  }

  /** Closes, in order from the cursor, every window the global watermark has passed (a bounded number per pass). */
  private async closeDue(
    stagedWindows: Map<number, IntervalWindow>,
    global: number,
    now: number,
  ): Promise<{ closes: number; next: IntervalWindow | undefined }> {
    const cursor = this.deps.progress.cursor;
    let closes = 0;
    let w: IntervalWindow | undefined = cursor
      ? nextWindow(cursor.lastClosed)
      : this.config.startAt !== undefined
        ? assignWindow(this.config.startAt, this.scope.windowMs)
        : firstWindowToClose(stagedWindows.values(), now, this.scope.windowMs);
    while (w && isClosable(w, global, this.scope.graceMs) && closes < Defaults.maxClosesPerTick && !this.stopping) {
      await this.close(w, global);
      this.deps.progress.markClosed(w, global);
      stagedWindows.delete(w.start);
      closes++;
      w = nextWindow(w);
    }
    return { closes, next: w };
  }

  /**
   * Early segments of the next window to close: when the watermark passes each 1/n of it, what
   * was staged so far; the last at its end. Its close after the grace then has only stragglers.
   */
  private async finalizeEarlyIfDue(window: IntervalWindow, global: number): Promise<void> {
    const n = this.config.earlySegments;
    const state = this.early?.window.start === window.start ? this.early : undefined;
    const due = Math.min(n, Math.floor(((global - window.start) * n) / (window.end - window.start)));
    if (due <= (state?.due ?? 0)) return;
    const before = state?.segments?.segments.length ?? 0;
    let started = 0; // when the job starts, not when it queues behind other types' jobs
    this.early = { window, segments: undefined, due }; // no reuse if this throws
    const segments = await this.deps.queue.run((job) => {
      started = performance.now();
      return finalizeEarly(this.finalizeContext, window, state?.segments, this.lastTail, job, due === n);
    });
    this.early = { window, segments, due };
    if (segments && segments.segments.length > before) {
      this.deps.logger.info(
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

  /**
   * Staged data at or before the cursor: leftovers of a crashed cleanup, orphans that missed a
   * plan, or a window before the type's first closed one. finalizeWindow handles each case.
   */
  private async closeLeftovers(stagedWindows: Map<number, IntervalWindow>, global: number): Promise<void> {
    const cursor = this.deps.progress.cursor;
    if (!cursor) return;
    for (const left of [...stagedWindows.values()].sort((a, b) => a.start - b.start)) {
      if (this.stopping || left.start > cursor.lastClosed.start) continue;
      await this.close(left, global);
    }
  }

  /**
   * The windows with anything staged, walked again at most every `stagingScanInterval` once a
   * cursor exists or HOURGLASS_START names the first window (closes keep the map current for the
   * windows they clean up): staged data at or before the cursor is rare, and the early segments
   * list their own window. Only a type with neither finds its first window in the walk, every pass.
   */
  private async stagedWindows(now: number): Promise<Map<number, IntervalWindow>> {
    const scan = this.stagedScan;
    const firstKnown = this.deps.progress.cursor !== undefined || this.config.startAt !== undefined;
    if (scan && firstKnown && now - scan.at < Defaults.stagingScanInterval) return scan.windows;
    const windows = await listStagedWindows(this.deps.store, this.scope.eventType, this.scope.windowMs);
    this.stagedScan = { at: now, windows };
    return windows;
  }

  private async close(w: IntervalWindow, global: number): Promise<void> {
    const span = this.deps.traceLinks && startFinalizeSpan(this.scope.eventType, w, this.deps.traceLinks);
    try {
      await this.closeWindow(w, global, span);
      endSpan(span);
    } catch (e) {
      endSpan(span, e);
      throw e;
    }
  }

  private async closeWindow(w: IntervalWindow, global: number, span: Span | undefined): Promise<void> {
    let started = 0; // when the job starts, not when it queues behind other types' jobs
    const early = this.early?.window.start === w.start ? this.early.segments : undefined;
    const result = await this.deps.queue.run((job) => {
      started = performance.now();
      return publishWindow(this.finalizeContext, w, global, early, this.lastTail, job);
    });
    // notice durable before the cursor passes w (windows at or before it were announced)
    const cursor = this.deps.progress.cursor;
    if (!cursor || w.start > cursor.lastClosed.start) await this.deps.notices?.closed(this.scope.eventType, w);
    // deletes need no turn in the finalize queue: other types' closes go on meanwhile
    await cleanupStaging(this.finalizeContext, w);
    if (this.early?.window.start === w.start) this.early = undefined;
    // leftovers of older windows close too: keep the newest window's tail
    if (result.tail && (!this.lastTail || result.tail.window.start > this.lastTail.window.start)) {
      this.lastTail = result.tail;
    }
    const durationMs = performance.now() - started;
    const { eventType, graceMs } = this.scope;
    const { counts } = result.manifest;
    this.closed.push({ eventType, window: w, records: counts.records, created: result.created, durationMs });
    span?.setAttributes({ 'hourglass.record_count': counts.records, 'hourglass.created': result.created });
    if (!result.created) return;
    const attrs = { event_type: eventType };
    this.deps.metrics.windowsClosed.add(1, attrs);
    this.deps.metrics.duplicatesDropped.add(counts.duplicatesDropped, attrs);
    this.deps.metrics.closeDelay.record(Math.max(0, this.deps.clock.now() - (w.end + graceMs)) / 1000, attrs);
    this.deps.metrics.finalizeDuration.record(durationMs / 1000, attrs);
    this.deps.logger.info(
      {
        window: windowLabel(w),
        records: counts.records,
        late: counts.late,
        duplicatesDropped: counts.duplicatesDropped,
        files: result.manifest.files.length,
        watermark: new Date(global).toISOString(),
        durationMs: Math.round(durationMs),
      },
      'window closed',
    );
  }
}

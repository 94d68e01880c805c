import type { Logger } from '@hourglass/common';
import type { SchemaRegistry } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import type { Manifest, IntervalWindow } from '@hourglass/bucket-format';
import type { EventIdSet } from './id-set.js';
import type { PlanFile } from './plan.js';
import type { ShardJobOptions } from './shard-jobs.js';
import type { WindowWriter } from './window-writer.js';

/** What every finalize mechanism (plan, window writer, publish, early segments, cleanup) is given. */
export type FinalizeStep =
  | 'early-plan-written'
  | 'plan-written'
  | 'part-written'
  | 'shard-written'
  | 'manifest-written'
  | 'published'
  | 'staging-deleted';

/** What decides a window's output bytes besides its inputs; recorded in the plan, so reruns match. */
export interface FinalizeFormat {
  finalFileBytes: number;
  blockBytes: number;
  deflateLevel: number;
  /**
   * How far apart two copies of an event (a client's re-send) may be in `gateway_ts` and still be
   * caught across windows. Absent in plans written before it existed: 0, no cross-window check.
   */
  dedupHorizonMs?: number;
}

/** A finalize job's place in the consumer's queue (close/finalize-queue.ts). */
export interface FinalizeJob {
  /** The job will read `stagedBytes`: past the queue's shared size it waits to run alone. */
  weigh(stagedBytes: number): Promise<void>;
}

export interface FinalizeContext {
  store: ObjectStore;
  registry: SchemaRegistry;
  eventType: string;
  windowMs: number;
  graceMs: number;
  format: FinalizeFormat;
  logger: Logger;
  /**
   * Staged bytes per shard (HOURGLASS_FINALIZE_SHARD_BYTES): a window with more is finalized in
   * shards (sharded-close.ts) and gets no more early segments. Absent: never sharded.
   */
  shardBytes?: number;
  /**
   * Least staged bytes an early segment before the window's end takes
   * (HOURGLASS_EARLY_SEGMENT_MIN_BYTES); fewer wait for the next segment. Absent: any.
   */
  earlySegmentMinBytes?: number;
  /** Where a sharded finalize spills its shards (default: the OS temporary directory). */
  spillDir?: string;
  /** none: no spill, each shard rereads the staged files (sharded-reread.ts); default local. */
  spill?: 'local' | 'none';
  /**
   * Present: a window over the shard target is finalized as shard jobs any replica may run
   * (shard-jobs.ts; HOURGLASS_FINALIZE_SHARD_JOBS=on). Absent: the closer writes every shard
   * itself (sharded-close.ts or sharded-reread.ts, by `spill`).
   */
  shardJobs?: ShardJobOptions;
  /**
   * Awaited between chunks of finalize work (a block of a staged file, a spill file's read):
   * the pacer's pause (close/finalize-pacer.ts). Absent: one turn of the event loop.
   */
  pace?: () => Promise<void>;
  /** Test hook: awaited after each step (the crash tests kill the process here). */
  onStep?: (step: FinalizeStep, detail: string) => void | Promise<void>;
  /** Moves a staged file that missed its window's plan to the earliest open window, as late data. */
  sweepOrphan: (name: string, from: IntervalWindow) => Promise<void>;
}

/**
 * The part files written early for a window and the ids they hold, kept by the closer until
 * the window closes so the close does not redo them.
 */
export interface EarlySegments {
  readonly window: IntervalWindow;
  readonly segments: readonly (readonly PlanFile[])[];
  readonly writer: WindowWriter;
}

/**
 * The ids a closed window stored with `gateway_ts` ≥ its end − the dedup horizon (the marked ids
 * of `ids`): what the next window's on-time records are checked against, kept by the closer so it
 * need not read them back.
 */
export interface ClosedTail {
  readonly window: IntervalWindow;
  readonly horizonMs: number;
  readonly ids: EventIdSet;
}

export interface FinalizeResult {
  manifest: Manifest;
  /** false when an earlier attempt (or another replica) had already written the manifest. */
  created: boolean;
  /** This window's tail, when this call wrote its files and the horizon is on. */
  tail?: ClosedTail;
}

import { Defaults, HourglassError } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import {
  manifestName,
  partitionDir,
  publishDir,
  unpublishedName,
  parseManifest,
  serializeManifest,
  type IntervalWindow,
} from '@hourglass/bucket-format';
import { cleanupStaging } from './cleanup.js';
import type { ClosedTail, EarlySegments, FinalizeContext, FinalizeJob, FinalizeResult } from './context.js';
import { commitPlan, stagedBytes } from './plan.js';
import { writerThrough } from './resume-writer.js';
import { writeSharded } from './sharded-close.js';
import { writeShardedRereading } from './sharded-reread.js';
import { type ShardJobOptions, writeShardJobs } from './shard-jobs.js';

/**
 * Finalize one window: staged files → deduplicated final Avro files → `_SUCCESS` → staging
 * deleted. Any replica may run it, any number of times, and crash anywhere:
 *
 * 1. The input set is committed first as `_plan.json` (create-if-absent) beside the staged
 *    files; every attempt uses the first plan, so a staged file that lands after the plan (a
 *    race the leases make rare) never changes the output — it becomes an orphan, moved as late
 *    data to the earliest open window after the manifest exists.
 * 2. Records stream from the planned files in plan order (on-time files, then late files, each
 *    sorted by name); the first copy of an event_id wins. A copy of an event already stored in a
 *    closed window is dropped as a duplicate too, within the dedup horizon: a client re-sends an
 *    unanswered event with the same id and the gateway stamps a new `gateway_ts`, so the two
 *    copies may fall into neighbouring windows. An on-time record within the horizon of the
 *    window's start is checked against the closed windows' records within the horizon of it (the
 *    plan names their manifests, `dedupAgainst`), a late record against the closed records within
 *    the horizon of its own window. Only the ids' bytes are kept in memory (EventIdSet). A
 *    window with more staged bytes than `shardBytes` is written in shards by a hash of event_id
 *    instead (sharded-close.ts: the same records, memory bounded by the setting); its plan
 *    records the shard count.
 * 3. Final files have deterministic names, sync markers, block boundaries and deflate level,
 *    and are created with create-if-absent in the window's unpublished folder
 *    (`_staging/<type>/<partition>/_publish/`, early segments' files too); a file left by a crashed
 *    attempt must have the same sha256 or finalize stops with FINAL_FILE_CONFLICT.
 * 4. The manifest is created there with create-if-absent, then ONE folder rename publishes the
 *    folder as `<type>/<partition>/`: a reader listing the type's prefix sees a window's files
 *    only together with its `_SUCCESS`. A rename that finds the partition there lost to another
 *    finalizer. Then the planned staged files, leftovers and the plan are deleted.
 */

/** Publishes the window (see publishWindow), then deletes its staging. */
export async function finalizeWindow(
  ctx: FinalizeContext,
  w: IntervalWindow,
  closingWatermark: number,
  early?: EarlySegments,
  lastClosed?: ClosedTail,
): Promise<FinalizeResult> {
  const result = await publishWindow(ctx, w, closingWatermark, early, lastClosed);
  await cleanupStaging(ctx, w);
  return result;
}

/**
 * Steps 1–4: plan, final files and manifest in the unpublished folder, one folder rename. Leaves
 * staging for cleanupStaging, which the closer runs outside the process-wide finalize queue.
 */
export async function publishWindow(
  ctx: FinalizeContext,
  w: IntervalWindow,
  closingWatermark: number,
  early?: EarlySegments,
  lastClosed?: ClosedTail,
  job?: FinalizeJob,
): Promise<FinalizeResult> {
  const mName = manifestName(ctx.eventType, w);
  const existing = await ctx.store.get(mName);
  if (existing) return { manifest: parseManifest(existing, mName), created: false };
  const plan = await commitPlan(ctx, w, closingWatermark);
  const segments = plan.earlySegments ?? [];
  // the writer holds the ids of the early segments' files too
  await job?.weigh(stagedBytes([...plan.files, ...segments.flat()]));
  const sharded = (plan.shards ?? 1) > 1;
  const writer = await writerThrough(ctx, w, plan, segments, early, lastClosed, sharded);
  if (sharded && plan.shardJobs) {
    if (!(await writeShardJobs(ctx, w, plan, writer, lastClosed, jobOptions(ctx)))) {
      return { manifest: parseManifest((await ctx.store.get(mName))!, mName), created: false };
    }
  } else if (sharded)
    await (ctx.spill === 'none' ? writeShardedRereading : writeSharded)(ctx, w, plan, writer, lastClosed);
  else await writer.write(plan.files);
  await writer.endSegment();
  const manifest = writer.manifest(plan);
  const unpublished = unpublishedName(ctx.eventType, w, mName);
  const ours = await ctx.store.createIfAbsent(unpublished, serializeManifest(manifest));
  await ctx.onStep?.('manifest-written', unpublished);
  let outcome = await ctx.store.renameFolder(publishDir(ctx.eventType, w), partitionDir(ctx.eventType, w));
  let published = await ctx.store.get(mName);
  if (!published && outcome === 'target-exists') {
    // part files without a manifest in the partition: early segments of a version that wrote them
    // there (an upgrade mid-window). Same names, same bytes: finish this one window by copying.
    await publishByCopy(ctx, w);
    outcome = 'renamed';
    published = await ctx.store.get(mName);
  }
  if (outcome === 'renamed') await ctx.onStep?.('published', mName);
  if (!published) throw new HourglassError('MANIFEST_MISMATCH', `${mName} missing after publishing`);
  const winner = outcome === 'renamed' && ours ? manifest : parseManifest(published, mName);
  const tail = writer.tail();
  return { manifest: winner, created: outcome === 'renamed', ...(tail ? { tail } : {}) };
}

/** The shard job options, also for a plan of shard jobs met by a replica configured without them. */
function jobOptions(ctx: FinalizeContext): ShardJobOptions {
  return (
    ctx.shardJobs ?? {
      identity: 'closer',
      now: () => Date.now(),
      claimMs: Defaults.finalizeShardClaim,
      pollMs: Defaults.finalizeShardPoll,
    }
  );
}

/** Creates `name` with `data`, or finds it there with exactly those bytes (a rerun); false: other bytes. */
export async function createOrSame(store: ObjectStore, name: string, data: Buffer): Promise<boolean> {
  return (await store.createIfAbsent(name, data)) || ((await store.get(name))?.equals(data) ?? false);
}

/**
 * The non-atomic fallback for a partition that already holds files: each unpublished object is
 * created in the partition (an existing one must have the same bytes), the manifest last.
 */
async function publishByCopy(ctx: FinalizeContext, w: IntervalWindow): Promise<void> {
  const from = publishDir(ctx.eventType, w);
  const to = partitionDir(ctx.eventType, w);
  const names = (await ctx.store.list(from)).map((o) => o.name);
  const manifestLast = [
    ...names.filter((n) => !n.endsWith('/_SUCCESS')),
    ...names.filter((n) => n.endsWith('/_SUCCESS')),
  ];
  for (const name of manifestLast) {
    const data = await ctx.store.get(name);
    if (!data) continue;
    const target = `${to}${name.slice(from.length)}`;
    if (!(await createOrSame(ctx.store, target, data))) {
      throw new HourglassError('FINAL_FILE_CONFLICT', `${target} exists with other bytes than finalize wrote`);
    }
  }
  ctx.logger.warn({ partition: to }, 'partition held files before its manifest: published by copying');
}

import { HourglassError } from '@hourglass/common';
import {
  LATE_PREFIX,
  earlyPlanName,
  isStagedDataFile,
  manifestName,
  planName,
  stagingDir,
  type IntervalWindow,
  assignWindow,
  nextWindow,
} from '@hourglass/bucket-format';
import type { FinalizeContext, FinalizeFormat } from './context.js';

/**
 * A finalize plan: the input set a window's output is made of, committed create-if-absent before
 * any output, so every attempt (any replica, after any crash) writes the same bytes. The close's
 * plan is `_plan.json`; early segments have `_plan-early-NNNNN.json` each.
 */
export interface PlanFile {
  name: string;
  size: number;
}

export interface Plan {
  planVersion: 1;
  eventType: string;
  window: { startMs: number; endMs: number };
  schemaFingerprint: string;
  closedByWatermark: number;
  graceMs: number;
  format: FinalizeFormat;
  /**
   * On-time files finalized early (finalizeEarly), segment by segment: their part files come
   * first, and each segment's series ends with it. Absent when nothing was finalized early.
   */
  earlySegments?: PlanFile[][];
  /**
   * Manifests of the closed windows within the dedup horizon before this one, as found when the
   * window's first plan was committed: its on-time records are checked against their records.
   */
  dedupAgainst?: string[];
  /** On-time files first, then late files; each group sorted by name. */
  files: PlanFile[];
  /**
   * Shards `files` are written in (sharded-close.ts), when more than one: from their staged bytes
   * and the shard target when the plan was committed. Absent: one pass, as before sharding existed.
   */
  shards?: number;
  /** With `shards`: written as shard jobs any replica may run (shard-jobs.ts), each with its own file names. */
  shardJobs?: true;
}

export interface StagedListing {
  onTime: PlanFile[];
  late: PlanFile[];
}

/** The window's staged data files, on-time and late, each sorted by name. */
export async function listStaged(ctx: FinalizeContext, w: IntervalWindow): Promise<StagedListing> {
  const dir = stagingDir(ctx.eventType, w);
  const staged = (await ctx.store.list(dir))
    .map((o) => ({ name: o.name, size: o.size, file: o.name.slice(dir.length) }))
    .filter((o) => !o.file.includes('/') && isStagedDataFile(o.file));
  const byName = (a: { file: string }, b: { file: string }): number => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
  const plain = (o: { name: string; size: number }): PlanFile => ({ name: o.name, size: o.size });
  return {
    onTime: staged
      .filter((o) => !o.file.startsWith(LATE_PREFIX))
      .sort(byName)
      .map(plain),
    late: staged
      .filter((o) => o.file.startsWith(LATE_PREFIX))
      .sort(byName)
      .map(plain),
  };
}

export function newPlan(ctx: FinalizeContext, w: IntervalWindow, closingWatermark: number, files: PlanFile[]): Plan {
  return {
    planVersion: 1,
    eventType: ctx.eventType,
    window: { startMs: w.start, endMs: w.end },
    schemaFingerprint: ctx.registry.get(ctx.eventType).latest.fingerprint,
    closedByWatermark: closingWatermark,
    graceMs: ctx.graceMs,
    format: ctx.format,
    files,
  };
}

/** The first plan stored under `name`, creating `plan` there if there is none. */
export async function firstPlan(
  ctx: FinalizeContext,
  name: string,
  plan: Plan,
): Promise<{ plan: Plan; ours: boolean }> {
  if (await ctx.store.createIfAbsent(name, Buffer.from(`${JSON.stringify(plan, null, 2)}\n`))) {
    return { plan, ours: true };
  }
  return { plan: parsePlan((await ctx.store.get(name)) ?? Buffer.alloc(0), name), ours: false };
}

export async function commitPlan(ctx: FinalizeContext, w: IntervalWindow, closingWatermark: number): Promise<Plan> {
  const name = planName(ctx.eventType, w);
  const earlier = await ctx.store.get(name);
  if (earlier) return parsePlan(earlier, name);
  // Seal the early segments first: an empty early plan after the last one. From here on, no
  // early finalize of this window can start writing part files.
  const segments: Plan[] = [];
  for (let index = 0; ; index++) {
    const { plan: segment } = await firstPlan(
      ctx,
      earlyPlanName(ctx.eventType, w, index),
      newPlan(ctx, w, closingWatermark, []),
    );
    if (segment.files.length === 0) break;
    segments.push(segment);
  }
  const early = new Set(segments.flatMap((p) => p.files.map((f) => f.name)));
  const staged = await listStaged(ctx, w);
  const plan = newPlan(
    ctx,
    w,
    closingWatermark,
    [...staged.onTime, ...staged.late].filter((f) => !early.has(f.name)),
  );
  // An empty window has nothing that could change between attempts: no plan object needed.
  if (plan.files.length === 0 && segments.length === 0) return plan;
  if (segments.length > 0) {
    // the first early segment fixed the target schema, the file format and the dedup reference
    plan.earlySegments = segments.map((p) => p.files);
    inheritFrom(plan, segments[0]!);
  } else {
    await referTo(ctx, plan, w);
  }
  const shards = shardCount(ctx, plan.files);
  if (shards > 1) plan.shards = shards;
  if (shards > 1 && ctx.shardJobs) plan.shardJobs = true;
  const committed = await firstPlan(ctx, name, plan);
  if (committed.ours) await ctx.onStep?.('plan-written', name);
  return committed.plan;
}

/** Staged bytes of `files`. */
export function stagedBytes(files: readonly PlanFile[]): number {
  return files.reduce((n, f) => n + f.size, 0);
}

/** Shards for `files`: one per started `shardBytes` of them (1 without a target). */
export function shardCount(ctx: FinalizeContext, files: readonly PlanFile[]): number {
  return ctx.shardBytes ? Math.max(1, Math.ceil(stagedBytes(files) / ctx.shardBytes)) : 1;
}

/** A later plan of a window keeps what its first fixed. */
export function inheritFrom(plan: Plan, first: Plan): void {
  plan.schemaFingerprint = first.schemaFingerprint;
  plan.format = first.format;
  if (first.dedupAgainst) plan.dedupAgainst = first.dedupAgainst;
  else delete plan.dedupAgainst;
}

/** Names in the first plan of `w` the manifests of the closed windows within the dedup horizon. */
export async function referTo(ctx: FinalizeContext, plan: Plan, w: IntervalWindow): Promise<void> {
  const horizon = plan.format.dedupHorizonMs ?? 0;
  if (horizon <= 0) return;
  const names: string[] = [];
  for (let v = assignWindow(w.start - horizon, ctx.windowMs); v.start < w.start; v = nextWindow(v)) {
    const name = manifestName(ctx.eventType, v);
    if (await ctx.store.exists(name)) names.push(name);
  }
  plan.dedupAgainst = names;
}

export function parsePlan(data: Buffer, name: string): Plan {
  try {
    const p = JSON.parse(data.toString('utf8')) as Plan;
    if (p.planVersion === 1 && Array.isArray(p.files)) return p;
  } catch {
    /* fall through */
  }
  throw new HourglassError('STAGED_FILE_CORRUPT', `${name} is not a readable finalize plan`);
}

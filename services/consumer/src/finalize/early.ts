import { manifestName, earlyPlanName, type IntervalWindow } from '@hourglass/bucket-format';
import type { ClosedTail, EarlySegments, FinalizeContext, FinalizeJob } from './context.js';
import { type Plan, firstPlan, inheritFrom, listStaged, newPlan, parsePlan, referTo, stagedBytes } from './plan.js';
import { sameSegments, writerThrough } from './resume-writer.js';

/**
 * Finalizes on-time staged files of a window before it closes, as the next early segment: the
 * files staged since the last segment. Commits the segment's
 * plan first (create-if-absent); if the close sealed the window, or already wrote its manifest,
 * does nothing and returns undefined. The close uses every segment committed before its seal,
 * so both write the same part files. Returns `previous` when there is nothing to do yet, or too
 * little (under ctx.earlySegmentMinBytes) before `atWindowEnd`.
 */
export async function finalizeEarly(
  ctx: FinalizeContext,
  w: IntervalWindow,
  previous: EarlySegments | undefined,
  lastClosed?: ClosedTail,
  job?: FinalizeJob,
  atWindowEnd = false,
): Promise<EarlySegments | undefined> {
  const manifest = manifestName(ctx.eventType, w);
  if (await ctx.store.exists(manifest)) return undefined;
  const committed: Plan[] = [];
  for (let index = 0; ; index++) {
    const segmentName = earlyPlanName(ctx.eventType, w, index);
    const data = await ctx.store.get(segmentName);
    if (!data) break;
    const plan = parsePlan(data, segmentName);
    if (plan.files.length === 0) return undefined; // sealed by a close
    committed.push(plan);
  }
  const done = new Set(committed.flatMap((p) => p.files.map((f) => f.name)));
  const fresh = (await listStaged(ctx, w)).onTime.filter((f) => !done.has(f.name));
  const keep = (): EarlySegments | undefined =>
    previous &&
    sameSegments(
      previous.segments,
      committed.map((p) => p.files),
    )
      ? previous
      : undefined;
  if (fresh.length === 0) return keep();
  // past one shard's bytes the close shards the window: the early segments' ids stay in memory
  // until then, so they stop here (the close writes the rest)
  const earlyBytes = stagedBytes([...committed.flatMap((p) => p.files), ...fresh]);
  if (ctx.shardBytes && earlyBytes > ctx.shardBytes) return keep();
  // a segment's fixed cost (plan, part files, syncs) is worth it only for enough data; the one at
  // the window's end always is: it takes the work off the close, into the grace
  if (!atWindowEnd && stagedBytes(fresh) < (ctx.earlySegmentMinBytes ?? 0)) return keep();
  await job?.weigh(earlyBytes);
  const name = earlyPlanName(ctx.eventType, w, committed.length);
  const proposed = newPlan(ctx, w, w.end, fresh);
  if (committed.length > 0) inheritFrom(proposed, committed[0]!);
  else await referTo(ctx, proposed, w);
  const { plan, ours } = await firstPlan(ctx, name, proposed);
  if (!ours) return undefined; // sealed, or another replica's segment: the close sorts it out
  await ctx.onStep?.('early-plan-written', name);
  // A close may have finished, cleaned up and deleted the seal before this plan was created: its
  // manifest exists then (it is written before the cleanup), and nothing must be added.
  if (await ctx.store.exists(manifest)) {
    await ctx.store.delete(name);
    return undefined;
  }
  const segments = [...committed.map((p) => p.files), plan.files];
  const writer = await writerThrough(ctx, w, committed[0] ?? plan, segments.slice(0, -1), keep(), lastClosed);
  await writer.write(plan.files);
  await writer.endSegment();
  return { window: w, segments, writer };
}

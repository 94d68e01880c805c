import {
  EARLY_PLAN_PREFIX,
  SHARD_PREFIX,
  shardJobName,
  isStagedDataFile,
  planName,
  publishDir,
  stagingDir,
  stagingTypePrefix,
  type IntervalWindow,
} from '@hourglass/bucket-format';
import type { FinalizeContext } from './context.js';
import { parsePlan } from './plan.js';

/**
 * After the manifest: delete the planned staged files and what a finalizer that lost the publish
 * left in the unpublished folder, move any other staged file (an orphan that missed the plan) to
 * the earliest open window as late data, delete the plan. The plan goes last, so a crash here
 * leaves enough to finish on a rerun. Deletes run with the store's bounded parallelism.
 */
export async function cleanupStaging(ctx: FinalizeContext, w: IntervalWindow): Promise<void> {
  const pName = planName(ctx.eventType, w);
  const planData = await ctx.store.get(pName);
  const plan = planData ? parsePlan(planData, pName) : undefined;
  const planned = new Set([...(plan?.earlySegments ?? []).flat(), ...(plan?.files ?? [])].map((f) => f.name));
  const dir = stagingDir(ctx.eventType, w);
  const unpublished = publishDir(ctx.eventType, w);
  const earlyPlans: string[] = [];
  const done: string[] = [];
  for (const o of await ctx.store.list(dir)) {
    const file = o.name.slice(dir.length);
    if (o.name.startsWith(unpublished)) done.push(o.name);
    else if (file.includes('/') || o.name === pName) continue;
    else if (file.startsWith(EARLY_PLAN_PREFIX)) earlyPlans.push(o.name);
    else if (file.startsWith(SHARD_PREFIX))
      done.push(o.name); // shard jobs' claims and results
    else if (planned.has(o.name)) done.push(o.name);
    else if (isStagedDataFile(file)) await ctx.sweepOrphan(o.name, w);
  }
  await ctx.store.deleteMany(done);
  if (plan?.shardJobs) await ctx.store.delete(shardJobName(ctx.eventType, w));
  // after the manifest: an early finalize that creates one again stops at the manifest
  await ctx.store.deleteMany(earlyPlans);
  if (planData) await ctx.store.delete(pName);
  // empty folders (a directory locally, an HNS folder on GCS) up to the type's staging root
  await ctx.store.deleteFolder(unpublished);
  const root = stagingTypePrefix(ctx.eventType);
  for (
    let folder = dir;
    folder.length > root.length;
    folder = folder.slice(0, folder.lastIndexOf('/', folder.length - 2) + 1)
  ) {
    await ctx.store.deleteFolder(folder);
  }
  await ctx.onStep?.('staging-deleted', dir);
}

import { setTimeout as sleep } from 'node:timers/promises';
import {
  SHARD_PREFIX,
  assignWindow,
  manifestName,
  planName,
  shardClaimName,
  shardJobName,
  mayHoldShardJobIds,
  shardJobOf,
  shardResultName,
  stagingDir,
  windowLabel,
  type IntervalWindow,
} from '@hourglass/bucket-format';
import type { ClosedTail, FinalizeContext } from './context.js';
import { EventIdSet } from './id-set.js';
import { parsePlan, type Plan } from './plan.js';
import { forEachReference, hasReference, writerThrough } from './resume-writer.js';
import { type ClaimOptions, claimJob, keepClaimed } from './shard-claims.js';
import { type ShardResult, parseShardResult, serializeShardResult } from './shard-result.js';
import type { SpilledRecord } from './shard-spill.js';
import { forEachShardDatum } from './shard-read.js';
import { type FileFilter, type IdVisitor, type ShardIds, type WindowWriter, forEachClosedId } from './window-writer.js';

/**
 * A window over the shard target, finalized as shard jobs that any replica may run: shard s
 * holds the events whose event_id hashes into its groups (shardJobOf), so a copy always meets its
 * twin in the same job and each job deduplicates alone, holding only its own ids. A job reads its
 * records from every planned staged file in plan order, checks them against its share of the
 * closed windows' ids, writes `part-sSSSSS-NNNNN.avro` / `late-sSSSSS-…` into the unpublished
 * folder and stores its result (`_shard-SSSSS.json`). The closer announces the window under
 * `_shardjobs/`, runs every job nobody has claimed, waits for the others (taking over a claim that
 * expired), then lists all results' files in the manifest in shard order. A job's output is a pure
 * function of the plan and the store: a takeover after a crash writes the same bytes.
 */
export interface ShardJobOptions extends ClaimOptions {
  /** How often the closer looks for other replicas' results, and a worker for announced windows. */
  pollMs: number;
}

/**
 * The closer's part: every shard job done (by anyone), their results added to `base`; false when
 * the window turned out published meanwhile (another closer, e.g. while leases were judged
 * expired): its staging and results may be gone, so nothing more is written.
 */
export async function writeShardJobs(
  ctx: FinalizeContext,
  w: IntervalWindow,
  plan: Plan,
  base: WindowWriter,
  lastClosed: ClosedTail | undefined,
  o: ShardJobOptions,
): Promise<boolean> {
  const shards = plan.shards ?? 1;
  const started = performance.now();
  const announcement = { eventType: ctx.eventType, window: plan.window, shards };
  await ctx.store.createIfAbsent(shardJobName(ctx.eventType, w), Buffer.from(`${JSON.stringify(announcement)}\n`));
  const results: ShardResult[] = [];
  let ranHere = 0;
  for (;;) {
    if (await published(ctx, w)) return false;
    const listed = await listShardObjects(ctx, w);
    let waiting = 0;
    for (let shard = 0; shard < shards; shard++) {
      if (results[shard]) continue;
      const found = await storedResult(ctx, w, shard, listed);
      if (found) results[shard] = found;
      else if (await claimOpen(ctx, w, shard, o, listed)) {
        const result = await runClaimed(ctx, w, plan, shard, base, lastClosed, o);
        if (result) {
          results[shard] = result;
          ranHere++;
        } else waiting++; // too slow: another replica took the job over, its result comes
      } else waiting++;
    }
    if (waiting === 0) break;
    await sleep(o.pollMs);
  }
  if (await published(ctx, w)) return false;
  base.addShardResults(results, plan.files.length);
  ctx.logger.info(
    { window: windowLabel(w), shards, ranHere, durationMs: Math.round(performance.now() - started) },
    'window finalized in shard jobs',
  );
  return true;
}

function published(ctx: FinalizeContext, w: IntervalWindow): Promise<boolean> {
  return ctx.store.exists(manifestName(ctx.eventType, w));
}

/**
 * Claims a shard job unless another replica's claim on it is live (a listed claim is read, not
 * created again), then makes sure the window is not published: a listing made after the publisher cleaned
 * up shows no results and no claims, and the job must not run again then.
 */
async function claimOpen(
  ctx: FinalizeContext,
  w: IntervalWindow,
  shard: number,
  o: ShardJobOptions,
  listed: ReadonlySet<string>,
): Promise<boolean> {
  const name = shardClaimName(ctx.eventType, w, shard);
  if (!(await claimJob(ctx.store, name, o, listed.has(name)))) return false;
  if (!(await published(ctx, w))) return true;
  await ctx.store.delete(name);
  return false;
}

/**
 * A worker's part, for a window announced under `_shardjobs/`: claims and runs one shard job that
 * nobody holds; false when none is left (or the window is published, or has no shard jobs).
 */
export async function runOneOpenShardJob(
  ctx: FinalizeContext,
  w: IntervalWindow,
  o: ShardJobOptions,
): Promise<boolean> {
  if (await published(ctx, w)) return false;
  const pName = planName(ctx.eventType, w);
  const data = await ctx.store.get(pName);
  if (!data) return false;
  const plan = parsePlan(data, pName);
  if (!plan.shardJobs || !plan.shards) return false;
  const listed = await listShardObjects(ctx, w);
  for (let shard = 0; shard < plan.shards; shard++) {
    if (listed.has(shardResultName(ctx.eventType, w, shard))) continue;
    if (!(await claimOpen(ctx, w, shard, o, listed))) continue;
    // the early segments' ids, rewriting their files byte for byte (they exist: the closer wrote them first)
    const base = await writerThrough(ctx, w, plan, plan.earlySegments ?? [], undefined, undefined, true);
    await runClaimed(ctx, w, plan, shard, base, undefined, o); // a lost claim: the job is someone else's now
    return true;
  }
  return false;
}

async function listShardObjects(ctx: FinalizeContext, w: IntervalWindow): Promise<Set<string>> {
  return new Set((await ctx.store.list(`${stagingDir(ctx.eventType, w)}${SHARD_PREFIX}`)).map((x) => x.name));
}

async function storedResult(
  ctx: FinalizeContext,
  w: IntervalWindow,
  shard: number,
  listed: ReadonlySet<string>,
): Promise<ShardResult | undefined> {
  const name = shardResultName(ctx.eventType, w, shard);
  if (!listed.has(name)) return undefined;
  const data = await ctx.store.get(name);
  return data && parseShardResult(data, name);
}

async function runClaimed(
  ctx: FinalizeContext,
  w: IntervalWindow,
  plan: Plan,
  shard: number,
  base: WindowWriter,
  lastClosed: ClosedTail | undefined,
  o: ShardJobOptions,
): Promise<ShardResult | undefined> {
  const claim = keepClaimed(ctx.store, shardClaimName(ctx.eventType, w, shard), o);
  try {
    return await runShardJob(ctx, w, plan, shard, base, lastClosed, () => !claim.lost());
  } finally {
    await claim.release();
  }
}

/**
 * One shard job: its records deduplicated into its own final files, then its result stored;
 * undefined when `held()` turned false between staged files (the claim was lost: stop writing).
 */
export async function runShardJob(
  ctx: FinalizeContext,
  w: IntervalWindow,
  plan: Plan,
  shard: number,
  base: WindowWriter,
  lastClosed: ClosedTail | undefined,
  held: () => boolean = () => true,
): Promise<ShardResult | undefined> {
  const shards = plan.shards ?? 1;
  const writer = base.forShard(shard);
  const { target } = writer;
  const mine =
    (set: EventIdSet): IdVisitor =>
    (source, start, end) => {
      if (shardJobOf(source, start, end, shards) === shard) set.addIfAbsent(source, start, end);
      return undefined;
    };
  // of a closed window finalized in shard jobs, only the files of jobs whose groups meet ours
  const ours: FileFilter = (m, path) => mayHoldShardJobIds(path, m.shards, shard, shards);
  const ids: ShardIds = { seen: new EventIdSet(), reference: undefined, closed: new Map() };
  if (hasReference(plan)) {
    ids.reference = new EventIdSet();
    await forEachReference(ctx, w, plan, target, lastClosed, mine(ids.reference), ours);
  }
  const horizonMs = plan.format.dedupHorizonMs ?? 0;
  const loadClosed = async (start: number): Promise<void> => {
    const set = new EventIdSet();
    ids.closed.set(start, set);
    await forEachClosedId(ctx, assignWindow(start, ctx.windowMs), w, target, horizonMs, mine(set), ours);
  };
  const r: SpilledRecord = { source: Buffer.alloc(0), start: 0, end: 0, idStart: 0, idEnd: 0, gatewayTs: 0 };
  for (const file of plan.files) {
    if (!held()) return undefined;
    await forEachShardDatum(ctx, w, file, target, shard, shards, (d) => {
      writer.countShardRecord();
      r.source = d.bytes;
      r.end = d.bytes.length;
      r.idStart = d.idStart;
      r.idEnd = d.idEnd;
      r.gatewayTs = d.gatewayTs;
      const original = d.gatewayTs < w.start ? assignWindow(d.gatewayTs, ctx.windowMs).start : undefined;
      if (original === undefined || ids.closed.has(original)) return writer.writeShardRecord(r, ids);
      // a late record of a window not read yet: its closed ids first (rare: once per original window)
      const held: SpilledRecord = { ...r, source: Buffer.from(d.bytes) };
      return loadClosed(original).then(() => writer.writeShardRecord(held, ids));
    });
  }
  await writer.endSegment();
  const result = writer.shardResult(shard);
  const name = shardResultName(ctx.eventType, w, shard);
  await ctx.store.createIfAbsent(name, serializeShardResult(result));
  await ctx.onStep?.('shard-written', name);
  return result;
}

import { HourglassError, type Logger } from '@hourglass/common';
import type { SchemaRegistry, SchemaVersion } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import { EventIdSet } from './id-set.js';
import {
  type IntervalWindow,
  type Manifest,
  EARLY_PLAN_PREFIX,
  LATE_PREFIX,
  assignWindow,
  earlyPlanName,
  isStagedDataFile,
  manifestName,
  nextWindow,
  parseManifest,
  partitionDir,
  planName,
  publishDir,
  serializeManifest,
  stagingDir,
  stagingTypePrefix,
  unpublishedName,
  windowLabel,
} from '@hourglass/bucket-format';
import { WindowWriter, addIdsInRange } from './window-writer.js';

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
 *    the horizon of its own window. Only the ids' bytes are kept in memory (EventIdSet).
 * 3. Final files have deterministic names, sync markers, block boundaries and deflate level,
 *    and are created with create-if-absent in the window's unpublished folder
 *    (`_staging/<type>/<partition>/_publish/`, early segments' files too); a file left by a crashed
 *    attempt must have the same sha256 or finalize stops with FINAL_FILE_CONFLICT.
 * 4. The manifest is created there with create-if-absent, then ONE folder rename publishes the
 *    folder as `<type>/<partition>/`: a reader listing the type's prefix sees a window's files
 *    only together with its `_SUCCESS`. A rename that finds the partition there lost to another
 *    finalizer. Then the planned staged files, leftovers and the plan are deleted.
 */
export type FinalizeStep =
  'early-plan-written' | 'plan-written' | 'part-written' | 'manifest-written' | 'published' | 'staging-deleted';

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

export interface FinalizeContext {
  store: ObjectStore;
  registry: SchemaRegistry;
  eventType: string;
  windowMs: number;
  graceMs: number;
  format: FinalizeFormat;
  logger: Logger;
  /** Test hook: awaited after each step (the crash tests kill the process here). */
  onStep?: (step: FinalizeStep, detail: string) => void | Promise<void>;
  /** Moves a staged file that missed its window's plan to the earliest open window, as late data. */
  sweepOrphan: (name: string, from: IntervalWindow) => Promise<void>;
}

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
): Promise<FinalizeResult> {
  const mName = manifestName(ctx.eventType, w);
  const existing = await ctx.store.get(mName);
  if (existing) return { manifest: parseManifest(existing, mName), created: false };
  const plan = await commitPlan(ctx, w, closingWatermark);
  const writer = await writerThrough(ctx, w, plan, plan.earlySegments ?? [], early, lastClosed);
  await writer.write(plan.files);
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

interface StagedListing {
  onTime: PlanFile[];
  late: PlanFile[];
}

/** The window's staged data files, on-time and late, each sorted by name. */
async function listStaged(ctx: FinalizeContext, w: IntervalWindow): Promise<StagedListing> {
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

function newPlan(ctx: FinalizeContext, w: IntervalWindow, closingWatermark: number, files: PlanFile[]): Plan {
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
async function firstPlan(ctx: FinalizeContext, name: string, plan: Plan): Promise<{ plan: Plan; ours: boolean }> {
  if (await ctx.store.createIfAbsent(name, Buffer.from(`${JSON.stringify(plan, null, 2)}\n`))) {
    return { plan, ours: true };
  }
  return { plan: parsePlan((await ctx.store.get(name)) ?? Buffer.alloc(0), name), ours: false };
}

async function commitPlan(ctx: FinalizeContext, w: IntervalWindow, closingWatermark: number): Promise<Plan> {
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
  const committed = await firstPlan(ctx, name, plan);
  if (committed.ours) await ctx.onStep?.('plan-written', name);
  return committed.plan;
}

/** A later plan of a window keeps what its first fixed. */
function inheritFrom(plan: Plan, first: Plan): void {
  plan.schemaFingerprint = first.schemaFingerprint;
  plan.format = first.format;
  if (first.dedupAgainst) plan.dedupAgainst = first.dedupAgainst;
  else delete plan.dedupAgainst;
}

/** Names in the first plan of `w` the manifests of the closed windows within the dedup horizon. */
async function referTo(ctx: FinalizeContext, plan: Plan, w: IntervalWindow): Promise<void> {
  const horizon = plan.format.dedupHorizonMs ?? 0;
  if (horizon <= 0) return;
  const names: string[] = [];
  for (let v = assignWindow(w.start - horizon, ctx.windowMs); v.start < w.start; v = nextWindow(v)) {
    const name = manifestName(ctx.eventType, v);
    if (await ctx.store.exists(name)) names.push(name);
  }
  plan.dedupAgainst = names;
}

/**
 * The ids stored in the plan's reference windows with `gateway_ts` ≥ w.start − horizon, marked: from
 * `lastClosed` when it is exactly that (the closer just closed the window before), else read back.
 */
async function dedupReference(
  ctx: FinalizeContext,
  w: IntervalWindow,
  first: Plan,
  target: SchemaVersion,
  lastClosed: ClosedTail | undefined,
): Promise<EventIdSet | undefined> {
  const horizon = first.format.dedupHorizonMs ?? 0;
  const names = first.dedupAgainst ?? [];
  if (horizon <= 0 || names.length === 0) return undefined;
  if (
    lastClosed &&
    lastClosed.window.end === w.start &&
    lastClosed.horizonMs === horizon &&
    names.length === 1 &&
    names[0] === manifestName(ctx.eventType, lastClosed.window)
  ) {
    return lastClosed.ids;
  }
  const from = w.start - horizon;
  const ids = new EventIdSet();
  for (const name of names) {
    const data = await ctx.store.get(name);
    if (!data) throw new HourglassError('MANIFEST_MISMATCH', `${name} is in the plan of ${windowLabel(w)} but missing`);
    for (const f of parseManifest(data, name).files) {
      if (f.maxGatewayTs < from) continue;
      if (!(await addIdsInRange(ctx, f.path, target, from, Infinity, ids, true))) {
        throw new HourglassError('MANIFEST_MISMATCH', `${f.path} is in ${name} but missing`);
      }
    }
  }
  return ids;
}

function parsePlan(data: Buffer, name: string): Plan {
  try {
    const p = JSON.parse(data.toString('utf8')) as Plan;
    if (p.planVersion === 1 && Array.isArray(p.files)) return p;
  } catch {
    /* fall through */
  }
  throw new HourglassError('STAGED_FILE_CORRUPT', `${name} is not a readable finalize plan`);
}

function targetSchema(ctx: FinalizeContext, fingerprint: string): SchemaVersion {
  const version = ctx.registry.byFingerprint(fingerprint);
  if (!version || version.eventType !== ctx.eventType) {
    throw new HourglassError(
      'SCHEMA_UNKNOWN_FINGERPRINT',
      `plan of ${ctx.eventType} names unknown schema ${fingerprint}`,
    );
  }
  return version;
}

function sameSegments(a: readonly (readonly PlanFile[])[], b: readonly (readonly PlanFile[])[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => x.length === b[i]!.length && x.every((f, j) => f.name === b[i]![j]!.name))
  );
}

/** A writer that has written `segments` (rewriting their part files byte for byte if not `cached`). */
async function writerThrough(
  ctx: FinalizeContext,
  w: IntervalWindow,
  first: Plan,
  segments: readonly (readonly PlanFile[])[],
  cached: EarlySegments | undefined,
  lastClosed: ClosedTail | undefined,
): Promise<WindowWriter> {
  if (cached && cached.window.start === w.start && sameSegments(cached.segments, segments)) return cached.writer;
  const target = targetSchema(ctx, first.schemaFingerprint);
  const reference = await dedupReference(ctx, w, first, target, lastClosed);
  const writer = new WindowWriter(ctx, w, target, first.format, reference);
  for (const files of segments) {
    await writer.write(files); // create-if-absent: existing part files must match byte for byte
    await writer.endSegment();
  }
  return writer;
}

/**
 * Finalizes on-time staged files of a window before it closes, as the next early segment: the
 * files staged since the last segment. Commits the segment's
 * plan first (create-if-absent); if the close sealed the window, or already wrote its manifest,
 * does nothing and returns undefined. The close uses every segment committed before its seal,
 * so both write the same part files. Returns `previous` when there is nothing to do yet.
 */
export async function finalizeEarly(
  ctx: FinalizeContext,
  w: IntervalWindow,
  previous: EarlySegments | undefined,
  lastClosed?: ClosedTail,
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
    else if (planned.has(o.name)) done.push(o.name);
    else if (isStagedDataFile(file)) await ctx.sweepOrphan(o.name, w);
  }
  await ctx.store.deleteMany(done);
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

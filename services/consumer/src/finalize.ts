import { createHash } from 'node:crypto';
import { HourglassError, type Logger } from '@hourglass/common';
import type { SchemaRegistry, SchemaVersion } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import { OcfWriter, schemaTextOf, syncMarkerFor } from './avro-file.js';
import { scanContainer } from './datums.js';
import { EventIdSet } from './id-set.js';
import { LATE_PREFIX, finalFileName, isStagedDataFile, manifestName, planName, stagingDir } from './layout.js';
import { type Manifest, type ManifestFile, parseManifest, serializeManifest, windowFields } from './manifest.js';
import { type IntervalWindow, assignWindow, parsePartition, partitionPath, windowLabel } from './windows.js';

/**
 * Finalize one window: staged files → deduplicated final Avro files → `_SUCCESS` → staging
 * deleted. Any replica may run it, any number of times, and crash anywhere:
 *
 * 1. The input set is committed first as `_plan.json` (create-if-absent) beside the staged
 *    files; every attempt uses the first plan, so a staged file that lands after the plan (a
 *    race the leases make rare) never changes the output — it becomes an orphan, moved as late
 *    data to the earliest open window after the manifest exists.
 * 2. Records stream from the planned files in plan order (on-time files, then late files, each
 *    sorted by name); the first copy of an event_id wins. A late record whose event_id already
 *    sits in a closed window (its own window's files, or a late file of a window closed since)
 *    is dropped as a duplicate too. Only the ids' bytes are kept in memory (EventIdSet).
 * 3. Final files have deterministic names, sync markers, block boundaries and deflate level,
 *    and are created with create-if-absent; a file left by a crashed attempt must have the same
 *    sha256 or finalize stops with FINAL_FILE_CONFLICT.
 * 4. The manifest is created with create-if-absent; then the planned staged files and the plan
 *    are deleted.
 */
export type FinalizeStep = 'plan-written' | 'part-written' | 'manifest-written' | 'staging-deleted';

export interface FinalizeFormat {
  finalFileBytes: number;
  blockBytes: number;
  deflateLevel: number;
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

interface PlanFile {
  name: string;
  size: number;
}

interface Plan {
  planVersion: 1;
  eventType: string;
  window: { startMs: number; endMs: number };
  schemaFingerprint: string;
  closedByWatermark: number;
  graceMs: number;
  format: FinalizeFormat;
  /** On-time files first, then late files; each group sorted by name. */
  files: PlanFile[];
}

export interface FinalizeResult {
  manifest: Manifest;
  /** false when an earlier attempt (or another replica) had already written the manifest. */
  created: boolean;
}

export async function finalizeWindow(
  ctx: FinalizeContext,
  w: IntervalWindow,
  closingWatermark: number,
): Promise<FinalizeResult> {
  const mName = manifestName(ctx.eventType, w);
  const existing = await ctx.store.get(mName);
  if (existing) {
    await cleanupStaging(ctx, w);
    return { manifest: parseManifest(existing, mName), created: false };
  }
  const plan = await commitPlan(ctx, w, closingWatermark);
  const manifest = await writeFinalFiles(ctx, w, plan);
  const created = await ctx.store.createIfAbsent(mName, serializeManifest(manifest));
  await ctx.onStep?.('manifest-written', mName);
  const winner = created ? manifest : parseManifest((await ctx.store.get(mName)) ?? Buffer.alloc(0), mName);
  await cleanupStaging(ctx, w);
  await ctx.onStep?.('staging-deleted', stagingDir(ctx.eventType, w));
  return { manifest: winner, created };
}

async function commitPlan(ctx: FinalizeContext, w: IntervalWindow, closingWatermark: number): Promise<Plan> {
  const name = planName(ctx.eventType, w);
  const earlier = await ctx.store.get(name);
  if (earlier) return parsePlan(earlier, name);
  const dir = stagingDir(ctx.eventType, w);
  const staged = (await ctx.store.list(dir))
    .map((o) => ({ name: o.name, size: o.size, file: o.name.slice(dir.length) }))
    .filter((o) => !o.file.includes('/') && isStagedDataFile(o.file));
  const byName = (a: { file: string }, b: { file: string }): number => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
  const onTime = staged.filter((o) => !o.file.startsWith(LATE_PREFIX)).sort(byName);
  const late = staged.filter((o) => o.file.startsWith(LATE_PREFIX)).sort(byName);
  const plan: Plan = {
    planVersion: 1,
    eventType: ctx.eventType,
    window: { startMs: w.start, endMs: w.end },
    schemaFingerprint: ctx.registry.get(ctx.eventType).latest.fingerprint,
    closedByWatermark: closingWatermark,
    graceMs: ctx.graceMs,
    format: ctx.format,
    files: [...onTime, ...late].map((o) => ({ name: o.name, size: o.size })),
  };
  // An empty window has nothing that could change between attempts: no plan object needed.
  if (plan.files.length === 0) return plan;
  const created = await ctx.store.createIfAbsent(name, Buffer.from(`${JSON.stringify(plan, null, 2)}\n`));
  if (!created) return parsePlan((await ctx.store.get(name)) ?? Buffer.alloc(0), name);
  await ctx.onStep?.('plan-written', name);
  return plan;
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

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A sequence of final files (part-* or late-*), rolled at a size of uncompressed record data. */
class FinalSeries {
  readonly files: ManifestFile[] = [];
  private writer: OcfWriter | undefined;
  private index = 0;
  private minTs = Infinity;
  private maxTs = -Infinity;

  constructor(
    private readonly ctx: FinalizeContext,
    private readonly w: IntervalWindow,
    private readonly late: boolean,
    private readonly target: SchemaVersion,
    private readonly format: FinalizeFormat,
  ) {}

  add(bytes: Buffer, gatewayTs: number): Promise<void> | undefined {
    if (!this.writer) {
      const name = finalFileName(this.ctx.eventType, this.w, this.late, this.index);
      this.writer = new OcfWriter({
        type: this.target.type,
        schema: schemaTextOf(this.target),
        syncMarker: syncMarkerFor(name),
        deflateLevel: this.format.deflateLevel,
        blockBytes: this.format.blockBytes,
      });
    }
    this.writer.appendDatum(bytes);
    if (gatewayTs < this.minTs) this.minTs = gatewayTs;
    if (gatewayTs > this.maxTs) this.maxTs = gatewayTs;
    return this.writer.rawBytes >= this.format.finalFileBytes ? this.complete() : undefined;
  }

  async complete(): Promise<void> {
    const writer = this.writer;
    if (!writer || writer.records === 0) return;
    const name = finalFileName(this.ctx.eventType, this.w, this.late, this.index);
    const data = await writer.finish();
    const digest = sha256(data);
    if (!(await this.ctx.store.createIfAbsent(name, data))) {
      const earlier = await this.ctx.store.get(name);
      if (!earlier || sha256(earlier) !== digest) {
        throw new HourglassError(
          'FINAL_FILE_CONFLICT',
          `${name} exists with other bytes than this finalize of ${windowLabel(this.w)} produced`,
        );
      }
    }
    this.files.push({
      path: name,
      late: this.late,
      records: writer.records,
      bytes: data.length,
      sha256: digest,
      minGatewayTs: this.minTs,
      maxGatewayTs: this.maxTs,
    });
    this.writer = undefined;
    this.index++;
    this.minTs = Infinity;
    this.maxTs = -Infinity;
    await this.ctx.onStep?.('part-written', name);
  }
}

async function writeFinalFiles(ctx: FinalizeContext, w: IntervalWindow, plan: Plan): Promise<Manifest> {
  const target = targetSchema(ctx, plan.schemaFingerprint);
  const onTime = new FinalSeries(ctx, w, false, target, plan.format);
  const late = new FinalSeries(ctx, w, true, target, plan.format);
  const seen = new EventIdSet();
  const closedIds = new Map<number, EventIdSet>();
  let stagedRecords = 0;
  let duplicates = 0;
  let duplicatesOfClosed = 0;
  let minTs = Infinity;
  let maxTs = -Infinity;

  for (const file of plan.files) {
    const data = await ctx.store.get(file.name);
    if (!data) {
      throw new HourglassError('STAGED_FILE_CORRUPT', `${file.name} is in the plan of ${windowLabel(w)} but missing`);
    }
    let pendingLate: { bytes: Buffer; ts: number; idStart: number; idEnd: number }[] = [];
    stagedRecords += await scanContainer(data, file.name, target, ({ bytes, idStart, idEnd, gatewayTs }) => {
      if (!seen.addIfAbsent(bytes, idStart, idEnd)) {
        duplicates++;
        return undefined;
      }
      if (gatewayTs >= w.start) return record(onTime.add(bytes, gatewayTs), gatewayTs);
      // late: the closed-window check needs I/O, so collect the file's late records first
      pendingLate.push({ bytes: Buffer.from(bytes), ts: gatewayTs, idStart, idEnd });
      return undefined;
    });
    for (const r of pendingLate) {
      const original = assignWindow(r.ts, ctx.windowMs);
      let ids = closedIds.get(original.start);
      if (!ids) {
        ids = await idsInClosedWindows(ctx, original, w, target);
        closedIds.set(original.start, ids);
      }
      if (ids.has(r.bytes, r.idStart, r.idEnd)) {
        duplicates++;
        duplicatesOfClosed++;
        continue;
      }
      await record(late.add(r.bytes, r.ts), r.ts);
    }
    pendingLate = [];
  }
  await onTime.complete();
  await late.complete();

  function record(rolled: Promise<void> | undefined, ts: number): Promise<void> | undefined {
    if (ts < minTs) minTs = ts;
    if (ts > maxTs) maxTs = ts;
    return rolled;
  }

  const files = [...onTime.files, ...late.files];
  const onTimeCount = onTime.files.reduce((n, f) => n + f.records, 0);
  const lateCount = late.files.reduce((n, f) => n + f.records, 0);
  return {
    manifestVersion: 1,
    eventType: ctx.eventType,
    window: windowFields(w),
    partition: partitionPath(ctx.eventType, w),
    schema: { fingerprint: target.fingerprint, version: target.version },
    files,
    counts: {
      records: onTimeCount + lateCount,
      onTime: onTimeCount,
      late: lateCount,
      duplicatesDropped: duplicates,
      duplicatesOfClosedWindows: duplicatesOfClosed,
      stagedFiles: plan.files.length,
      stagedRecords,
    },
    gatewayTs: { min: files.length ? minTs : null, max: files.length ? maxTs : null },
    closedBy: {
      watermark: plan.closedByWatermark,
      watermarkIso: new Date(plan.closedByWatermark).toISOString(),
      graceMs: plan.graceMs,
    },
  };
}

/**
 * Event ids of `original`'s window that are already closed: its own final files plus the late
 * files of every window closed since (strictly between `original` and `current`).
 */
async function idsInClosedWindows(
  ctx: FinalizeContext,
  original: IntervalWindow,
  current: IntervalWindow,
  target: SchemaVersion,
): Promise<EventIdSet> {
  const ids = new EventIdSet();
  const collect = async (name: string): Promise<void> => {
    const data = await ctx.store.get(name);
    if (!data) return;
    await scanContainer(data, name, target, ({ bytes, idStart, idEnd, gatewayTs }) => {
      if (gatewayTs >= original.start && gatewayTs < original.end) ids.addIfAbsent(bytes, idStart, idEnd);
    });
  };
  const mName = manifestName(ctx.eventType, original);
  const manifestData = await ctx.store.get(mName);
  if (manifestData) {
    for (const f of parseManifest(manifestData, mName).files) if (!f.late) await collect(f.path);
  }
  const typePrefix = `${ctx.eventType}/`;
  const DAY = 86_400_000;
  for (let day = Math.floor(original.start / DAY) * DAY; day < current.start; day += DAY) {
    const dayPrefix = `${typePrefix}dt=${new Date(day).toISOString().slice(0, 10)}/`;
    for (const o of await ctx.store.list(dayPrefix)) {
      const slash = o.name.lastIndexOf('/');
      if (!o.name.slice(slash + 1).startsWith('late-') || !o.name.endsWith('.avro')) continue;
      const v = parsePartition(o.name.slice(typePrefix.length, slash), ctx.windowMs);
      if (v && v.start > original.start && v.start < current.start) await collect(o.name);
    }
  }
  return ids;
}

/**
 * After the manifest: delete the planned staged files, move any other staged file (an
 * orphan that missed the plan) to the earliest open window as late data, delete the plan.
 * The plan goes last, so a crash here leaves enough to finish on a rerun.
 */
export async function cleanupStaging(ctx: FinalizeContext, w: IntervalWindow): Promise<void> {
  const pName = planName(ctx.eventType, w);
  const planData = await ctx.store.get(pName);
  const planned = new Set(planData ? parsePlan(planData, pName).files.map((f) => f.name) : []);
  const dir = stagingDir(ctx.eventType, w);
  for (const o of await ctx.store.list(dir)) {
    const file = o.name.slice(dir.length);
    if (file.includes('/') || o.name === pName) continue;
    if (planned.has(o.name)) await ctx.store.delete(o.name);
    else if (isStagedDataFile(file)) await ctx.sweepOrphan(o.name, w);
  }
  if (planData) await ctx.store.delete(pName);
}

import { HourglassError } from '@hourglass/common';
import type { SchemaVersion } from '@hourglass/schemas';
import {
  scanContainer,
  manifestName,
  type Manifest,
  parseManifest,
  windowFields,
  type IntervalWindow,
  assignWindow,
  nextWindow,
  parsePartition,
  partitionPath,
  windowLabel,
  type ScannedDatum,
} from '@hourglass/bucket-format';
import type { ClosedTail, FinalizeContext, FinalizeFormat } from './context.js';
import type { Plan, PlanFile } from './plan.js';
import { EventIdSet } from './id-set.js';
import type { SpilledRecord } from './shard-spill.js';
import { FinalSeries } from './final-series.js';
import { type StagedReads, stagedReads } from './read-ahead.js';
import type { ShardResult } from './shard-result.js';

/** A shard's ids while it is written: its own records so far, and the closed windows' it is checked against. */
export interface ShardIds {
  seen: EventIdSet;
  /** The dedup reference's ids of this shard; undefined when the window has no reference. */
  reference: EventIdSet | undefined;
  /** Per original window start: this shard's ids stored in the closed windows (for late records). */
  closed: Map<number, EventIdSet>;
}

/**
 * Writing a window's final files: the series of part and late files, first copy of each event id
 * wins, duplicates of closed windows within the dedup horizon dropped, and the manifest of what
 * was written. plan.ts decides what to write, publish.ts and early.ts drive the writer.
 */
/**
 * Adds to `ids` (marked when `mark`) the event ids in the final file `name` whose `gateway_ts` is
 * in [lo, hi); false when the file is missing.
 */
export function addIdsInRange(
  ctx: FinalizeContext,
  name: string,
  target: SchemaVersion,
  lo: number,
  hi: number,
  ids: EventIdSet,
  mark: boolean,
): Promise<boolean> {
  return visitIdsInRange(ctx, name, target, lo, hi, (source, start, end) => {
    ids.addIfAbsent(source, start, end, mark);
    return undefined;
  });
}

/** Visits the id `source[start, end)` of one record; awaited when it returns a promise. */
export type IdVisitor = (source: Buffer, start: number, end: number) => Promise<void> | undefined;

/**
 * Scans the planned staged file `file` of window `w` into `target`, calling `visit` per datum (and
 * awaiting what it returns); resolves to the file's record count and bytes. A planned file that is
 * missing is STAGED_FILE_CORRUPT: the plan was committed after it was listed. `reads` gives its
 * bytes, read ahead in plan order (read-ahead.ts).
 */
export async function scanPlannedFile(
  ctx: FinalizeContext,
  w: IntervalWindow,
  file: PlanFile,
  target: SchemaVersion,
  visit: (datum: ScannedDatum) => Promise<void> | undefined,
  reads: StagedReads,
): Promise<{ records: number; bytes: number }> {
  const data = await reads.take(file);
  if (!data) {
    throw new HourglassError('STAGED_FILE_CORRUPT', `${file.name} is in the plan of ${windowLabel(w)} but missing`);
  }
  return { records: await scanContainer(data, file.name, target, visit, ctx.pace), bytes: data.length };
}

/** Calls `visit` for the event ids in the final file `name` whose `gateway_ts` is in [lo, hi); false when the file is missing. */
export async function visitIdsInRange(
  ctx: FinalizeContext,
  name: string,
  target: SchemaVersion,
  lo: number,
  hi: number,
  visit: IdVisitor,
): Promise<boolean> {
  const data = await ctx.store.get(name);
  if (!data) return false;
  await scanContainer(
    data,
    name,
    target,
    ({ bytes, idStart, idEnd, gatewayTs }) =>
      gatewayTs >= lo && gatewayTs < hi ? visit(bytes, idStart, idEnd) : undefined,
    ctx.pace,
  );
  return true;
}

/**
 * Turns planned staged files into final files, segment by segment: the early segment's on-time
 * series ends with it, so its part files never depend on what was staged after it.
 */
export class WindowWriter {
  private readonly onTime: FinalSeries;
  private readonly late: FinalSeries;
  private readonly seen: EventIdSet;
  private readonly closedIds = new Map<number, EventIdSet>();
  private stagedRecords = 0;
  private stagedFiles = 0;
  private duplicates = 0;
  private duplicatesOfClosed = 0;
  private minTs = Infinity;
  private maxTs = -Infinity;
  private readonly horizonMs: number;
  private sharded = false;

  /**
   * `reference`: its marked ids are those stored in closed windows within the dedup horizon before
   * `w`. `shard`: a shard job's writer (forShard), its files named for the shard.
   */
  constructor(
    private readonly ctx: FinalizeContext,
    private readonly w: IntervalWindow,
    readonly target: SchemaVersion,
    private readonly format: FinalizeFormat,
    private readonly reference: EventIdSet | undefined,
    shard?: number,
    seen?: EventIdSet,
  ) {
    this.onTime = new FinalSeries(ctx, w, false, target, format, shard);
    this.late = new FinalSeries(ctx, w, true, target, format, shard);
    this.horizonMs = format.dedupHorizonMs ?? 0;
    this.seen = seen ?? new EventIdSet();
  }

  /**
   * A writer for shard job `shard` (shard-jobs.ts): its own series of files, its own counts, and
   * this writer's ids (the early segments') to check against, read only.
   */
  forShard(shard: number): WindowWriter {
    const writer = new WindowWriter(this.ctx, this.w, this.target, this.format, undefined, shard, this.seen);
    writer.sharded = true;
    return writer;
  }

  /** What a shard job wrote and counted (after endSegment). */
  shardResult(shard: number): ShardResult {
    return {
      shardResultVersion: 1,
      shard,
      onTime: this.onTime.files,
      late: this.late.files,
      stagedRecords: this.stagedRecords,
      duplicatesDropped: this.duplicates,
      duplicatesOfClosedWindows: this.duplicatesOfClosed,
    };
  }

  /** Adds the shard jobs' files and counts, in shard order, after this writer's own (the early segments'). */
  addShardResults(results: readonly ShardResult[], stagedFiles: number): void {
    this.sharded = true;
    this.stagedFiles += stagedFiles;
    for (const r of results) {
      this.onTime.files.push(...r.onTime);
      this.late.files.push(...r.late);
      this.stagedRecords += r.stagedRecords;
      this.duplicates += r.duplicatesDropped;
      this.duplicatesOfClosed += r.duplicatesOfClosedWindows;
      for (const f of [...r.onTime, ...r.late]) {
        this.minTs = Math.min(this.minTs, f.minGatewayTs);
        this.maxTs = Math.max(this.maxTs, f.maxGatewayTs);
      }
    }
  }

  /** A staged datum of a shard job: counted, then written by the rules of writeShardRecord. */
  countShardRecord(): void {
    this.stagedRecords++;
  }

  /** Streams `files` into the final series; the first copy of an event id wins. */
  async write(files: readonly PlanFile[]): Promise<void> {
    const { ctx, w, target, reference, horizonMs } = this;
    // on-time records this close to the start may be re-sends of records in the closed windows before
    const headEnd = reference ? w.start + horizonMs : -Infinity;
    // records from here on are the tail the next window's records are checked against
    const tailFrom = horizonMs > 0 ? w.end - horizonMs : Infinity;
    const reads = stagedReads(ctx, files);
    for (const file of files) {
      const pendingLate: { bytes: Buffer; ts: number; idStart: number; idEnd: number }[] = [];
      this.stagedFiles++;
      const scanned = await scanPlannedFile(
        ctx,
        w,
        file,
        target,
        ({ bytes, idStart, idEnd, gatewayTs }) => {
          const onTime = gatewayTs >= w.start;
          if (onTime && gatewayTs < headEnd && reference!.hasMarked(bytes, idStart, idEnd)) {
            this.duplicates++;
            this.duplicatesOfClosed++;
            return undefined;
          }
          if (!this.seen.addIfAbsent(bytes, idStart, idEnd, onTime && gatewayTs >= tailFrom)) {
            this.duplicates++;
            return undefined;
          }
          if (onTime) return this.record(this.onTime.add(bytes, gatewayTs), gatewayTs);
          // late: the closed-window check needs I/O, so collect the file's late records first
          pendingLate.push({ bytes: Buffer.from(bytes), ts: gatewayTs, idStart, idEnd });
          return undefined;
        },
        reads,
      );
      this.stagedRecords += scanned.records;
      for (const r of pendingLate) {
        const original = assignWindow(r.ts, ctx.windowMs);
        let ids = this.closedIds.get(original.start);
        if (!ids) {
          ids = await idsInClosedWindows(ctx, original, w, target, horizonMs);
          this.closedIds.set(original.start, ids);
        }
        if (ids.has(r.bytes, r.idStart, r.idEnd)) {
          this.duplicates++;
          this.duplicatesOfClosed++;
          continue;
        }
        if (r.ts >= tailFrom) this.seen.mark(r.bytes, r.idStart, r.idEnd); // a horizon longer than a window
        await this.record(this.late.add(r.bytes, r.ts), r.ts);
      }
    }
  }

  /**
   * The ids this window stored in its tail (only those are kept), or undefined without a horizon
   * or when written in shards (their ids are not kept: the next window reads its reference back).
   */
  tail(): ClosedTail | undefined {
    return this.horizonMs > 0 && !this.sharded
      ? { window: this.w, horizonMs: this.horizonMs, ids: this.seen.markedOnly() }
      : undefined;
  }

  /** A staged file read by a sharded finalize: its records are written shard by shard. */
  countStaged(records: number): void {
    this.stagedFiles++;
    this.stagedRecords += records;
    this.sharded = true;
  }

  /**
   * One spilled record of a shard (sharded-close.ts), by the rules of write(): a copy of the
   * shard's reference ids within the horizon of the start, of an early segment's or of an earlier
   * record of the shard, or (late) of the shard's ids of the closed windows is dropped.
   */
  writeShardRecord(r: SpilledRecord, ids: ShardIds): Promise<void> | undefined {
    const { source, idStart, idEnd, gatewayTs } = r;
    const onTime = gatewayTs >= this.w.start;
    if (
      onTime &&
      ids.reference &&
      gatewayTs < this.w.start + this.horizonMs &&
      ids.reference.has(source, idStart, idEnd)
    ) {
      this.duplicates++;
      this.duplicatesOfClosed++;
      return undefined;
    }
    if (this.seen.has(source, idStart, idEnd) || !ids.seen.addIfAbsent(source, idStart, idEnd)) {
      this.duplicates++;
      return undefined;
    }
    if (!onTime && ids.closed.get(assignWindow(gatewayTs, this.ctx.windowMs).start)?.has(source, idStart, idEnd)) {
      this.duplicates++;
      this.duplicatesOfClosed++;
      return undefined;
    }
    const bytes = source.subarray(r.start, r.end);
    return this.record((onTime ? this.onTime : this.late).add(bytes, gatewayTs), gatewayTs);
  }

  /** Completes the open final files: what follows starts new ones. */
  async endSegment(): Promise<void> {
    await this.onTime.complete();
    await this.late.complete();
  }

  private record(rolled: Promise<void> | undefined, ts: number): Promise<void> | undefined {
    if (ts < this.minTs) this.minTs = ts;
    if (ts > this.maxTs) this.maxTs = ts;
    return rolled;
  }

  manifest(plan: Plan): Manifest {
    const files = [...this.onTime.files, ...this.late.files];
    const onTimeCount = this.onTime.files.reduce((n, f) => n + f.records, 0);
    const lateCount = this.late.files.reduce((n, f) => n + f.records, 0);
    return {
      manifestVersion: 1,
      eventType: this.ctx.eventType,
      window: windowFields(this.w),
      partition: partitionPath(this.ctx.eventType, this.w),
      schema: { fingerprint: this.target.fingerprint, version: this.target.version },
      files,
      counts: {
        records: onTimeCount + lateCount,
        onTime: onTimeCount,
        late: lateCount,
        duplicatesDropped: this.duplicates,
        duplicatesOfClosedWindows: this.duplicatesOfClosed,
        stagedFiles: this.stagedFiles,
        stagedRecords: this.stagedRecords,
      },
      gatewayTs: { min: files.length ? this.minTs : null, max: files.length ? this.maxTs : null },
      closedBy: {
        watermark: plan.closedByWatermark,
        watermarkIso: new Date(plan.closedByWatermark).toISOString(),
        graceMs: plan.graceMs,
      },
      ...(plan.shardJobs && plan.shards ? { shards: plan.shards } : {}),
    };
  }
}

/**
 * Event ids already stored in closed windows (before `current`) with `gateway_ts` within the
 * dedup horizon of `original`: the files of the windows that can hold such records on time, then
 * the late files of every window closed since.
 */
async function idsInClosedWindows(
  ctx: FinalizeContext,
  original: IntervalWindow,
  current: IntervalWindow,
  target: SchemaVersion,
  horizonMs: number,
): Promise<EventIdSet> {
  const ids = new EventIdSet();
  await forEachClosedId(ctx, original, current, target, horizonMs, (source, start, end) => {
    ids.addIfAbsent(source, start, end);
    return undefined;
  });
  return ids;
}

/** Which final files of a closed window (by its manifest) a reader of closed ids needs: a shard job skips other jobs' files. */
export type FileFilter = (m: Manifest, path: string) => boolean;

/** Visits the ids idsInClosedWindows collects (a sharded finalize spills them to their shards; a shard job passes `keep`). */
export async function forEachClosedId(
  ctx: FinalizeContext,
  original: IntervalWindow,
  current: IntervalWindow,
  target: SchemaVersion,
  horizonMs: number,
  visit: IdVisitor,
  keep: FileFilter = () => true,
): Promise<void> {
  const lo = original.start - horizonMs;
  const hi = original.end + horizonMs;
  // a file gone since its manifest was read adds nothing here, as before
  const collect = (name: string): Promise<boolean> => visitIdsInRange(ctx, name, target, lo, hi, visit);
  let v = assignWindow(lo, ctx.windowMs);
  for (; v.start < hi && v.start < current.start; v = nextWindow(v)) {
    const mName = manifestName(ctx.eventType, v);
    const manifestData = await ctx.store.get(mName);
    if (!manifestData) continue;
    const m = parseManifest(manifestData, mName);
    for (const f of m.files) {
      if (f.maxGatewayTs >= lo && f.minGatewayTs < hi && keep(m, f.path)) await collect(f.path);
    }
  }
  const lateFrom = v.start;
  const typePrefix = `${ctx.eventType}/`;
  const DAY = 86_400_000;
  for (let day = Math.floor(lateFrom / DAY) * DAY; day < current.start; day += DAY) {
    const dayPrefix = `${typePrefix}dt=${new Date(day).toISOString().slice(0, 10)}/`;
    for (const o of await ctx.store.list(dayPrefix)) {
      const slash = o.name.lastIndexOf('/');
      if (!o.name.slice(slash + 1).startsWith('late-') || !o.name.endsWith('.avro')) continue;
      const late = parsePartition(o.name.slice(typePrefix.length, slash), ctx.windowMs);
      if (late && late.start >= lateFrom && late.start < current.start) await collect(o.name);
    }
  }
}

import { assignWindow, windowLabel, type IntervalWindow } from '@hourglass/bucket-format';
import type { ClosedTail, FinalizeContext } from './context.js';
import { EventIdSet } from './id-set.js';
import type { Plan } from './plan.js';
import { forEachReference, hasReference } from './resume-writer.js';
import { shardOf, type SpilledRecord } from './shard-spill.js';
import { type IdVisitor, type ShardIds, type WindowWriter, forEachClosedId, scanPlannedFile } from './window-writer.js';
import { stagedReads } from './read-ahead.js';

/**
 * The sharded finalize without a local spill (HOURGLASS_FINALIZE_SPILL=none), for hosts whose
 * filesystem is memory (Cloud Run): each shard reads the planned staged files again from the
 * store and keeps its own records. A shard's records come in plan order either way, so the
 * files are byte for byte those of sharded-close.ts and replicas in either mode agree. The price
 * is reading the staged bytes shards + 1 times (the first pass counts them and finds the windows
 * of late records) instead of once; memory is one shard's ids and one staged file, as there.
 */
export async function writeShardedRereading(
  ctx: FinalizeContext,
  w: IntervalWindow,
  plan: Plan,
  writer: WindowWriter,
  lastClosed: ClosedTail | undefined,
): Promise<void> {
  const shards = plan.shards ?? 1;
  const started = performance.now();
  const lateWindows = new Set<number>();
  let stagedBytes = await forEachStaged(ctx, w, plan, writer, true, (_datum, _idStart, _idEnd, gatewayTs) => {
    if (gatewayTs < w.start) lateWindows.add(assignWindow(gatewayTs, ctx.windowMs).start);
    return undefined;
  });
  for (let shard = 0; shard < shards; shard++) {
    const ids = await shardIds(ctx, w, plan, writer, lastClosed, lateWindows, shard);
    const r: SpilledRecord = { source: Buffer.alloc(0), start: 0, end: 0, idStart: 0, idEnd: 0, gatewayTs: 0 };
    stagedBytes += await forEachStaged(ctx, w, plan, writer, false, (datum, idStart, idEnd, gatewayTs) => {
      if (shardOf(datum, idStart, idEnd, shards) !== shard) return undefined;
      r.source = datum;
      r.end = datum.length;
      r.idStart = idStart;
      r.idEnd = idEnd;
      r.gatewayTs = gatewayTs;
      return writer.writeShardRecord(r, ids);
    });
  }
  ctx.logger.info(
    {
      window: windowLabel(w),
      shards,
      stagedBytesRead: stagedBytes,
      durationMs: Math.round(performance.now() - started),
    },
    'window finalized in shards, rereading staging',
  );
}

/** The closed windows' ids shard `shard`'s records are checked against. */
async function shardIds(
  ctx: FinalizeContext,
  w: IntervalWindow,
  plan: Plan,
  writer: WindowWriter,
  lastClosed: ClosedTail | undefined,
  lateWindows: ReadonlySet<number>,
  shard: number,
): Promise<ShardIds> {
  const shards = plan.shards ?? 1;
  const into =
    (set: EventIdSet): IdVisitor =>
    (source, start, end) => {
      if (shardOf(source, start, end, shards) === shard) set.addIfAbsent(source, start, end);
      return undefined;
    };
  const ids: ShardIds = { seen: new EventIdSet(), reference: undefined, closed: new Map() };
  if (hasReference(plan)) {
    ids.reference = new EventIdSet();
    await forEachReference(ctx, w, plan, writer.target, lastClosed, into(ids.reference));
  }
  const horizonMs = plan.format.dedupHorizonMs ?? 0;
  for (const start of [...lateWindows].sort((a, b) => a - b)) {
    const closed = new EventIdSet();
    ids.closed.set(start, closed);
    await forEachClosedId(ctx, assignWindow(start, ctx.windowMs), w, writer.target, horizonMs, into(closed));
  }
  return ids;
}

/** Every datum of the planned staged files, in plan order (counted into the writer's stats when `count`); returns the bytes read. */
async function forEachStaged(
  ctx: FinalizeContext,
  w: IntervalWindow,
  plan: Plan,
  writer: WindowWriter,
  count: boolean,
  visit: (datum: Buffer, idStart: number, idEnd: number, gatewayTs: number) => Promise<void> | undefined,
): Promise<number> {
  let bytes = 0;
  const reads = stagedReads(ctx, plan.files);
  for (const file of plan.files) {
    const scanned = await scanPlannedFile(
      ctx,
      w,
      file,
      writer.target,
      (d) => visit(d.bytes, d.idStart, d.idEnd, d.gatewayTs),
      reads,
    );
    bytes += scanned.bytes;
    if (count) writer.countStaged(scanned.records);
  }
  return bytes;
}

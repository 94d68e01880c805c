import { assignWindow, windowLabel, type IntervalWindow } from '@hourglass/bucket-format';
import type { ClosedTail, FinalizeContext } from './context.js';
import { EventIdSet } from './id-set.js';
import type { Plan } from './plan.js';
import { forEachReference, hasReference } from './resume-writer.js';
import { ShardSpill, SpilledId } from './shard-spill.js';
import { type ShardIds, type WindowWriter, forEachClosedId, scanPlannedFile } from './window-writer.js';
import { stagedReads } from './read-ahead.js';

/**
 * A window too large for one id set, written in `plan.shards` shards (commitPlan decides the
 * count from the staged bytes and the shard target, and records it, so every attempt agrees):
 *
 * 1. Each planned staged file is read once from the store, in plan order, and each datum is
 *    appended to the local spill file of its shard (shardOf its event id). The closed windows'
 *    ids the window is checked against — the dedup reference (on-time records within the horizon
 *    of the start) and, per original window of a late record, the ids stored for it — are spilled
 *    to the same shards, read once too.
 * 2. Shard by shard, in order: its ids are loaded, then its records stream into the window's
 *    part and late series (continuing after any early segment's files). The first copy of an id
 *    in plan order is the first in its shard, so the same records are kept as in one pass.
 *
 * Memory: one shard's ids and one staged file at a time, plus the early segments' ids (bounded:
 * finalizeEarly stops once a window's staged bytes pass the target). Output: a pure function of
 * the plan and the store, so a rerun or a takeover writes the same bytes.
 */
export async function writeSharded(
  ctx: FinalizeContext,
  w: IntervalWindow,
  plan: Plan,
  writer: WindowWriter,
  lastClosed: ClosedTail | undefined,
): Promise<void> {
  const shards = plan.shards ?? 1;
  const started = performance.now();
  const spill = await ShardSpill.create(shards, ctx.spillDir, ctx.pace);
  try {
    const stagedBytes = await spillStaged(ctx, w, plan, writer, spill, lastClosed);
    await spill.seal();
    const reference = hasReference(plan);
    for (let shard = 0; shard < shards; shard++) {
      const ids: ShardIds = {
        seen: new EventIdSet(),
        reference: reference ? new EventIdSet() : undefined,
        closed: new Map(),
      };
      await spill.forEachId(shard, (kind, windowStart, source, start, end) => {
        let set = ids.reference;
        if (kind === SpilledId.ClosedWindow) {
          set = ids.closed.get(windowStart);
          if (!set) ids.closed.set(windowStart, (set = new EventIdSet()));
        }
        set?.addIfAbsent(source, start, end);
      });
      await spill.forEachRecord(shard, (r) => writer.writeShardRecord(r, ids));
    }
    ctx.logger.info(
      {
        window: windowLabel(w),
        shards,
        stagedBytes,
        spilledBytes: spill.bytes,
        durationMs: Math.round(performance.now() - started),
      },
      'window finalized in shards',
    );
  } finally {
    await spill.remove();
  }
}

/** Step 1: the planned staged files and the closed windows' ids, each read once, into the shards; returns the staged bytes read. */
async function spillStaged(
  ctx: FinalizeContext,
  w: IntervalWindow,
  plan: Plan,
  writer: WindowWriter,
  spill: ShardSpill,
  lastClosed: ClosedTail | undefined,
): Promise<number> {
  const { target } = writer;
  if (hasReference(plan)) {
    await forEachReference(ctx, w, plan, target, lastClosed, (source, start, end) =>
      spill.addId(SpilledId.Reference, 0, source, start, end),
    );
  }
  const lateWindows = new Set<number>();
  let bytes = 0;
  const reads = stagedReads(ctx, plan.files);
  for (const file of plan.files) {
    const scanned = await scanPlannedFile(
      ctx,
      w,
      file,
      target,
      ({ bytes: datum, idStart, idEnd, gatewayTs }) => {
        if (gatewayTs < w.start) lateWindows.add(assignWindow(gatewayTs, ctx.windowMs).start);
        return spill.addRecord(datum, idStart, idEnd, gatewayTs);
      },
      reads,
    );
    bytes += scanned.bytes;
    writer.countStaged(scanned.records);
  }
  const horizonMs = plan.format.dedupHorizonMs ?? 0;
  for (const start of [...lateWindows].sort((a, b) => a - b)) {
    await forEachClosedId(ctx, assignWindow(start, ctx.windowMs), w, target, horizonMs, (source, from, to) =>
      spill.addId(SpilledId.ClosedWindow, start, source, from, to),
    );
  }
  return bytes;
}

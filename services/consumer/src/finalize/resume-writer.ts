import { HourglassError } from '@hourglass/common';
import type { SchemaVersion } from '@hourglass/schemas';
import { manifestName, parseManifest, type IntervalWindow, windowLabel } from '@hourglass/bucket-format';
import type { ClosedTail, EarlySegments, FinalizeContext } from './context.js';
import { EventIdSet } from './id-set.js';
import type { Plan, PlanFile } from './plan.js';
import { type FileFilter, type IdVisitor, WindowWriter, visitIdsInRange } from './window-writer.js';

/**
 * The window writer a finalize continues with: the target schema and dedup reference the first
 * plan fixed, and the early segments already written (kept by the closer, or rewritten byte for
 * byte by a replica that does not have them).
 */

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
  if (!hasReference(first)) return undefined;
  const cached = cachedReference(ctx, w, first, lastClosed);
  if (cached) return cached;
  const ids = new EventIdSet();
  await forEachReferenceId(ctx, w, first, target, (source, start, end) => {
    ids.addIfAbsent(source, start, end, true);
    return undefined;
  });
  return ids;
}

/** Whether the window's on-time records are checked against closed windows' (the first plan decides). */
export function hasReference(first: Plan): boolean {
  return (first.format.dedupHorizonMs ?? 0) > 0 && (first.dedupAgainst ?? []).length > 0;
}

/** `lastClosed`'s ids when they are exactly the reference the plan names (their marked ids). */
export function cachedReference(
  ctx: FinalizeContext,
  w: IntervalWindow,
  first: Plan,
  lastClosed: ClosedTail | undefined,
): EventIdSet | undefined {
  const names = first.dedupAgainst ?? [];
  return lastClosed &&
    lastClosed.window.end === w.start &&
    lastClosed.horizonMs === first.format.dedupHorizonMs &&
    names.length === 1 &&
    names[0] === manifestName(ctx.eventType, lastClosed.window)
    ? lastClosed.ids
    : undefined;
}

/**
 * Visits the reference's ids: the marked ids of `lastClosed` when they are exactly that reference,
 * else read back from the final files of the windows the plan names.
 */
export async function forEachReference(
  ctx: FinalizeContext,
  w: IntervalWindow,
  first: Plan,
  target: SchemaVersion,
  lastClosed: ClosedTail | undefined,
  visit: IdVisitor,
  keep?: FileFilter,
): Promise<void> {
  const cached = cachedReference(ctx, w, first, lastClosed);
  if (cached) await cached.forEachMarked(visit);
  else await forEachReferenceId(ctx, w, first, target, visit, keep);
}

/** Visits the reference's ids read back from the final files of the windows the plan names. */
export async function forEachReferenceId(
  ctx: FinalizeContext,
  w: IntervalWindow,
  first: Plan,
  target: SchemaVersion,
  visit: IdVisitor,
  keep: FileFilter = () => true,
): Promise<void> {
  const from = w.start - (first.format.dedupHorizonMs ?? 0);
  for (const name of first.dedupAgainst ?? []) {
    const data = await ctx.store.get(name);
    if (!data) throw new HourglassError('MANIFEST_MISMATCH', `${name} is in the plan of ${windowLabel(w)} but missing`);
    const m = parseManifest(data, name);
    for (const f of m.files) {
      if (f.maxGatewayTs < from || !keep(m, f.path)) continue;
      if (!(await visitIdsInRange(ctx, f.path, target, from, Infinity, visit))) {
        throw new HourglassError('MANIFEST_MISMATCH', `${f.path} is in ${name} but missing`);
      }
    }
  }
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

export function sameSegments(a: readonly (readonly PlanFile[])[], b: readonly (readonly PlanFile[])[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => x.length === b[i]!.length && x.every((f, j) => f.name === b[i]![j]!.name))
  );
}

/**
 * A writer that has written `segments` (rewriting their part files byte for byte if not `cached`);
 * `sharded`: the rest is written in shards, which need no reference in memory unless segments do.
 */
export async function writerThrough(
  ctx: FinalizeContext,
  w: IntervalWindow,
  first: Plan,
  segments: readonly (readonly PlanFile[])[],
  cached: EarlySegments | undefined,
  lastClosed: ClosedTail | undefined,
  sharded = false,
): Promise<WindowWriter> {
  if (cached && cached.window.start === w.start && sameSegments(cached.segments, segments)) return cached.writer;
  const target = targetSchema(ctx, first.schemaFingerprint);
  // a sharded window checks each shard against its share of the reference (sharded-close.ts)
  const reference =
    sharded && segments.length === 0 ? undefined : await dedupReference(ctx, w, first, target, lastClosed);
  const writer = new WindowWriter(ctx, w, target, first.format, reference);
  for (const files of segments) {
    await writer.write(files); // create-if-absent: existing part files must match byte for byte
    await writer.endSegment();
  }
  return writer;
}

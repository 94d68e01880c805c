import { HourglassError } from '@hourglass/common';
import type { SchemaVersion } from '@hourglass/schemas';
import { manifestName, parseManifest, type IntervalWindow, windowLabel } from '@hourglass/bucket-format';
import type { ClosedTail, EarlySegments, FinalizeContext } from './context.js';
import { EventIdSet } from './id-set.js';
import type { Plan, PlanFile } from './plan.js';
import { WindowWriter, addIdsInRange } from './window-writer.js';

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

/** A writer that has written `segments` (rewriting their part files byte for byte if not `cached`). */
export async function writerThrough(
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

import {
  type IntervalWindow,
  type Manifest,
  manifestName,
  partitionPath,
  parseReplicaLease,
  planName,
  replicaLeaseName,
  serializeManifest,
  stagedFileName,
  windowFields,
} from '@hourglass/bucket-format';
import { writeCursor, writeReplicaLease } from '@hourglass/consumer/coordination';
import type { ObjectStore } from '@hourglass/storage';

/** A store as the consumer leaves it, written with its own layout: for the status page's tests. */
export const MINUTE = 60_000;
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
export const NOW = T0 + 12 * MINUTE + 20_000; // grid: 12:01 .. 12:12
export const GRACE = 10_000;
export const win = (i: number): IntervalWindow => ({ start: T0 + i * MINUTE, end: T0 + (i + 1) * MINUTE });

export function manifestOf(eventType: string, w: IntervalWindow, records: number, late: number): Manifest {
  return {
    manifestVersion: 1,
    eventType,
    window: windowFields(w),
    partition: partitionPath(eventType, w),
    schema: { fingerprint: 'f'.repeat(64), version: 1 },
    files: [],
    counts: {
      records,
      onTime: records - late,
      late,
      duplicatesDropped: 0,
      duplicatesOfClosedWindows: 0,
      stagedFiles: 1,
      stagedRecords: records,
    },
    gatewayTs: { min: records > 0 ? w.start : null, max: records > 0 ? w.end - 1 : null },
    closedBy: { watermark: w.end + GRACE, watermarkIso: new Date(w.end + GRACE).toISOString(), graceMs: GRACE },
  };
}

/**
 * A type whose windows 12:00..12:08 closed (12:03 empty, 12:05 with late events), 12:09 planned.
 * Its replicas' leases gain the type (read, then rewritten): write types one after another.
 */
export async function writeType(store: ObjectStore, eventType: string, replicas: number, now = NOW): Promise<void> {
  for (let i = 0; i <= 8; i++) {
    await store.createIfAbsent(
      manifestName(eventType, win(i)),
      serializeManifest(manifestOf(eventType, win(i), i === 3 ? 0 : 10 + i, i === 5 ? 2 : 0)),
    );
  }
  await writeCursor(store, { eventType, lastClosed: win(8), watermark: win(8).end + GRACE, updatedAt: now });
  // 12:09 is being closed (its plan is committed); 12:10 closable by the watermark, nothing planned yet
  await store.createIfAbsent(planName(eventType, win(9)), Buffer.from('{}'));
  await store.createIfAbsent(stagedFileName(eventType, win(10), false, 'r0', 'inc', 1), Buffer.from('x'));
  for (let r = 0; r < replicas; r++) {
    // one replica lease serves every type written so far: add this one to it
    const existing = await store.get(replicaLeaseName(`r${r}`, 'inc'));
    const watermarks = (existing && parseReplicaLease(existing)?.watermarks) ?? {};
    await writeReplicaLease(store, {
      replicaId: `r${r}`,
      incarnation: 'inc',
      renewedAt: r === 0 ? now - 1_000 : now - 40_000, // r1 stopped renewing 40 s ago
      ttlMs: 30_000,
      ackDeadlineMs: 70_000,
      closes: true,
      watermarks: { ...watermarks, [eventType]: win(10).end + GRACE + 1 },
    });
  }
}

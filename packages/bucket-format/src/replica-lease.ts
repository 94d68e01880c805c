import type { Lease } from './lease.js';

/**
 * One replica's lease for every type it serves: `_watermarks/_replicas/<replicaId>.<incarnation>.json`.
 * One object per process start, renewed once per tick, so a fleet's lease writes grow with its
 * replicas, not with replicas × types, and reading every lease is one listing and one read per
 * replica. A type's view of it (`leaseOfType`) is the per-type `Lease` that the watermark rule
 * (lease.ts) works on: same replica, renewal and ttl, that type's watermark.
 */
export interface ReplicaLeaseRecord {
  replicaId: string;
  incarnation: string;
  renewedAt: number;
  /** Live until renewedAt + ttlMs. */
  ttlMs: number;
  /** After the lease stops, messages the replica held come back to others within this (ack deadline + redelivery allowance). */
  ackDeadlineMs: number;
  /** false: this replica never closes windows (HOURGLASS_CLOSER=false), so closerOf passes it by. */
  closes: boolean;
  /** Per served type, its watermark; -Infinity (JSON null) while the replica knows nothing yet. */
  watermarks: Record<string, number>;
}

/** The per-type lease this record holds for `eventType`, or undefined when the replica does not serve it. */
export function leaseOfType(record: ReplicaLeaseRecord, eventType: string): Lease | undefined {
  if (!Object.hasOwn(record.watermarks, eventType)) return undefined;
  return {
    replicaId: record.replicaId,
    incarnation: record.incarnation,
    eventType,
    watermark: record.watermarks[eventType]!,
    renewedAt: record.renewedAt,
    ttlMs: record.ttlMs,
    ackDeadlineMs: record.ackDeadlineMs,
    closes: record.closes,
  };
}

/** JSON has no -Infinity: a type whose watermark is unknown is written as null. Types in name order (stable bytes). */
export function serializeReplicaLease(record: ReplicaLeaseRecord): Buffer {
  const watermarks: Record<string, number | null> = {};
  for (const type of Object.keys(record.watermarks).sort()) {
    const wm = record.watermarks[type]!;
    watermarks[type] = Number.isFinite(wm) ? wm : null;
  }
  return Buffer.from(`${JSON.stringify({ ...record, watermarks })}\n`);
}

/** A replica lease, or undefined for a torn or foreign object (one that is not a lease counts for nothing). */
export function parseReplicaLease(data: Buffer): ReplicaLeaseRecord | undefined {
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<Omit<ReplicaLeaseRecord, 'watermarks'>> & {
      watermarks?: unknown;
    };
    if (
      typeof v.replicaId !== 'string' ||
      typeof v.incarnation !== 'string' ||
      typeof v.renewedAt !== 'number' ||
      typeof v.ttlMs !== 'number' ||
      typeof v.ackDeadlineMs !== 'number' ||
      (v.closes !== undefined && typeof v.closes !== 'boolean') ||
      typeof v.watermarks !== 'object' ||
      v.watermarks === null ||
      Array.isArray(v.watermarks)
    ) {
      return undefined;
    }
    const watermarks: Record<string, number> = {};
    for (const [type, wm] of Object.entries(v.watermarks as Record<string, unknown>)) {
      if (wm === null) watermarks[type] = -Infinity;
      else if (typeof wm === 'number') watermarks[type] = wm;
      else return undefined;
    }
    return {
      replicaId: v.replicaId,
      incarnation: v.incarnation,
      renewedAt: v.renewedAt,
      ttlMs: v.ttlMs,
      ackDeadlineMs: v.ackDeadlineMs,
      closes: v.closes ?? true,
      watermarks,
    };
  } catch {
    return undefined;
  }
}

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
  /**
   * Types this replica stopped serving (type assignment moved them): when, and the type's last
   * watermark. Each is the lease of a replica that stopped at that time (ttl 0): stale while the
   * messages it nacked come back to the type's other replicas, then expired and dropped. A type
   * served again meanwhile has both entries. Absent in most leases; older readers ignore it.
   */
  retired?: Record<string, RetiredType>;
}

export interface RetiredType {
  at: number;
  /** -Infinity (JSON null) when it knew nothing. */
  watermark: number;
}

/** The lease this record holds for `eventType` while serving it, else its retired entry's, else undefined. */
export function leaseOfType(record: ReplicaLeaseRecord, eventType: string): Lease | undefined {
  return servingLeaseOf(record, eventType) ?? retiredLeaseOf(record, eventType);
}

/** Every lease this record holds for `eventType`: serving, retired, both (served again within the bound) or none. */
export function leasesOfType(record: ReplicaLeaseRecord, eventType: string): Lease[] {
  const out: Lease[] = [];
  const serving = servingLeaseOf(record, eventType);
  if (serving) out.push(serving);
  const retired = retiredLeaseOf(record, eventType);
  if (retired) out.push(retired);
  return out;
}

function servingLeaseOf(record: ReplicaLeaseRecord, eventType: string): Lease | undefined {
  if (!Object.hasOwn(record.watermarks, eventType)) return undefined;
  const { renewedAt, ttlMs, closes } = record;
  return viewOf(record, eventType, { watermark: record.watermarks[eventType]!, renewedAt, ttlMs, closes });
}

/** A retired type, as the last lease (ttl 0) of a replica that stopped when it retired it; it never closes. */
function retiredLeaseOf(record: ReplicaLeaseRecord, eventType: string): Lease | undefined {
  const retired = record.retired && Object.hasOwn(record.retired, eventType) ? record.retired[eventType] : undefined;
  if (!retired) return undefined;
  const renewedAt = Math.min(retired.at, record.renewedAt);
  return viewOf(record, eventType, { watermark: retired.watermark, renewedAt, ttlMs: 0, closes: false });
}

function viewOf(
  record: ReplicaLeaseRecord,
  eventType: string,
  term: Pick<Lease, 'watermark' | 'renewedAt' | 'ttlMs' | 'closes'>,
): Lease {
  const { replicaId, incarnation, ackDeadlineMs } = record;
  return { replicaId, incarnation, eventType, ...term, ackDeadlineMs };
}

/** JSON has no -Infinity: a type whose watermark is unknown is written as null. Types in name order (stable bytes). */
export function serializeReplicaLease(record: ReplicaLeaseRecord): Buffer {
  const watermarks: Record<string, number | null> = {};
  for (const type of Object.keys(record.watermarks).sort()) {
    const wm = record.watermarks[type]!;
    watermarks[type] = Number.isFinite(wm) ? wm : null;
  }
  const { retired, ...rest } = record;
  const retiredTypes = Object.keys(retired ?? {}).sort();
  const retiredOut =
    retiredTypes.length === 0
      ? {}
      : {
          retired: Object.fromEntries(
            retiredTypes.map((t) => {
              const r = retired![t]!;
              return [t, { at: r.at, watermark: Number.isFinite(r.watermark) ? r.watermark : null }];
            }),
          ),
        };
  return Buffer.from(`${JSON.stringify({ ...rest, watermarks, ...retiredOut })}\n`);
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
      Array.isArray(v.watermarks) ||
      !isRetiredMap(v.retired)
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
      ...retiredOf(v.retired),
    };
  } catch {
    return undefined;
  }
}

/** Absent, or per type `{at: number, watermark: number | null}`. */
function isRetiredMap(v: unknown): boolean {
  if (v === undefined) return true;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  return Object.values(v).every((r: unknown) => {
    if (typeof r !== 'object' || r === null) return false;
    const { at, watermark } = r as { at?: unknown; watermark?: unknown };
    return typeof at === 'number' && (watermark === null || typeof watermark === 'number');
  });
}

function retiredOf(v: unknown): Pick<ReplicaLeaseRecord, 'retired'> {
  const entries = Object.entries((v ?? {}) as Record<string, { at: number; watermark: number | null }>);
  if (entries.length === 0) return {};
  return {
    retired: Object.fromEntries(entries.map(([t, r]) => [t, { at: r.at, watermark: r.watermark ?? -Infinity }])),
  };
}

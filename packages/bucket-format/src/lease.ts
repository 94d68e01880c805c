import { createHash } from 'node:crypto';

/**
 * A replica's published watermark for one type: the type's view of its replica lease
 * (replica-lease.ts), or a per-type lease `_watermarks/<type>/<replicaId>.<incarnation>.json` as
 * versions before replica leases wrote. One process start writes one lease: two processes given
 * the same `HOURGLASS_REPLICA_ID` (or a restart under it) write two, each running its own
 * live → stale → expired course.
 */
export interface Lease {
  replicaId: string;
  /** Random per process start; empty in leases written before incarnations were keyed. */
  incarnation: string;
  eventType: string;
  watermark: number;
  renewedAt: number;
  /** The lease is live until renewedAt + ttlMs. */
  ttlMs: number;
  /** After the lease stops, messages the replica held come back to others within this (ack deadline + redelivery allowance). */
  ackDeadlineMs: number;
  /** false: the replica never closes windows (HOURGLASS_CLOSER=false); absent in older leases: it may. */
  closes?: boolean;
}

export type LeaseState = 'live' | 'stale' | 'expired';

/** What a lease's state depends on (a per-type lease and a replica lease alike). */
export type LeaseTerm = Pick<Lease, 'renewedAt' | 'ttlMs' | 'ackDeadlineMs'>;

/**
 * live: renewed within its ttl. stale: not renewed, but messages its replica held may not
 * have come back yet (their ack deadline has not passed): it still counts. expired: ignored.
 */
export function leaseState(lease: LeaseTerm, now: number): LeaseState {
  if (lease.renewedAt + lease.ttlMs > now) return 'live';
  if (lease.renewedAt + lease.ttlMs + lease.ackDeadlineMs > now) return 'stale';
  return 'expired';
}

/**
 * Global watermark of one event type: the minimum over the leases that count (live or
 * stale), never below `previous`. Undefined when no lease counts (nobody knows anything).
 */
export function globalWatermark(leases: readonly Lease[], now: number, previous?: number): number | undefined {
  let min: number | undefined;
  for (const lease of leases) {
    if (leaseState(lease, now) === 'expired') continue;
    if (min === undefined || lease.watermark < min) min = lease.watermark;
  }
  if (min === undefined) return previous;
  return previous !== undefined && previous > min ? previous : min;
}

/** Who wrote a lease: replica id and incarnation, so one id started twice is two writers. */
export function leaseIdentity(lease: Pick<Lease, 'replicaId' | 'incarnation'>): string {
  return lease.incarnation ? `${lease.replicaId}.${lease.incarnation}` : lease.replicaId;
}

/**
 * The lease that closes windows of `eventType` (any replica may; one saves work): among live
 * leases of replicas that close, the one whose identity weighs most for the type (rendezvous
 * hashing). Types spread evenly over the replicas, so their closes run in parallel; a replica
 * that joins or leaves moves only its share of types. Ties (one identity twice) go to the smaller.
 */
export function closerOf(
  leases: readonly (LeaseTerm & Pick<Lease, 'replicaId' | 'incarnation' | 'closes'>)[],
  now: number,
  eventType: string,
): string | undefined {
  let leader: string | undefined;
  let leaderWeight = -1;
  for (const lease of leases) {
    if (lease.closes === false || leaseState(lease, now) !== 'live') continue;
    const identity = leaseIdentity(lease);
    const weight = rendezvousWeight(eventType, identity);
    if (weight > leaderWeight || (weight === leaderWeight && identity < leader!)) {
      leader = identity;
      leaderWeight = weight;
    }
  }
  return leader;
}

/** 48 bits of sha256(type, identity): stable across versions and processes, as every replica must agree. */
export function rendezvousWeight(eventType: string, identity: string): number {
  return createHash('sha256').update(`${eventType}\n${identity}`).digest().readUIntBE(0, 6);
}

/** JSON has no -Infinity: a replica that knows nothing yet publishes `watermark: null`. */
export function serializeLease(lease: Lease): Buffer {
  const watermark = Number.isFinite(lease.watermark) ? lease.watermark : null;
  return Buffer.from(`${JSON.stringify({ ...lease, watermark })}\n`);
}

export function parseLease(data: Buffer): Lease | undefined {
  try {
    const v = JSON.parse(data.toString('utf8')) as Omit<Partial<Lease>, 'watermark'> & { watermark?: number | null };
    if (v.watermark === null) v.watermark = -Infinity;
    if (v.incarnation === undefined) v.incarnation = '';
    if (
      typeof v.incarnation === 'string' &&
      typeof v.replicaId === 'string' &&
      typeof v.eventType === 'string' &&
      typeof v.watermark === 'number' &&
      typeof v.renewedAt === 'number' &&
      typeof v.ttlMs === 'number' &&
      typeof v.ackDeadlineMs === 'number'
    ) {
      return v as Lease;
    }
  } catch {
    /* a torn or foreign object is not a lease */
  }
  return undefined;
}

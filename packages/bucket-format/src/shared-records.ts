import { type ClosedCursor, parseCursor } from './cursor.js';
import { REPLICA_LEASE_PREFIX, WATERMARKS, cursorName } from './layout.js';
import { type Lease, parseLease } from './lease.js';
import { type ReplicaLeaseRecord, leasesOfType, parseReplicaLease } from './replica-lease.js';

/**
 * Reading the records replicas share through the bucket (leases and the closed cursor), for the
 * consumer and for any reader outside it (`hourglass status`). Writing them is the consumer's.
 * `BucketReader` is the part of an object store a reader needs (any ObjectStore fits).
 */
export interface BucketReader {
  list(prefix: string): Promise<readonly { name: string }[]>;
  get(name: string): Promise<Buffer | undefined>;
}

/**
 * Every lease in the bucket, as one read of `_watermarks/` found them: the replica leases, and
 * per-type leases that versions before replica leases wrote (a fleet in a rolling upgrade).
 */
export class LeaseBoard {
  constructor(
    readonly replicas: readonly ReplicaLeaseRecord[],
    /** Per-type leases of older versions, by type. */
    readonly legacy: ReadonlyMap<string, readonly Lease[]>,
  ) {}

  static readonly empty = new LeaseBoard([], new Map());

  /** Every lease that speaks for `eventType`: each replica lease that serves it (or retired it), then the type's older per-type leases. */
  ofType(eventType: string): Lease[] {
    const out: Lease[] = [];
    for (const record of this.replicas) out.push(...leasesOfType(record, eventType));
    out.push(...(this.legacy.get(eventType) ?? []));
    return out;
  }
}

/**
 * One listing of `_watermarks/` and a read of each lease in it (the cursors are listed, not
 * read): what every replica does once per tick, however many types it serves.
 */
export async function readLeaseBoard(store: BucketReader): Promise<LeaseBoard> {
  const replicas: ReplicaLeaseRecord[] = [];
  const legacy = new Map<string, Lease[]>();
  for (const { name } of await store.list(`${WATERMARKS}/`)) {
    if (name.startsWith(REPLICA_LEASE_PREFIX)) {
      const data = await store.get(name);
      const record = data && parseReplicaLease(data);
      if (record) replicas.push(record);
      continue;
    }
    const m = /^_watermarks\/([^/_][^/]*)\/([^/_][^/]*)$/.exec(name);
    if (!m) continue; // a cursor (`_closed.json`) or a foreign object
    const data = await store.get(name);
    const lease = data && parseLease(data);
    if (lease && lease.eventType === m[1]) legacy.set(lease.eventType, [...(legacy.get(lease.eventType) ?? []), lease]);
  }
  return new LeaseBoard(replicas, legacy);
}

/** Every readable lease of `eventType`, replica leases and older per-type ones (torn or foreign objects are skipped). */
export async function readLeases(store: BucketReader, eventType: string): Promise<Lease[]> {
  return (await readLeaseBoard(store)).ofType(eventType);
}

export async function readCursor(store: BucketReader, eventType: string): Promise<ClosedCursor | undefined> {
  const data = await store.get(cursorName(eventType));
  return data ? parseCursor(data, eventType) : undefined;
}

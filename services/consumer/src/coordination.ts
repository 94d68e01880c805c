import type { ObjectStore } from '@hourglass/storage';
import {
  type ClosedCursor,
  type Lease,
  cursorName,
  leaseName,
  leaseState,
  serializeCursor,
  serializeLease,
} from '@hourglass/bucket-format';

/**
 * What replicas share through the store: their leases and, per type, the cursor of the last
 * closed window. Both are plain objects written with put (last writer wins): a lease has one
 * writer, and a cursor that goes back by a race only makes a closer re-check manifests that
 * exist (finalize stops at an existing _SUCCESS). Their records, and reading them, are
 * @hourglass/bucket-format's (lease.ts, cursor.ts, shared-records.ts).
 */
export async function writeLease(store: ObjectStore, lease: Lease): Promise<void> {
  await store.put(leaseName(lease.eventType, lease.replicaId, lease.incarnation), serializeLease(lease));
}

/** Deletes leases that stopped counting long ago (expired for at least one more ttl). */
export async function deleteExpiredLeases(store: ObjectStore, leases: readonly Lease[], now: number): Promise<number> {
  let deleted = 0;
  for (const lease of leases) {
    if (leaseState(lease, now - lease.ttlMs) === 'expired') {
      await store.delete(leaseName(lease.eventType, lease.replicaId, lease.incarnation));
      deleted++;
    }
  }
  return deleted;
}

export async function writeCursor(store: ObjectStore, cursor: ClosedCursor): Promise<void> {
  await store.put(cursorName(cursor.eventType), serializeCursor(cursor));
}

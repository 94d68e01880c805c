import type { ObjectStore } from '@hourglass/storage';
import {
  type ClosedCursor,
  type ReplicaLeaseRecord,
  cursorName,
  replicaLeaseName,
  serializeCursor,
  serializeReplicaLease,
} from '@hourglass/bucket-format';

/**
 * What replicas share through the store: their leases and, per type, the cursor of the last
 * closed window. Both are plain objects written with put (last writer wins): a lease has one
 * writer, and a cursor that goes back by a race only makes a closer re-check manifests that
 * exist (finalize stops at an existing _SUCCESS). Their records, and reading them, are
 * @hourglass/bucket-format's (replica-lease.ts, lease.ts, cursor.ts, shared-records.ts).
 */
export async function writeReplicaLease(store: ObjectStore, record: ReplicaLeaseRecord): Promise<void> {
  await store.put(replicaLeaseName(record.replicaId, record.incarnation), serializeReplicaLease(record));
}

export async function writeCursor(store: ObjectStore, cursor: ClosedCursor): Promise<void> {
  await store.put(cursorName(cursor.eventType), serializeCursor(cursor));
}

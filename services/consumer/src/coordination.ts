import type { ObjectStore } from '@hourglass/storage';
import { cursorName, leaseName, leasePrefix } from './layout.js';
import { type Lease, leaseState, parseLease, serializeLease } from './watermark.js';
import type { IntervalWindow } from './windows.js';

/**
 * What replicas share through the store: their leases and, per type, the cursor of the last
 * closed window. Both are plain objects written with put (last writer wins): a lease has one
 * writer, and a cursor that goes back by a race only makes a closer re-check manifests that
 * exist (finalize stops at an existing _SUCCESS).
 */
export async function writeLease(store: ObjectStore, lease: Lease): Promise<void> {
  await store.put(leaseName(lease.eventType, lease.replicaId, lease.incarnation), serializeLease(lease));
}

export async function readLeases(store: ObjectStore, eventType: string): Promise<Lease[]> {
  const prefix = leasePrefix(eventType);
  const names = (await store.list(prefix)).map((o) => o.name).filter((n) => !n.slice(prefix.length).startsWith('_'));
  const leases: Lease[] = [];
  for (const name of names) {
    const data = await store.get(name);
    const lease = data && parseLease(data);
    if (lease && lease.eventType === eventType) leases.push(lease);
  }
  return leases;
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

export interface ClosedCursor {
  eventType: string;
  /** The last window closed in order; every earlier window since the type's first has a manifest. */
  lastClosed: IntervalWindow;
  /** The global watermark that closed it; replicas start no lower. */
  watermark: number;
  updatedAt: number;
}

export async function readCursor(store: ObjectStore, eventType: string): Promise<ClosedCursor | undefined> {
  const data = await store.get(cursorName(eventType));
  if (!data) return undefined;
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<ClosedCursor>;
    if (
      v.eventType === eventType &&
      typeof v.watermark === 'number' &&
      typeof v.lastClosed?.start === 'number' &&
      typeof v.lastClosed.end === 'number'
    ) {
      return v as ClosedCursor;
    }
  } catch {
    /* unreadable cursor: closers rebuild it from the staged windows */
  }
  return undefined;
}

export async function writeCursor(store: ObjectStore, cursor: ClosedCursor): Promise<void> {
  await store.put(cursorName(cursor.eventType), Buffer.from(`${JSON.stringify(cursor)}\n`));
}

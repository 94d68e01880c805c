import { type ClosedCursor, parseCursor } from './cursor.js';
import { cursorName, leasePrefix } from './layout.js';
import { type Lease, parseLease } from './lease.js';

/**
 * Reading the records replicas share through the bucket (leases and the closed cursor), for the
 * consumer and for any reader outside it (`hourglass status`). Writing them is the consumer's.
 * `BucketReader` is the part of an object store a reader needs (any ObjectStore fits).
 */
export interface BucketReader {
  list(prefix: string): Promise<readonly { name: string }[]>;
  get(name: string): Promise<Buffer | undefined>;
}

/** Every readable lease of `eventType` (torn or foreign objects are skipped). */
export async function readLeases(store: BucketReader, eventType: string): Promise<Lease[]> {
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

export async function readCursor(store: BucketReader, eventType: string): Promise<ClosedCursor | undefined> {
  const data = await store.get(cursorName(eventType));
  return data ? parseCursor(data, eventType) : undefined;
}

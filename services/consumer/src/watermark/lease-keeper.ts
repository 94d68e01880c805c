import { type Lease, type LeaseState, leaseState } from '@hourglass/bucket-format';
import type { ReplicaLeaseKeeper } from './replica-lease.js';

/**
 * One type's view of this process's replica lease (replica-lease.ts): its own lease for the
 * type, the other replicas' leases of the type as last read, and the self-fencing check the
 * type's stager calls before each staged file.
 */
export class LeaseKeeper {
  constructor(
    private readonly eventType: string,
    private readonly replica: ReplicaLeaseKeeper,
  ) {}

  /** Replica id and incarnation: what tells this process's lease from every other's. */
  get identity(): string {
    return this.replica.identity;
  }

  /** Other replicas' leases of this type as last read (every tick). */
  get others(): Lease[] {
    return this.replica.othersOf(this.eventType);
  }

  /** The lease this replica last wrote, as this type sees it. */
  get own(): Lease | undefined {
    return this.replica.ownOf(this.eventType);
  }

  /** Self-fencing: resolves once the replica's lease is live; rejects with LEASE_EXPIRED if it cannot be. */
  ensure(): Promise<void> {
    return this.replica.ensure(this.eventType);
  }

  stateNow(): LeaseState | undefined {
    return this.replica.stateNow();
  }

  /** The lowest watermark among other replicas' stale leases of this type (replicas that stopped renewing), or Infinity. */
  staleCeiling(now: number): number {
    let ceiling = Infinity;
    for (const lease of this.others) {
      if (leaseState(lease, now) === 'stale' && lease.watermark < ceiling) ceiling = lease.watermark;
    }
    return ceiling;
  }
}

import { setTimeout as delay } from 'node:timers/promises';
import { type Clock, HourglassError } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import { readLeases, type Lease, type LeaseState, leaseIdentity, leaseState } from '@hourglass/bucket-format';
import type { TypeScope, WatermarkConfig } from '../config.js';
import { writeLease } from '../coordination.js';

export interface LeaseKeeperDeps {
  store: ObjectStore;
  clock: Clock;
  /** This replica's watermark now: what each lease written publishes. */
  watermark: () => number;
}

/**
 * This replica's lease for one type (`_watermarks/<type>/<replicaId>.<incarnation>.json`) and the
 * other replicas' leases as last read. The lease is renewed every tick, no sooner than the
 * store's rewrite interval after the last write (GCS: one write per second per object name).
 */
export class LeaseKeeper {
  /** Replica id and incarnation: what tells this process's lease from every other's. */
  readonly identity: string;
  /** Other replicas' leases as last read (every tick). */
  others: Lease[] = [];
  private published: Lease | undefined;
  private renewing: Promise<void> | undefined;

  constructor(
    private readonly scope: TypeScope,
    private readonly config: WatermarkConfig,
    private readonly deps: LeaseKeeperDeps,
  ) {
    this.identity = leaseIdentity(scope);
  }

  /** The lease this replica last wrote. */
  get own(): Lease | undefined {
    return this.published;
  }

  async readOthers(): Promise<void> {
    const own = this.identity;
    this.others = (await readLeases(this.deps.store, this.scope.eventType)).filter((l) => leaseIdentity(l) !== own);
  }

  /** Renews unless the last write was within the store's rewrite interval. */
  renewIfDue(): Promise<void> | undefined {
    const last = this.published?.renewedAt;
    if (last !== undefined && this.deps.clock.now() - last < rewriteIntervalMs(this.deps.store)) return undefined;
    return this.renew();
  }

  renew(): Promise<void> {
    if (!this.renewing) {
      const lease = this.lease(this.config.leaseTtlMs);
      this.renewing = writeLease(this.deps.store, lease)
        .then(() => {
          this.published = lease;
        })
        .finally(() => {
          this.renewing = undefined;
        });
    }
    return this.renewing;
  }

  /**
   * Self-fencing: a staged file is written only while this replica's lease is live, so no
   * closer can have stopped counting this replica (that takes ttl + ack deadline).
   */
  async ensure(): Promise<void> {
    if (this.fresh()) return;
    await this.renew();
    if (!this.fresh()) {
      throw new HourglassError('LEASE_EXPIRED', `lease of ${this.scope.replicaId} for ${this.scope.eventType}`);
    }
  }

  /** Resolves once the store allows this lease to be written again (a throttled write would be lost). */
  async untilRewritable(): Promise<void> {
    const sinceLease = this.deps.clock.now() - (this.published?.renewedAt ?? -Infinity);
    const interval = rewriteIntervalMs(this.deps.store);
    if (sinceLease < interval) await delay(interval - sinceLease);
  }

  /**
   * The last lease, ttl 0: the replica is gone; it still counts for the redelivery bound, while
   * the messages nacked during the drain find another replica.
   */
  async writeLast(): Promise<void> {
    const lease = this.lease(0);
    await writeLease(this.deps.store, lease);
    this.published = lease;
  }

  stateNow(): LeaseState | undefined {
    return this.published ? leaseState(this.published, this.deps.clock.now()) : undefined;
  }

  /** The lowest watermark among other replicas' stale leases (replicas that stopped renewing), or Infinity. */
  staleCeiling(now: number): number {
    let ceiling = Infinity;
    for (const lease of this.others) {
      if (leaseState(lease, now) === 'stale' && lease.watermark < ceiling) ceiling = lease.watermark;
    }
    return ceiling;
  }

  private fresh(): boolean {
    return this.published !== undefined && this.deps.clock.now() < this.published.renewedAt + this.published.ttlMs;
  }

  private lease(ttlMs: number): Lease {
    return {
      replicaId: this.scope.replicaId,
      incarnation: this.scope.incarnation,
      eventType: this.scope.eventType,
      watermark: this.deps.watermark(),
      renewedAt: this.deps.clock.now(),
      ttlMs,
      ackDeadlineMs: this.config.redeliveryBoundMs,
    };
  }
}

/** How soon an object may be rewritten in this store (GCS: once a second per name). */
export function rewriteIntervalMs(store: ObjectStore): number {
  return store.rewriteIntervalMs ?? 0;
}

import { setTimeout as delay } from 'node:timers/promises';
import { type Clock, HourglassError } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import {
  type Lease,
  LeaseBoard,
  type LeaseState,
  type LeaseTerm,
  type ReplicaLeaseRecord,
  type RetiredType,
  closerOf,
  leaseIdentity,
  leaseName,
  leaseOfType,
  leaseState,
  readLeaseBoard,
  replicaLeaseName,
} from '@hourglass/bucket-format';
import type { WatermarkConfig } from '../config.js';
import { writeReplicaLease } from '../coordination.js';

export interface ReplicaLeaseDeps {
  store: ObjectStore;
  clock: Clock;
}

/**
 * This process's lease (`_watermarks/_replicas/<replicaId>.<incarnation>.json`), one object for
 * every type it serves, and every other lease as last read. Per tick the process reads all
 * leases once (one listing) and renews its own once, no sooner than the store's rewrite interval
 * after the last write (GCS: one write per second per object name): a replica's store
 * operations per tick do not grow with its types. Each type sees it through a LeaseKeeper.
 */
export class ReplicaLeaseKeeper {
  /** Replica id and incarnation: what tells this process's lease from every other's. */
  readonly identity: string;
  private readonly served = new Map<string, () => number>();
  /** Types this process stopped serving: their last watermark and when (see ReplicaLeaseRecord.retired). */
  private readonly retired = new Map<string, RetiredType>();
  private board = LeaseBoard.empty;
  private published: ReplicaLeaseRecord | undefined;
  private renewing: Promise<void> | undefined;
  private reading: Promise<void> | undefined;

  constructor(
    /** closes: false for a replica that never closes windows (HOURGLASS_CLOSER=false). */
    private readonly who: { replicaId: string; incarnation: string; closes: boolean },
    private readonly config: Pick<WatermarkConfig, 'leaseTtlMs' | 'redeliveryBoundMs'>,
    private readonly deps: ReplicaLeaseDeps,
  ) {
    this.identity = leaseIdentity(who);
  }

  /** A type this process serves, and its watermark now: what each lease written publishes for it. */
  serve(eventType: string, watermark: () => number): void {
    this.served.set(eventType, watermark);
  }

  /**
   * This process stopped serving `eventType` (its subscription drained and closed). If it left
   * messages to come back unstaged (`leftMessages`: nacked, or leased to a cancelled long poll),
   * from the next write on its lease holds the type as a stopped replica's would, stale with its
   * last watermark for the redelivery bound, so the type's other replicas keep its windows open for
   * them, then drops it (even if it serves the type again meanwhile). Else the type leaves the lease.
   */
  retire(eventType: string, leftMessages: boolean): void {
    const watermark = this.served.get(eventType);
    if (!watermark) return;
    this.served.delete(eventType);
    // Everything it received was staged and acked: no message of it comes back, nothing to hold for.
    if (!leftMessages) return;
    // Retired twice within the bound: the earlier nacks may still be coming back, so the lower watermark holds.
    const earlier = this.retired.get(eventType)?.watermark ?? Infinity;
    this.retired.set(eventType, { watermark: Math.min(earlier, watermark()), at: this.deps.clock.now() });
  }

  /** A type whose runtime never opened its subscription (its start failed): nothing was pulled, nothing to hold for. */
  forget(eventType: string): void {
    this.served.delete(eventType);
  }

  /** Identities of the replicas whose leases were live at the last read, this process included. */
  liveIdentities(): string[] {
    const now = this.deps.clock.now();
    const live = this.board.replicas.filter((r) => leaseState(r, now) === 'live').map(leaseIdentity);
    return live.includes(this.identity) ? live : [...live, this.identity];
  }

  /**
   * Reads every lease (one listing of `_watermarks/`); callers at the same time share one read.
   * The fleet's first live replica then deletes leases expired for at least one more ttl.
   */
  refresh(): Promise<void> {
    if (!this.reading) {
      this.reading = readLeaseBoard(this.deps.store)
        .then((board) => {
          this.board = board;
          return this.deleteExpiredIfFirst(board);
        })
        .finally(() => {
          this.reading = undefined;
        });
    }
    return this.reading;
  }

  /** Other processes' leases of `eventType` as last read. */
  othersOf(eventType: string): Lease[] {
    return this.board.ofType(eventType).filter((l) => leaseIdentity(l) !== this.identity);
  }

  /** The lease this process last wrote, as `eventType` sees it. */
  ownOf(eventType: string): Lease | undefined {
    return this.published && leaseOfType(this.published, eventType);
  }

  /** Renews unless the last write was within the store's rewrite interval. */
  renewIfDue(): Promise<void> | undefined {
    const last = this.published?.renewedAt;
    if (last !== undefined && this.deps.clock.now() - last < rewriteIntervalMs(this.deps.store)) return undefined;
    return this.renew();
  }

  /** Writes the lease now; a write already running is shared (its watermarks are at most a moment old). */
  renew(): Promise<void> {
    if (!this.renewing) {
      const record = this.record(this.config.leaseTtlMs);
      this.renewing = this.write(record).finally(() => {
        this.renewing = undefined;
      });
    }
    return this.renewing;
  }

  /**
   * Self-fencing: a staged file is written only while this replica's lease is live, so no
   * closer can have stopped counting this replica (that takes ttl + ack deadline).
   */
  async ensure(eventType: string): Promise<void> {
    if (this.fresh()) return;
    await this.renew();
    if (!this.fresh()) {
      throw new HourglassError('LEASE_EXPIRED', `lease of ${this.who.replicaId} for ${eventType}`);
    }
  }

  /** Resolves once the store allows the lease to be written again (a throttled write would be lost). */
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
    await this.renewing?.catch(() => undefined);
    await this.write(this.record(0));
  }

  stateNow(): LeaseState | undefined {
    return this.published ? leaseState(this.published, this.deps.clock.now()) : undefined;
  }

  private async write(record: ReplicaLeaseRecord): Promise<void> {
    await writeReplicaLease(this.deps.store, record);
    if (!this.published || record.renewedAt >= this.published.renewedAt) this.published = record;
  }

  private fresh(): boolean {
    return this.published !== undefined && this.deps.clock.now() < this.published.renewedAt + this.published.ttlMs;
  }

  private record(ttlMs: number): ReplicaLeaseRecord {
    const now = this.deps.clock.now();
    const watermarks: Record<string, number> = {};
    const retired: Record<string, RetiredType> = {};
    for (const [type, watermark] of this.served) watermarks[type] = watermark();
    for (const [type, r] of this.retired) {
      if (r.at + this.config.redeliveryBoundMs <= now) this.retired.delete(type);
      else retired[type] = r;
    }
    return {
      replicaId: this.who.replicaId,
      incarnation: this.who.incarnation,
      renewedAt: now,
      ttlMs,
      ackDeadlineMs: this.config.redeliveryBoundMs,
      closes: this.who.closes,
      watermarks,
      ...(Object.keys(retired).length > 0 ? { retired } : {}),
    };
  }

  /**
   * Leases that stopped counting long ago (expired for at least one more ttl) are deleted by
   * one replica: the closer of no type in particular, as read (two that both think so delete twice, harmlessly).
   */
  private async deleteExpiredIfFirst(board: LeaseBoard): Promise<void> {
    const now = this.deps.clock.now();
    if (!this.published || closerOf([...board.replicas, this.published], now, '') !== this.identity) return;
    const gone = (l: LeaseTerm): boolean => leaseState(l, now - l.ttlMs) === 'expired';
    for (const r of board.replicas) {
      if (gone(r)) await this.deps.store.delete(replicaLeaseName(r.replicaId, r.incarnation));
    }
    for (const leases of board.legacy.values()) {
      for (const l of leases)
        if (gone(l)) await this.deps.store.delete(leaseName(l.eventType, l.replicaId, l.incarnation));
    }
  }
}

/** How soon an object may be rewritten in this store (GCS: once a second per name). */
export function rewriteIntervalMs(store: ObjectStore): number {
  return store.rewriteIntervalMs ?? 0;
}

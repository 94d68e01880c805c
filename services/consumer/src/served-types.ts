import type { Clock, Logger } from '@hourglass/common';
import { type ReplicasPerType, typesServedBy } from '@hourglass/bucket-format';
import type { MessageSource } from './source/message-source.js';
import type { TypeRuntime, WindowClosed } from './type-runtime.js';
import type { ReplicaLeaseKeeper } from './watermark/replica-lease.js';

/** A type this process serves: its runtime and its subscription's reader. */
export interface Subscribed {
  rt: TypeRuntime;
  name: string;
  source: MessageSource;
}

export interface ServedTypesDeps {
  lease: ReplicaLeaseKeeper;
  clock: Clock;
  logger: Logger;
  /** A fresh runtime for a type this process starts serving (its lease view registered). */
  runtime: (eventType: string) => TypeRuntime;
  /** Opens the type's subscription and starts handing its messages to the runtime; `share`: the process's served types. */
  subscribe: (rt: TypeRuntime, share: number) => Promise<Subscribed>;
}

/**
 * The event types this process pulls, stages and may close, out of `candidates`, as the type
 * assignment (type-assignment.ts) gives them from the live leases last read. A type that comes
 * is started like a joining replica: its runtime reads the cursor and starts from the other
 * replicas' watermarks, the lease is written, then its subscription opens. A type that goes is
 * stopped like a replica that stops: pulling paused, its held events staged and acked, the
 * subscription closed (the rest nacked), its close finished; then, if it left any message to come
 * back unstaged, its lease entry is retired (stale for the redelivery bound, so those messages find
 * the type's windows still open at the others), else dropped at once.
 */
export class ServedTypes {
  private readonly active = new Map<string, Subscribed>();
  /** Per type, the start or stop in progress: a type's changes run one after another. */
  private readonly changing = new Map<string, Promise<void>>();
  private reconciling: Promise<void> | undefined;
  private stopping = false;
  /** The last assignment and the live identities it was computed from (a sha256 per type and replica). */
  private assignment: { key: string; types: string[] } | undefined;
  /** Windows closed by runtimes since stopped here. */
  private readonly closedByStopped: WindowClosed[] = [];
  private ackedByStopped = 0;

  constructor(
    private readonly candidates: readonly string[],
    private readonly spec: ReplicasPerType,
    private readonly deps: ServedTypesDeps,
  ) {}

  /** The types this process serves now, in candidate order. */
  get subscriptions(): Subscribed[] {
    return this.candidates.flatMap((t) => this.active.get(t) ?? []);
  }

  get runtimes(): TypeRuntime[] {
    return this.subscriptions.map((s) => s.rt);
  }

  /** Windows this process closed, by the runtimes it runs and those it stopped. */
  closed(): WindowClosed[] {
    return [...this.closedByStopped, ...this.runtimes.flatMap((rt) => rt.closed)];
  }

  /** Messages acked by every runtime this process ran, those it stopped included. */
  acked(): number {
    return this.runtimes.reduce((n, rt) => n + rt.stager.stats.acked, this.ackedByStopped);
  }

  /** What the assignment gives this process from the leases last read; computed again only when the live replicas change. */
  wanted(): string[] {
    const live = this.deps.lease.liveIdentities();
    const key = [...live].sort().join('\n');
    if (this.assignment?.key !== key) {
      this.assignment = { key, types: typesServedBy(this.deps.lease.identity, live, this.candidates, this.spec) };
    }
    return this.assignment.types;
  }

  /** Starts the wanted types not served and stops the served ones not wanted; one pass at a time. */
  reconcile(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    this.reconciling ??= this.pass().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  /** Stops every served type (the process is stopping) and waits for changes in progress. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await this.reconciling;
    await Promise.all([...this.active.keys()].map((t) => this.change(t, () => this.stopType(t))));
    await Promise.all(this.changing.values());
  }

  private async pass(): Promise<void> {
    const wanted = this.wanted();
    const coming = wanted.filter((t) => !this.active.has(t));
    const going = [...this.active.keys()].filter((t) => !wanted.includes(t));
    if (coming.length > 0 || going.length > 0) {
      this.deps.logger.info({ coming, going, served: wanted.length }, 'type assignment changed');
    }
    // Goes on in the background: the tick must not wait for a close to finish.
    for (const t of going) void this.change(t, () => this.stopType(t));
    if (coming.length > 0) await this.startTypes(coming, wanted.length);
  }

  /** Like a process start: every runtime starts (cursor, others' watermarks), one lease write, then the subscriptions open. */
  private async startTypes(types: readonly string[], share: number): Promise<void> {
    await Promise.all(types.map((t) => this.changing.get(t)));
    const runtimes = types.map((t) => this.deps.runtime(t));
    try {
      await Promise.all(runtimes.map((rt) => rt.start()));
      await this.deps.lease.renew();
    } catch (e) {
      for (const t of types) this.deps.lease.forget(t);
      throw e;
    }
    await Promise.all(
      runtimes.map((rt) =>
        this.change(rt.eventType, async () => {
          this.active.set(rt.eventType, await this.deps.subscribe(rt, share));
        }),
      ),
    );
  }

  private async stopType(eventType: string): Promise<void> {
    const s = this.active.get(eventType);
    if (!s) return;
    this.active.delete(eventType);
    // No new Pulls (the one in flight still delivers), then everything received is staged and acked.
    s.source.pause('stopping serving this type');
    let released: number | undefined;
    try {
      await s.rt.stager.drain();
    } finally {
      // whatever the drain did, the type leaves: a failed drain's messages are nacked and held for
      released = await s.source.close().catch(() => undefined);
      await s.rt.stop().finally(() => this.deps.lease.retire(eventType, released !== 0));
    }
    this.closedByStopped.push(...s.rt.closed);
    this.ackedByStopped += s.rt.stager.stats.acked;
    this.deps.logger.info({ eventType, ...s.rt.stager.stats }, 'stopped serving a type');
  }

  private change(eventType: string, step: () => Promise<void>): Promise<void> {
    const next = (this.changing.get(eventType) ?? Promise.resolve())
      .then(step)
      .catch((e: unknown) => this.deps.logger.error({ err: e, eventType }, 'starting or stopping a type failed'));
    const tracked = next.finally(() => {
      if (this.changing.get(eventType) === tracked) this.changing.delete(eventType);
    });
    this.changing.set(eventType, tracked);
    return tracked;
  }
}

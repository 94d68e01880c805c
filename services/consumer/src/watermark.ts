/**
 * Watermarks, as pure functions of what a replica observed and the time it is given.
 *
 * A replica's watermark for one event type is a lower bound on the gateway_ts of every
 * event it may still stage. It only moves forward: wm = max(previous wm, candidate), where
 *  - while it holds events not yet in a durable staged file: candidate = min gateway_ts held;
 *  - while messages keep arriving but nothing is held: the min gateway_ts seen since the last step;
 *  - when idle (nothing received for `idleAfter`, nothing held): now − maxPublishDelay, because the
 *    gateway never acks an event whose publish took longer than that, so anything older is already
 *    in Pub/Sub — held by some replica, whose own lease then holds the global watermark back.
 *    Never idle while the replica's source is unhealthy (Pulls failing or unanswered, the stream
 *    down, pulling paused by back pressure) nor for `idleAfter` after it recovers: an empty or
 *    failed Pull does not mean nothing is waiting in Pub/Sub.
 * While the source is unhealthy the watermark does not move at all. Unary pull counts as healthy
 * again only once a Pull found nothing more waiting, i.e. once the backlog
 * that built up meanwhile has drained: its messages arrive in no particular order, and the
 * smallest gateway_ts seen in one tick says nothing of the ones still waiting.
 * Every candidate is capped at now − maxPublishDelay (an event whose publish is still in flight
 * may be that old) and at the watermark of any stale lease of another replica (its messages
 * come back here within the ack deadline; without the cap an idle replica would call them late).
 *
 * Why closing is safe: a replica routes an event to window W only while W.end + grace > its wm,
 * and then holds the event until its staged file is durable. While held, the candidate is
 * ≤ its gateway_ts < W.end + grace, so this replica's wm — and the lease it publishes, and the
 * global minimum over leases — cannot reach W.end + grace before the staged file exists. A late
 * event is routed to the earliest window with end + grace > wm and, being older than the wm, pins
 * the wm where it is until staged: the same argument keeps that window open.
 */
export interface ReplicaWatermarkOptions {
  idleAfterMs: number;
  maxPublishDelayMs: number;
}

export class ReplicaWatermark {
  private wm: number;
  private lastReceivedAt: number | undefined;
  private seenMin = Infinity;
  private sourceHealthy = true;

  /**
   * `startedAt`: when the replica subscribed. It is not idle until `idleAfter` has passed
   * since then without a message: a backlog takes a moment to start flowing.
   */
  constructor(
    private readonly options: ReplicaWatermarkOptions,
    startedAt?: number,
  ) {
    this.wm = -Infinity;
    this.lastReceivedAt = startedAt;
  }

  get value(): number {
    return this.wm;
  }

  /** A message arrived at `now` whose smallest gateway_ts is `minGatewayTs`. */
  observe(minGatewayTs: number, now: number): void {
    this.lastReceivedAt = now;
    if (minGatewayTs < this.seenMin) this.seenMin = minGatewayTs;
  }

  /**
   * The process was not running until `now` (frozen, or its event loop blocked): messages may be
   * waiting unread in its buffers, so it is not idle until `idleAfter` has passed awake.
   */
  resumed(now: number): void {
    if (this.lastReceivedAt === undefined || now > this.lastReceivedAt) this.lastReceivedAt = now;
  }

  /**
   * The replica's subscription can (true) or cannot (false) be read at `now`. While it cannot,
   * the replica is never idle; once it can again, it is not idle until `idleAfter` has passed.
   */
  setSourceHealthy(healthy: boolean, now: number): void {
    if (healthy && !this.sourceHealthy) this.resumed(now);
    this.sourceHealthy = healthy;
  }

  /** Raises the watermark to at least `bound` (e.g. the last closed window learnt from the store). */
  raiseTo(bound: number): void {
    if (bound > this.wm) this.wm = bound;
  }

  /**
   * One step at `now`; `heldMin` is the smallest gateway_ts of events held unstaged (undefined
   * when none); `ceiling` caps the candidate (the stale leases of other replicas: the messages
   * a dead replica held come back to this one, and should find their windows open). Returns
   * the new watermark.
   */
  advance(now: number, heldMin: number | undefined, ceiling = Infinity): number {
    if (!this.sourceHealthy) {
      this.seenMin = Infinity;
      return this.wm;
    }
    const cap = now - this.options.maxPublishDelayMs;
    let candidate: number;
    if (heldMin !== undefined) candidate = heldMin;
    else if (!this.isIdle(now)) candidate = this.seenMin === Infinity ? -Infinity : this.seenMin;
    else candidate = cap;
    this.seenMin = Infinity;
    const next = Math.min(candidate, cap, ceiling);
    if (next > this.wm) this.wm = next;
    return this.wm;
  }

  isIdle(now: number): boolean {
    if (!this.sourceHealthy) return false;
    return this.lastReceivedAt === undefined || now - this.lastReceivedAt >= this.options.idleAfterMs;
  }
}

/** How long the smallest gateway wait seen is remembered at least: long against the 250 ms max linger. */
const BASELINE_SPAN_MS = 10_000;

/**
 * A type's receive lag as the finalize pacer reads it: a message's arrival minus its oldest event's
 * `gateway_ts`, less the type's steady wait in the gateway. A light type's events wait in their
 * bundle up to the gateway's max linger (250 ms) by design; at 255 types that alone kept the lag
 * above the pacer's 500 ms and finalize slowed all the time. The steady wait is the smallest gap
 * between an event's `gateway_ts` and its message's Pub/Sub publish time seen in the last 10–30 s:
 * the linger and an unhurried publish. What grows above it (a gateway slowed by a host it shares
 * with finalize, messages waiting in Pub/Sub for a busy consumer) still counts. Without a publish
 * time the whole lag counts.
 */
export class ReceiveLag {
  private current = Infinity;
  private previous = Infinity;
  private bucketStart = -Infinity;

  /** The lag of a message with oldest event `minTs`, published at `publishedAt`, arriving `now`. */
  of(now: number, minTs: number, publishedAt: number | undefined): number {
    if (publishedAt === undefined) return now - minTs;
    if (now - this.bucketStart >= BASELINE_SPAN_MS) {
      // two buckets: the baseline forgets a wait 10–30 s after it was seen
      this.previous = now - this.bucketStart >= 2 * BASELINE_SPAN_MS ? Infinity : this.current;
      this.current = Infinity;
      this.bucketStart = now;
    }
    this.current = Math.min(this.current, Math.max(0, publishedAt - minTs));
    return now - minTs - Math.min(this.current, this.previous);
  }
}

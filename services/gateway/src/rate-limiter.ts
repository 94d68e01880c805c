import type { Clock } from '@hourglass/common';

/**
 * Per-key token buckets in events per second; a bucket holds one second's worth.
 * A batch larger than the bucket passes when the bucket is full and leaves it in debt,
 * so large batches are slowed down rather than refused forever.
 */
export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const OK: RateDecision = { ok: true };

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly clock: Clock) {}

  take(keyName: string, ratePerSecond: number, events: number): RateDecision {
    const now = this.clock.now();
    let bucket = this.buckets.get(keyName);
    if (!bucket) {
      bucket = { tokens: ratePerSecond, updatedAt: now };
      this.buckets.set(keyName, bucket);
    } else if (now > bucket.updatedAt) {
      bucket.tokens = Math.min(ratePerSecond, bucket.tokens + ((now - bucket.updatedAt) * ratePerSecond) / 1000);
      bucket.updatedAt = now;
    }
    const needed = Math.min(events, ratePerSecond);
    if (bucket.tokens >= needed) {
      bucket.tokens -= events;
      return OK;
    }
    const waitMs = ((needed - bucket.tokens) * 1000) / ratePerSecond;
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
  }
}

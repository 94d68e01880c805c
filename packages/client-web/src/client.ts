import { PersistentQueue, type QueuedEvent, type StoreLike } from './queue.js';
import { PERMANENT_STATUSES, backoffMs, newEventId, retryAfterMs } from './rules.js';

/**
 * Sends a page's events to the gateway with a publishable key: batches by count and time,
 * re-sends `retry` answers and transient failures with the same ids and backoff, keeps a
 * bounded queue in localStorage across reloads and offline spells, and hands what is left
 * to `navigator.sendBeacon` when the page is hidden or closed.
 */
export interface WebClientOptions {
  /** Gateway base URL, e.g. https://events.example.com. */
  url: string;
  /** A publishable key (docs/http-api.md, "Browsers and apps"). */
  key: string;
  /** Events per request; a full batch is sent at once. */
  batchSize?: number;
  /** Longest wait before a partial batch is sent. */
  flushIntervalMs?: number;
  /** Events kept while the gateway is unreachable; the oldest are dropped beyond it. */
  maxQueued?: number;
  storageKey?: string;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * A beaconed event still queued is sent again (same id) only this soon after its beacon,
   * so a copy stays within the consumer's dedup horizon (1 min by default); older ones are dropped.
   */
  resendBeaconedWithinMs?: number;
}

export interface WebClientStats {
  tracked: number;
  accepted: number;
  rejected: number;
  /** Events re-sent after a `retry` answer or a failed request. */
  retried: number;
  requests: number;
  beaconed: number;
  /** Dropped: queue full, or beaconed too long ago to re-send safely. */
  dropped: number;
}

interface WireResult {
  status?: string;
}

const BEACON_MAX_BYTES = 60_000; // browsers refuse beacons once 64 KiB are in flight

export class HourglassWeb {
  readonly stats: WebClientStats = {
    tracked: 0,
    accepted: 0,
    rejected: 0,
    retried: 0,
    requests: 0,
    beaconed: 0,
    dropped: 0,
  };
  private readonly queue: PersistentQueue;
  private readonly endpoint: string;
  private readonly opts: Required<Omit<WebClientOptions, 'url' | 'key' | 'storageKey'>>;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sending: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private batchLimit: number;
  private closed = false;
  private readonly listeners: [EventTarget, string, () => void][] = [];

  constructor(private readonly options: WebClientOptions) {
    this.endpoint = new URL('/v1/events', options.url).href;
    this.opts = {
      batchSize: options.batchSize ?? 50,
      flushIntervalMs: options.flushIntervalMs ?? 2000,
      maxQueued: options.maxQueued ?? 2000,
      initialBackoffMs: options.initialBackoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      resendBeaconedWithinMs: options.resendBeaconedWithinMs ?? 45_000,
    };
    this.batchLimit = this.opts.batchSize;
    const store: StoreLike | undefined = typeof localStorage === 'undefined' ? undefined : localStorage;
    this.queue = new PersistentQueue(store, options.storageKey ?? 'hourglass-queue', this.opts.maxQueued);
    if (typeof window !== 'undefined') {
      this.listen(window, 'pagehide', () => this.beacon());
      this.listen(document, 'visibilitychange', () =>
        document.visibilityState === 'hidden' ? this.beacon() : this.flushSoon(0),
      );
      this.listen(window, 'online', () => this.wake?.());
    }
    if (this.queue.length > 0) this.flushSoon(0);
  }

  /** Queues one event and returns its id (also its dedup key downstream). */
  track(type: string, payload: Record<string, unknown>, id: string = newEventId()): string {
    this.stats.dropped += this.queue.push({ type, id, client_ts: Date.now(), payload });
    this.stats.tracked++;
    this.flushSoon(this.queue.length >= this.opts.batchSize ? 0 : this.opts.flushIntervalMs);
    return id;
  }

  /** Sends until the queue is empty (resolves early only when close() is called). */
  flush(): Promise<void> {
    this.sending ??= this.sendAll().finally(() => (this.sending = undefined));
    return this.sending;
  }

  /** Hands every queued event to sendBeacon (pagehide, hidden tab); the events stay queued, marked. */
  beacon(): number {
    if (typeof navigator === 'undefined' || typeof navigator.sendBeacon !== 'function') return 0;
    const url = `${this.endpoint}?key=${encodeURIComponent(this.options.key)}`;
    const now = Date.now();
    let sent = 0;
    let chunk: QueuedEvent[] = [];
    let bytes = 0;
    const send = (): boolean => {
      if (chunk.length === 0) return true;
      const ok = navigator.sendBeacon(url, JSON.stringify({ events: chunk.map(wire) }));
      if (ok) for (const e of chunk) e.beaconedAt = now;
      if (ok) sent += chunk.length;
      chunk = [];
      bytes = 0;
      return ok;
    };
    for (const e of this.queue.all()) {
      if (e.beaconedAt !== undefined) continue; // pagehide follows visibilitychange: one beacon is enough
      const size = JSON.stringify(wire(e)).length + 1;
      if (chunk.length >= this.opts.batchSize || (bytes + size > BEACON_MAX_BYTES && chunk.length > 0)) {
        if (!send()) break;
      }
      chunk.push(e);
      bytes += size;
    }
    send();
    this.queue.save();
    this.stats.beaconed += sent;
    return sent;
  }

  /** Stops timers and listeners; the queue stays in storage for the next page. */
  close(): void {
    clearTimeout(this.timer);
    for (const [target, name, fn] of this.listeners) target.removeEventListener(name, fn);
    this.listeners.length = 0;
    this.closed = true;
    this.wake?.();
  }

  private listen(target: EventTarget, name: string, fn: () => void): void {
    target.addEventListener(name, fn);
    this.listeners.push([target, name, fn]);
  }

  private flushSoon(delayMs: number): void {
    if (this.closed) return;
    if (this.timer !== undefined && delayMs > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
  }

  private async sendAll(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      this.dropStaleBeacons();
      const batch = this.queue.all().slice(0, this.batchLimit);
      if (batch.length === 0) return;
      const wait = await this.sendBatch(batch, attempt);
      if (wait === undefined) {
        attempt = 0;
        continue;
      }
      attempt++;
      await this.sleep(wait);
    }
  }

  /** One request; returns how long to wait before the next when something must be re-sent. */
  private async sendBatch(batch: readonly QueuedEvent[], attempt: number): Promise<number | undefined> {
    const backoff = backoffMs(attempt, this.opts.initialBackoffMs, this.opts.maxBackoffMs, Math.random);
    if (attempt > 0) this.stats.retried += batch.length;
    this.stats.requests++;
    let res: Response;
    let body: { results?: WireResult[] } | undefined;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.options.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: batch.map(wire) }),
      });
      body = (await res.json().catch(() => undefined)) as typeof body;
    } catch {
      return Math.max(backoff, this.opts.initialBackoffMs); // network: offline, DNS, CORS refusal
    }
    const done = new Set<string>();
    const results = body?.results;
    if (results && results.length === batch.length) {
      results.forEach((r, i) => {
        if (r.status === 'accepted' || r.status === 'rejected') {
          done.add(batch[i]!.id);
          this.stats[r.status]++;
        }
      });
    } else if (res.status === 413 && batch.length > 1) {
      this.batchLimit = Math.ceil(batch.length / 2);
      return 0;
    } else if (PERMANENT_STATUSES.has(res.status) || res.status === 413) {
      for (const e of batch) done.add(e.id);
      this.stats.rejected += batch.length;
    }
    this.queue.remove(done);
    this.batchLimit = this.opts.batchSize;
    if (done.size === batch.length) return undefined;
    return Math.max(backoff, retryAfterMs(res.headers.get('retry-after')) ?? 0);
  }

  private dropStaleBeacons(): void {
    const oldest = Date.now() - this.opts.resendBeaconedWithinMs;
    const stale = this.queue.all().filter((e) => e.beaconedAt !== undefined && e.beaconedAt < oldest);
    this.queue.remove(new Set(stale.map((e) => e.id)));
    this.stats.dropped += stale.length;
  }

  /** Waits, cut short by the `online` event or close(). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}

function wire(e: QueuedEvent): object {
  return { type: e.type, id: e.id, client_ts: e.client_ts, payload: e.payload };
}

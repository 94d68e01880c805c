import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

/** How the pacer reads time and waits: the process's own by default, a test's hand-driven ones. */
export interface PacerTime {
  /** Monotonic milliseconds. */
  now(): number;
  sleep(ms: number): Promise<void>;
  /** One turn of the event loop (what finalize did between chunks before the pacer). */
  turn(): Promise<void>;
}

const processTime: PacerTime = {
  now: () => performance.now(),
  sleep: (ms) => sleep(ms),
  turn: () => nextTurn(),
};

export interface FinalizePacerOptions {
  /**
   * Receive lag (a message's arrival here − its oldest event's gateway_ts, less the type's steady
   * wait in the gateway: stage/receive-lag.ts) above which finalize gives way to staging; 0 turns
   * the pacer off.
   */
  lagMs: number;
  /** Share of the time finalize keeps while staging lags (0 < share ≤ 1). */
  share: number;
  /** How long one lagging message keeps finalize slowed. */
  holdMs: number;
  /** Longest single pause, so a slow chunk (its I/O counts too) cannot stall finalize for long. */
  maxPauseMs: number;
  /**
   * Least work between two yields: a pause sooner than this after the last one returns at once.
   * A chunk can be a few events (a staged file's hash-group block), and a loop turn or a timer's
   * millisecond per block made a small window's close mostly waiting.
   */
  sliceMs: number;
}

/**
 * Finalize and staging share one event loop, and on a small host the same cores as the gateway
 * and Pub/Sub. A close or early segment is seconds of CPU at once: while it ran at full speed,
 * events arrived ever later and waited to be staged (e2e at 150,000 events/s: 5–22% of them past
 * 2 s, all during finalize bursts). The stager reports each message's receive lag; while it is
 * above `lagMs`, every pause between finalize chunks sleeps long enough to keep finalize to
 * `share` of the time. A close then takes longer, and is never stopped: its share is a floor, so
 * finalize still moves under a backlog that never drains.
 */
export class FinalizePacer {
  private laggingUntil = -Infinity;
  /** Until when a pause holds finalize: jobs running at once (finalize-queue.ts) share one share of the time. */
  private resumeAt = -Infinity;
  private chunkStartedAt: number;
  /** Milliseconds finalize slept for staging (a counter for the metrics). */
  pausedMs = 0;

  constructor(
    private readonly options: FinalizePacerOptions,
    private readonly time: PacerTime = processTime,
    /** Told each pause's milliseconds (the metrics' counter). */
    private readonly onPause?: (ms: number) => void,
  ) {
    if (!(options.share > 0 && options.share <= 1)) throw new RangeError(`pacer share ${options.share} not in (0, 1]`);
    this.chunkStartedAt = time.now();
  }

  /** Staging took a message with receive lag `lagMs` (stage/receive-lag.ts). */
  observe(lagMs: number): void {
    if (this.options.lagMs > 0 && lagMs > this.options.lagMs) {
      this.laggingUntil = this.time.now() + this.options.holdMs;
    }
  }

  get lagging(): boolean {
    return this.time.now() < this.laggingUntil;
  }

  /**
   * Awaited by finalize between chunks (a staged file's block, a spill file's read): once
   * `sliceMs` of work has run since the last yield, one loop turn, or while staging lags a sleep of
   * that work's time × (1 − share) / share.
   */
  readonly pause = async (): Promise<void> => {
    const now = this.time.now();
    if (now < this.resumeAt) {
      // another job's pause is running: this one waits for its end too
      await this.time.sleep(this.resumeAt - now);
      this.chunkStartedAt = this.time.now();
      return;
    }
    const ran = now - this.chunkStartedAt;
    if (ran < this.options.sliceMs) return; // the slice is not used up: go on
    if (now < this.laggingUntil && ran > 0) {
      const { share, maxPauseMs } = this.options;
      const ms = Math.min(maxPauseMs, (ran * (1 - share)) / share);
      this.resumeAt = now + ms;
      this.pausedMs += ms;
      this.onPause?.(ms);
      await this.time.sleep(ms);
    } else {
      await this.time.turn();
    }
    this.chunkStartedAt = this.time.now();
  };
}

import { type Logger, isHourglassError } from '@hourglass/common';
import type { ConsumerMetrics } from '../metrics.js';
import type { StagerStats } from './stats.js';

/** Backoff between retries of a failing staging write, doubling up to the max. */
const WRITE_RETRY_MIN_MS = 200;
const WRITE_RETRY_MAX_MS = 5_000;

export interface WriteRetryDeps {
  eventType: string;
  /** Tries once `draining()` is true (shutdown). */
  writeAttempts: number;
  draining: () => boolean;
  logger: Logger;
  metrics: ConsumerMetrics;
  stats: StagerStats;
}

/**
 * Staging writes (part files, dead letters) retried until they succeed, and whether the last one
 * did: the consumer stops pulling while staging writes fail (back pressure).
 */
export class WriteRetry {
  private storeOk = true;
  private readonly listeners: ((healthy: boolean) => void)[] = [];

  constructor(private readonly deps: WriteRetryDeps) {}

  /** Calls `listener` when staging writes start failing (false) and succeed again (true). */
  watch(listener: (healthy: boolean) => void): void {
    this.listeners.push(listener);
  }

  /** Whether the last staging write succeeded (false while writes are being retried). */
  get healthy(): boolean {
    return this.storeOk;
  }

  /**
   * Runs `attempt` until it succeeds. A store failure or a lease that cannot be renewed is
   * temporary: the messages stay held (their leases extended, the watermark pinned by their
   * events) and the write is retried with a backoff, however long the store is down — a nack
   * would spend one of the subscription's delivery attempts per failure and dead-letter healthy
   * events. Meanwhile the store counts as failing (the consumer stops pulling). Only a conflict
   * (another object under our name) or a shutdown (then `writeAttempts` tries) ends in failure.
   */
  async untilWritten(operation: string, detail: object, attempt: () => Promise<void>): Promise<void> {
    const { logger } = this.deps;
    let failures = 0;
    let sinceDrain = 0;
    for (;;) {
      try {
        await attempt();
        if (failures > 0) logger.info({ ...detail, failures }, 'store write succeeded after retries');
        this.setHealthy(true);
        return;
      } catch (e) {
        failures++;
        this.deps.stats.failedWrites++;
        this.deps.metrics.storeErrors.add(1, { event_type: this.deps.eventType, operation });
        if (isHourglassError(e, 'STORAGE_PRECONDITION_FAILED')) throw e;
        this.setHealthy(false);
        if (this.deps.draining() && ++sinceDrain >= this.deps.writeAttempts) throw e;
        const backoffMs = Math.min(WRITE_RETRY_MAX_MS, WRITE_RETRY_MIN_MS * 2 ** Math.min(failures - 1, 16));
        // the first failure and then about one line a minute per write
        if (failures === 1 || failures % Math.ceil(60_000 / WRITE_RETRY_MAX_MS) === 0) {
          logger.warn({ err: e, ...detail, failures, backoffMs }, 'store write failed; holding, retrying');
        }
        await new Promise((r) => setTimeout(r, backoffMs));
      }
    }
  }

  private setHealthy(ok: boolean): void {
    if (ok === this.storeOk) return;
    this.storeOk = ok;
    for (const l of this.listeners) l(ok);
  }
}

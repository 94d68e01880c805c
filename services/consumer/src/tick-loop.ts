import type { Clock, Logger } from '@hourglass/common';
import type { TypeRuntime } from './type-runtime.js';
import type { ReplicaLeaseKeeper } from './watermark/replica-lease.js';

/** The finest part-file age check: below this the checks cost more than they save. */
const FLUSH_CHECK_MIN = 50;

/** How often the debug log shows every type's counters and watermarks. */
const PROGRESS_LOG_INTERVAL = 2_000;

export interface TickLoopOptions {
  tickMs: number;
  stageMaxAgeMs: number;
  /** false: no timers; the caller drives tick(). */
  autoTick: boolean;
}

/** The process's lease, shared by its types, and where its read and write failures go. */
export interface TickLease {
  keeper: ReplicaLeaseKeeper;
  storeError: (operation: string, e: unknown) => void;
  /** After each read of the leases (the type assignment follows them). */
  afterRead?: () => void;
}

/**
 * The process's clockwork: every tick the process reads all leases once, each type flushes aged
 * part files and advances its watermark, the process renews its one lease, then each type starts
 * a close pass; part files are also checked for age on a finer timer of their own.
 */
export class TickLoop {
  private ticking: Promise<void> | undefined;
  private lastTickDone: number;
  private lastProgressLog = 0;
  private lastTimerAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private halted = false;

  constructor(
    private readonly runtimes: () => readonly TypeRuntime[],
    private readonly options: TickLoopOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly progress: () => unknown,
    private readonly lease: TickLease,
  ) {
    this.lastTickDone = clock.now();
  }

  get stopping(): boolean {
    return this.halted;
  }

  /** Clock ms since the last tick completed (the liveness check). */
  sinceTickMs(): number {
    return this.clock.now() - this.lastTickDone;
  }

  tick(): Promise<void> {
    const now = this.clock.now();
    if (now - this.lastProgressLog >= PROGRESS_LOG_INTERVAL) {
      this.lastProgressLog = now;
      this.log.debug({ status: this.progress() }, 'progress');
    }
    if (!this.ticking) {
      this.ticking = this.step().finally(() => {
        this.ticking = undefined;
        this.lastTickDone = this.clock.now();
      });
    }
    return this.ticking;
  }

  private async step(): Promise<void> {
    const { keeper, storeError } = this.lease;
    await keeper.refresh().catch((e: unknown) => storeError('read', e));
    if (!this.halted) this.lease.afterRead?.();
    await Promise.all(this.runtimes().map((rt) => rt.advance()));
    await keeper.renewIfDue()?.catch((e: unknown) => storeError('lease', e));
    if (this.halted) return;
    for (const rt of this.runtimes()) void rt.closeWindows();
  }

  start(): void {
    if (!this.options.autoTick) return;
    const { tickMs, stageMaxAgeMs } = this.options;
    this.timer = setInterval(() => this.onTimer(), tickMs);
    this.timer.unref();
    // Part files flush on their own, finer timer: tied to the tick, a file would wait up to
    // stageMaxAge + tick before its write starts (and its messages before their ack).
    this.flushTimer = setInterval(
      () => {
        const now = this.clock.now();
        for (const rt of this.runtimes()) rt.stager.flushAged(now);
      },
      Math.max(FLUSH_CHECK_MIN, Math.min(tickMs, stageMaxAgeMs / 4)),
    );
    this.flushTimer.unref();
  }

  /**
   * A timer that fires a tick late means the process was frozen or blocked: what a Pull answered
   * meanwhile is still unread, so no type may count as idle yet (see ReplicaWatermark.resumed).
   */
  private onTimer(): void {
    const awake = performance.now();
    if (awake - this.lastTimerAt > 2 * this.options.tickMs) {
      for (const rt of this.runtimes()) rt.watermark.resumed(this.clock.now());
    }
    this.lastTimerAt = awake;
    void this.tick();
  }

  /** No more ticks or close passes; resolves when the running tick ends. */
  async stop(): Promise<void> {
    this.halted = true;
    if (this.timer) clearInterval(this.timer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.ticking;
  }
}

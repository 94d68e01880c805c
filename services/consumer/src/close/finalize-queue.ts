import type { FinalizeJob } from '../finalize/context.js';

/** How many finalize jobs may run at once, and which run alone. */
export interface FinalizeQueueOptions {
  /** Small jobs at once (1: every job alone, one at a time). */
  concurrency: number;
  /** A job that reports more staged bytes than this runs alone: its memory and CPU are a window's. */
  sharedBytes: number;
}

interface Waiting {
  alone: boolean;
  start: () => void;
}

const ONE_AT_A_TIME: FinalizeQueueOptions = { concurrency: 1, sharedBytes: Infinity };

/**
 * The finalize work of every type a consumer serves (early segments, closes, shard jobs) shares
 * one queue (one per startConsumer, so replicas started in one process stay apart, as in the
 * tests). It shares the event loop with staging: each job yields between chunks, and with five
 * large windows finalizing at once staging waited behind five chunks at every turn. So a job that
 * reads more than `sharedBytes` runs alone. Small jobs run up to `concurrency` at once: a close of
 * a 2 MB window is mostly waits for the store, and at 255 types one at a time the closes of one
 * window end took longer than the window.
 *
 * FIFO, and a job asking to run alone is served before any job queued after it: it releases its
 * place while it waits, so two growing jobs never wait for each other.
 */
export class FinalizeQueue {
  private running = 0;
  private aloneRunning = false;
  private readonly waiting: Waiting[] = [];

  constructor(private readonly options: FinalizeQueueOptions = ONE_AT_A_TIME) {
    if (!(options.concurrency >= 1)) throw new RangeError(`finalize concurrency ${options.concurrency} < 1`);
  }

  /** Runs `job` when its turn comes; `alone`: with no other job running (a shard job). */
  async run<T>(job: (handle: FinalizeJob) => Promise<T>, options: { alone?: boolean } = {}): Promise<T> {
    let alone = options.alone === true || this.options.concurrency === 1;
    await new Promise<void>((start) => {
      this.waiting.push({ alone, start });
      this.pump();
    });
    const handle: FinalizeJob = {
      weigh: async (stagedBytes) => {
        if (alone || stagedBytes <= this.options.sharedBytes) return;
        alone = true;
        // first in line before its place is given up: no job queued after it starts meanwhile
        const turn = new Promise<void>((start) => this.waiting.unshift({ alone: true, start }));
        this.leave(false);
        await turn;
      },
    };
    try {
      return await job(handle);
    } finally {
      this.leave(alone);
    }
  }

  private leave(alone: boolean): void {
    this.running--;
    if (alone) this.aloneRunning = false;
    this.pump();
  }

  private pump(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      const fits = next.alone ? this.running === 0 : !this.aloneRunning && this.running < this.options.concurrency;
      if (!fits) return;
      this.waiting.shift();
      this.running++;
      if (next.alone) this.aloneRunning = true;
      next.start();
    }
  }
}

/**
 * Finalize work of every type runs one job at a time per consumer (one queue per startConsumer,
 * so replicas started in one process stay apart, as in the tests). It shares the event loop with
 * staging: each job yields between staged files, and with five types finalizing at once staging
 * waited behind up to five files' scans at every turn.
 */
export class FinalizeQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `job` after every job queued before it has settled. */
  run<T>(job: () => Promise<T>): Promise<T> {
    const run = this.tail.then(job, job);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

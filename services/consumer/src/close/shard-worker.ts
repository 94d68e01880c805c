import type { Logger } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import { SHARD_JOBS, assignWindow, parseShardJobName } from '@hourglass/bucket-format';
import type { FinalizeContext } from '../finalize/context.js';
import { runOneOpenShardJob } from '../finalize/shard-jobs.js';
import type { FinalizeQueue } from './finalize-queue.js';

/**
 * Every replica's helping hand with windows finalized in shards: every poll it lists the windows
 * announced under `_shardjobs/` (one listing for all types) and runs the shard jobs nobody holds,
 * one job per turn of the consumer's finalize queue, so its own closes are not starved.
 */
export class ShardWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  /** Shard jobs this replica ran for announced windows. */
  jobsRun = 0;

  constructor(
    private readonly store: ObjectStore,
    /** Per type served (now or before), its finalize context; other types' jobs are left to others. Filled as types come. */
    private readonly contexts: ReadonlyMap<string, FinalizeContext>,
    private readonly queue: FinalizeQueue,
    private readonly pollMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.pollMs);
    this.timer.unref();
  }

  /** One pass over the announced windows unless one is running. */
  poll(): Promise<void> {
    this.running ??= this.pass()
      .catch((e: unknown) => this.logger.warn({ err: e }, 'shard jobs pass failed; retried next poll'))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async pass(): Promise<void> {
    if (![...this.contexts.values()].some((c) => c.shardJobs)) return;
    for (const o of await this.store.list(`${SHARD_JOBS}/`)) {
      const job = parseShardJobName(o.name);
      const ctx = job && this.contexts.get(job.eventType);
      const options = ctx?.shardJobs;
      if (!job || !ctx || !options) continue;
      const w = assignWindow(job.start, ctx.windowMs);
      while (!this.stopping && (await this.queue.run(() => runOneOpenShardJob(ctx, w, options), { alone: true })))
        this.jobsRun++;
    }
  }

  /** No more jobs start; a running one is left to finish or to be taken over when its claim expires. */
  stop(): void {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
  }
}

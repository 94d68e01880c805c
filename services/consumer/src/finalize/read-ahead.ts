import { Defaults } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import type { FinalizeContext } from './context.js';
import type { PlanFile } from './plan.js';

/** How far a finalize reads ahead of the staged file it scans. */
export interface ReadAheadLimits {
  /** Reads in flight ahead of the file being scanned. */
  files: number;
  /** Their planned bytes at most (one file is always read, whatever its size). */
  bytes: number;
}

const DEFAULT_READ_AHEAD: ReadAheadLimits = {
  files: Defaults.finalizeReadAheadFiles,
  bytes: Defaults.finalizeReadAheadBytes,
};

/**
 * The planned staged files of a finalize, read in plan order with the next ones' gets already in
 * flight, so the store's latency is paid once per batch rather than once per file. A close of 60
 * small staged files (one of 255 types) read one after another spent most of its time waiting
 * for reads, and on GCS each is a round trip of tens of milliseconds.
 */
export class StagedReads {
  private readonly inFlight: Promise<Buffer | undefined>[] = [];
  /** Index of the next file to start reading, and of the next one handed out. */
  private started = 0;
  private taken = 0;
  private bytesAhead = 0;

  constructor(
    private readonly store: Pick<ObjectStore, 'get'>,
    private readonly files: readonly PlanFile[],
    private readonly limits: ReadAheadLimits,
  ) {}

  /** The bytes of `file`, the next one in plan order (undefined: it is missing). */
  take(file: PlanFile): Promise<Buffer | undefined> {
    if (this.files[this.taken] !== file) throw new Error(`staged files taken out of plan order at ${file.name}`);
    this.fill();
    const read = this.inFlight.shift()!;
    this.bytesAhead -= file.size;
    this.taken++;
    this.fill();
    return read;
  }

  private fill(): void {
    const { files, bytes } = this.limits;
    while (this.started < this.files.length) {
      const next = this.files[this.started]!;
      const room = this.inFlight.length < files && this.bytesAhead + next.size <= bytes;
      if (this.inFlight.length > 0 && !room) return;
      const read = this.store.get(next.name);
      // a read never taken (the scan failed first) must not surface as an unhandled rejection
      read.catch(() => undefined);
      this.inFlight.push(read);
      this.bytesAhead += next.size;
      this.started++;
    }
  }
}

/** The read-ahead of a finalize of `files`, with the default limits. */
export function stagedReads(ctx: FinalizeContext, files: readonly PlanFile[]): StagedReads {
  return new StagedReads(ctx.store, files, DEFAULT_READ_AHEAD);
}

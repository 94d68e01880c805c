import { type Clock, Defaults } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import {
  type ClosedCursor,
  readCursor,
  type Lease,
  globalWatermark,
  type IntervalWindow,
  isClosable,
  nextWindow,
} from '@hourglass/bucket-format';
import { writeCursor } from '../coordination.js';
import type { ReplicaWatermark } from './replica-watermark.js';
import { rewriteIntervalMs } from './replica-lease.js';

/**
 * What one replica knows of its type's progress: the closed cursor (`_watermarks/<type>/_closed.json`,
 * the last window closed in order) and the type's global watermark, which never decreases.
 */
export class TypeProgress {
  private current: ClosedCursor | undefined;
  private globalWm: number | undefined;
  /** The cursor holds a close not yet written to the store; when it was last written. */
  private unwritten = false;
  private writtenAt = -Infinity;
  private readAt = -Infinity;

  constructor(
    private readonly scope: { eventType: string; graceMs: number },
    private readonly deps: { store: ObjectStore; clock: Clock },
    private readonly watermark: ReplicaWatermark,
  ) {}

  private get eventType(): string {
    return this.scope.eventType;
  }

  get cursor(): ClosedCursor | undefined {
    return this.current;
  }

  get global(): number | undefined {
    return this.globalWm;
  }

  /** Reads the cursor; a newer one raises this replica's watermark and the global one. */
  async readCursor(): Promise<void> {
    const at = this.deps.clock.now();
    this.note(await readCursor(this.deps.store, this.eventType));
    this.readAt = at;
  }

  /**
   * Reads the cursor when it may have moved: no cursor known yet, a close due by the global
   * watermark (the next window's end + grace passed), or `Defaults.cursorRefresh` since the last
   * read. So a replica learns of a close within a tick of it being due, as when it read every tick.
   */
  async readCursorIfDue(): Promise<void> {
    const next = this.current && nextWindow(this.current.lastClosed);
    const due =
      next === undefined ||
      (this.globalWm !== undefined && isClosable(next, this.globalWm, this.scope.graceMs)) ||
      this.deps.clock.now() - this.readAt >= Defaults.cursorRefresh;
    if (due) await this.readCursor();
  }

  private note(cursor: ClosedCursor | undefined): void {
    if (!cursor) return;
    if (!this.current || cursor.lastClosed.start > this.current.lastClosed.start) this.current = cursor;
    // Safe to raise: windows up to the cursor are closed whatever this replica still holds.
    this.watermark.raiseTo(cursor.watermark);
    if (this.globalWm === undefined || cursor.watermark > this.globalWm) this.globalWm = cursor.watermark;
  }

  /** The global watermark over `leases` (live and stale ones), never below the last one. */
  updateGlobal(leases: readonly Lease[], now: number): number | undefined {
    this.globalWm = globalWatermark(leases, now, this.globalWm);
    return this.globalWm;
  }

  /** `w` closed at watermark `global`: the cursor moves to it (written by writeCursorIfDue). */
  markClosed(w: IntervalWindow, global: number): void {
    this.current = { eventType: this.eventType, lastClosed: w, watermark: global, updatedAt: this.deps.clock.now() };
    this.unwritten = true;
  }

  /**
   * The cursor is written once per close pass, and no sooner than the store's rewrite interval
   * after its last write (GCS: one write per second per object name); a pass that may not write
   * leaves it for the next. A cursor behind the manifests only makes a closer re-check them.
   */
  async writeCursorIfDue(): Promise<void> {
    const now = this.deps.clock.now();
    if (!this.current || !this.unwritten || now - this.writtenAt < rewriteIntervalMs(this.deps.store)) return;
    await writeCursor(this.deps.store, this.current);
    this.unwritten = false;
    this.writtenAt = this.deps.clock.now();
  }

  /** At stop: writes a close not written yet, whatever the interval. */
  async writeCursorIfUnwritten(): Promise<void> {
    if (this.current && this.unwritten) await writeCursor(this.deps.store, this.current);
  }
}

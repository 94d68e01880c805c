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

/** The first wait between cursor reads while a close is due: a tick. */
const CURSOR_DUE_FIRST_WAIT = 1_000;

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
  /** While a close is due: how long after the last read the next one comes (doubles up to cursorRefresh). */
  private dueWaitMs = 0;

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
   * Reads the cursor when it may have moved: while no cursor is known or a close is due by the
   * global watermark (the next window's end + grace passed), at once and then 1, 2, 4 … s apart
   * until it moves; otherwise every `Defaults.cursorRefresh`. A live replica never needs it to
   * route an event (its own watermark is past any window a closer closed while counting it);
   * it raises a joining or lagging replica and keeps the status current. Reading every tick while
   * a close was due cost a 100-type replica ~4,300 cursor reads a minute when closes lagged.
   */
  async readCursorIfDue(): Promise<void> {
    const now = this.deps.clock.now();
    const next = this.current && nextWindow(this.current.lastClosed);
    const closeDue =
      next === undefined || (this.globalWm !== undefined && isClosable(next, this.globalWm, this.scope.graceMs));
    if (!closeDue) this.dueWaitMs = 0;
    const waitMs = closeDue ? this.dueWaitMs : Defaults.cursorRefresh;
    if (now - this.readAt < waitMs) return;
    await this.readCursor();
    if (closeDue)
      this.dueWaitMs = Math.min(Defaults.cursorRefresh, Math.max(CURSOR_DUE_FIRST_WAIT, 2 * this.dueWaitMs));
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

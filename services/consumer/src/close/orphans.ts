import { HourglassError, type Logger } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import { stagingDir, type IntervalWindow, earliestOpenWindow, nextWindow, windowLabel } from '@hourglass/bucket-format';
import type { TypeScope } from '../config.js';
import { createOrSame } from '../finalize/publish.js';

export interface OrphanMove {
  store: ObjectStore;
  logger: Logger;
  /** This replica's watermark now: the target is the earliest window it still routes to. */
  watermark: number;
  /** The last window closed for the type, if known: the target is after it. */
  lastClosed: IntervalWindow | undefined;
  /** Pins the watermark (returns the release) so the target window stays open while copying. */
  hold: (ts: number) => () => void;
  /** Self-fencing before the copy is written. */
  ensureLease: () => Promise<void>;
}

/**
 * A staged file found in a closed window's staging after its manifest: its events are
 * copied (same bytes) as a late file into the earliest open window, then it is deleted.
 * The watermark is held while copying so the target window stays open.
 */
export async function moveOrphan(scope: TypeScope, m: OrphanMove, name: string, from: IntervalWindow): Promise<void> {
  const release = m.hold(m.watermark);
  try {
    const { eventType, windowMs, graceMs } = scope;
    let notBefore = nextWindow(from);
    if (m.lastClosed && m.lastClosed.start >= notBefore.start) notBefore = nextWindow(m.lastClosed);
    const target = earliestOpenWindow(m.watermark, windowMs, graceMs, notBefore);
    const file = name.slice(name.lastIndexOf('/') + 1);
    const moved = `${stagingDir(eventType, target)}late-orphan-${from.start}-${file}`;
    const data = await m.store.get(name);
    if (!data) return;
    await m.ensureLease();
    if (!(await createOrSame(m.store, moved, data))) {
      throw new HourglassError('STORAGE_PRECONDITION_FAILED', `${moved} exists`);
    }
    await m.store.delete(name);
    m.logger.warn({ orphan: name, movedTo: moved, from: windowLabel(from), to: windowLabel(target) }, 'orphan moved');
  } finally {
    release();
  }
}

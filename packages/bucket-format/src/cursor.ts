import type { IntervalWindow } from './windows.js';

/**
 * The closed cursor of a type, `_watermarks/<type>/_closed.json`: the last window closed in order.
 * Closers write it after each close; replicas and `hourglass status` read it.
 */
export interface ClosedCursor {
  eventType: string;
  /** The last window closed in order; every earlier window since the type's first has a manifest. */
  lastClosed: IntervalWindow;
  /** The global watermark that closed it; replicas start no lower. */
  watermark: number;
  updatedAt: number;
}

export function serializeCursor(cursor: ClosedCursor): Buffer {
  return Buffer.from(`${JSON.stringify(cursor)}\n`);
}

/** The cursor in `data`, or undefined when it is unreadable or of another type. */
export function parseCursor(data: Buffer, eventType: string): ClosedCursor | undefined {
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<ClosedCursor>;
    if (
      v.eventType === eventType &&
      typeof v.watermark === 'number' &&
      typeof v.lastClosed?.start === 'number' &&
      typeof v.lastClosed.end === 'number'
    ) {
      return v as ClosedCursor;
    }
  } catch {
    /* unreadable cursor: closers rebuild it from the staged windows */
  }
  return undefined;
}

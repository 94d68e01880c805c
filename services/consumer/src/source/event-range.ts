import { Defaults } from '@hourglass/common';
import { type IntervalWindow, assignWindow } from '@hourglass/bucket-format';

/**
 * The range of `meta.gateway_ts` a deployment can have produced, as seen at `now` on the
 * consumer's clock: no older than a subscription keeps messages (plus publish delay and skew),
 * no further ahead than gateway clock skew. Pure functions of the time they are given.
 */
export interface EventRange {
  oldest: number;
  newest: number;
}

export function eventRangeAt(now: number): EventRange {
  return { oldest: now - Defaults.maxEventAge, newest: now + Defaults.maxEventAhead };
}

/** Why `gatewayTs` is outside `range`, or undefined when it is inside. */
export function eventTimeProblem(gatewayTs: number, range: EventRange): string | undefined {
  if (gatewayTs >= range.oldest && gatewayTs <= range.newest) return undefined;
  const shown = Number.isFinite(gatewayTs) && Math.abs(gatewayTs) < 8.64e15 ? new Date(gatewayTs).toISOString() : '-';
  const side = gatewayTs < range.oldest ? 'older than any message a subscription still holds' : 'ahead of the clock';
  return `gateway_ts ${gatewayTs} (${shown}) is ${side}: outside [${new Date(range.oldest).toISOString()}, ${new Date(range.newest).toISOString()}]`;
}

/**
 * The first window a closer closes when nothing is closed yet and HOURGLASS_START is unset:
 * the earliest staged window, but never before the window of the oldest event the deployment
 * can have produced (staged files older than that predate the check in message-checks.ts).
 */
export function firstWindowToClose(
  staged: Iterable<IntervalWindow>,
  now: number,
  windowMs: number,
): IntervalWindow | undefined {
  const floor = assignWindow(eventRangeAt(now).oldest, windowMs);
  let first: IntervalWindow | undefined;
  for (const w of staged) {
    if (w.start >= floor.start && (!first || w.start < first.start)) first = w;
  }
  return first;
}

import { HourglassError } from '@hourglass/common';

/**
 * Event-time windows, Beam style: a window is a value `[start, end)` in epoch ms, and
 * assigning an event to its window is a pure function of its `meta.gateway_ts`.
 */
export interface IntervalWindow {
  readonly start: number;
  readonly end: number;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Window sizes are whole minutes that divide a day, so every window has one Hive partition path. */
export function checkWindowSize(sizeMs: number): string | undefined {
  if (!Number.isInteger(sizeMs) || sizeMs < MINUTE || sizeMs % MINUTE !== 0 || DAY % sizeMs !== 0) {
    return `window size ${sizeMs}ms must be a whole number of minutes that divides a day (1m, 5m, 15m, 1h, 2h, ...)`;
  }
  return undefined;
}

/** Every allowed window size, smallest first: the windows that may hold an instant, whatever the size. */
export function windowSizes(): number[] {
  const sizes: number[] = [];
  for (let size = MINUTE; size <= DAY; size += MINUTE) if (DAY % size === 0) sizes.push(size);
  return sizes;
}

export function assignWindow(gatewayTs: number, sizeMs: number): IntervalWindow {
  const start = Math.floor(gatewayTs / sizeMs) * sizeMs;
  return { start, end: start + sizeMs };
}

export function nextWindow(w: IntervalWindow): IntervalWindow {
  const size = w.end - w.start;
  return { start: w.end, end: w.end + size };
}

/** A window may close once the watermark reaches its end plus the grace period. */
export function isClosable(w: IntervalWindow, watermark: number, graceMs: number): boolean {
  return w.end + graceMs <= watermark;
}

/**
 * The first window that is still open at `watermark`: the first with end + grace > watermark.
 * Late events go there. `notBefore` (the window after the last closed one) keeps a replica whose
 * own watermark lags behind the closed windows from choosing a window that another replica closed.
 */
export function earliestOpenWindow(
  watermark: number,
  sizeMs: number,
  graceMs: number,
  notBefore?: IntervalWindow,
): IntervalWindow {
  // end + grace > watermark  <=>  start > watermark - grace - size
  let w = Number.isFinite(watermark)
    ? assignWindow(watermark - graceMs - sizeMs, sizeMs)
    : assignWindow(notBefore?.start ?? 0, sizeMs);
  while (isClosable(w, watermark, graceMs)) w = nextWindow(w);
  if (notBefore && w.start < notBefore.start) w = notBefore;
  return w;
}

/**
 * The window an event goes to: its own window while that is open, otherwise (late) the
 * earliest open window. `lastClosed` is the last window known closed for the type.
 */
export function routeEvent(
  gatewayTs: number,
  watermark: number,
  sizeMs: number,
  graceMs: number,
  lastClosed?: IntervalWindow,
): { window: IntervalWindow; late: boolean } {
  const own = assignWindow(gatewayTs, sizeMs);
  const closedByCursor = lastClosed !== undefined && own.start <= lastClosed.start;
  if (!closedByCursor && !isClosable(own, watermark, graceMs)) return { window: own, late: false };
  const notBefore = lastClosed ? nextWindow(lastClosed) : undefined;
  return { window: earliestOpenWindow(watermark, sizeMs, graceMs, notBefore), late: true };
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * Hive-style partition of a window: `<type>/dt=YYYY-MM-DD/hour=HH` for windows of whole
 * hours, plus `/minute=MM` for shorter ones (tests and the demo use one minute). UTC.
 */
export function partitionPath(eventType: string, w: IntervalWindow): string {
  const d = new Date(w.start);
  const base = `${eventType}/dt=${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}/hour=${pad(d.getUTCHours())}`;
  return (w.end - w.start) % HOUR === 0 ? base : `${base}/minute=${pad(d.getUTCMinutes())}`;
}

const PARTITION = /^dt=(\d{4})-(\d{2})-(\d{2})\/hour=(\d{2})(?:\/minute=(\d{2}))?$/;

/** Inverse of partitionPath for the part after `<type>/`; undefined when it is not a partition. */
export function parsePartition(relative: string, sizeMs: number): IntervalWindow | undefined {
  const m = PARTITION.exec(relative);
  if (!m) return undefined;
  const start = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5] ?? 0));
  if (start % sizeMs !== 0) return undefined;
  return { start, end: start + sizeMs };
}

export function windowLabel(w: IntervalWindow): string {
  return `[${new Date(w.start).toISOString()}, ${new Date(w.end).toISOString()})`;
}

export function assertWindowSize(sizeMs: number, setting: string): void {
  const problem = checkWindowSize(sizeMs);
  if (problem) throw new HourglassError('CONFIG_INVALID', `${setting}: ${problem}`, { path: setting });
}

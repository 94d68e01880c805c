/**
 * The gateway's client rules (docs/http-api.md, "Client rules"), free of any platform API:
 * an id per event before the first attempt, re-sends only of `retry` answers and transient
 * failures, with exponential backoff and full jitter, never sooner than `Retry-After`.
 */

/** Whole-request answers that no retry can fix (413 is handled by splitting the batch). */
export const PERMANENT_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404, 405, 415, 422]);

/** A v4 UUID: the dedup key the consumer removes copies by. `crypto.randomUUID` needs a secure context. */
export function newEventId(): string {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Full jitter: uniform in [0, min(max, initial * 2^attempt)]. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
  return Math.round(random() * Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30)));
}

/** `Retry-After` in seconds as milliseconds; undefined when absent or not a number. */
export function retryAfterMs(header: string | null | undefined): number | undefined {
  if (typeof header !== 'string') return undefined;
  const seconds = Number(header);
  return header.trim() !== '' && Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** Durations are milliseconds, branded so a count cannot be passed where a duration goes. */
export type Duration = number & { readonly __unit: 'ms' };

export const ms = (n: number): Duration => n as Duration;
export const seconds = (n: number): Duration => (n * 1000) as Duration;
export const minutes = (n: number): Duration => (n * 60_000) as Duration;
export const hours = (n: number): Duration => (n * 3_600_000) as Duration;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "250ms", "5s", "1m", "1h" or a bare number of milliseconds. */
export function parseDuration(text: string): Duration | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]);
  const unit = UNITS[m[2] ?? 'ms'] ?? 1;
  return Math.round(value * unit) as Duration;
}

/** Parses "64kb", "10mb", "1gb" or a bare number of bytes. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase();
  const scale: Record<string, number> = {
    b: 1,
    kb: 1000,
    mb: 1e6,
    gb: 1e9,
    kib: 1024,
    mib: 1024 ** 2,
    gib: 1024 ** 3,
  };
  return Math.round(Number(m[1]) * (scale[unit] ?? 1));
}

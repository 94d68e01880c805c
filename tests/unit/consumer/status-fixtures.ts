import type { StatusSnapshot, TypeView, WindowCell, WindowState } from '@hourglass/consumer/status/snapshot';

/** Fixed input for the status page's renderer: types with a grid of windows, leases and dead letters. */
export const NOW = Date.UTC(2026, 0, 1, 12, 30, 20);
export const MINUTE = 60_000;

export function windowsOf(states: readonly WindowState[], end = NOW): WindowCell[] {
  const newest = Math.floor(end / MINUTE) * MINUTE;
  return states.map((state, i) => {
    const start = newest - (states.length - 1 - i) * MINUTE;
    const closed = state === 'closed' || state === 'empty';
    return {
      start,
      end: start + MINUTE,
      state,
      deadLetters: 0,
      ...(closed ? { records: state === 'closed' ? 100 + i : 0, late: 0, duplicates: 0 } : {}),
    };
  });
}

export const HEALTHY_GRID: WindowState[] = [...Array<WindowState>(10).fill('closed'), 'open', 'open'];

export function typeView(eventType: string, overrides: Partial<TypeView> = {}): TypeView {
  return {
    eventType,
    windowMs: MINUTE,
    graceMs: 10_000,
    watermark: NOW - 5_000,
    lastClosed: NOW - 3 * MINUTE,
    windows: windowsOf(HEALTHY_GRID),
    leases: [{ identity: `${eventType}-replica.abc`, state: 'live', watermark: NOW - 5_000, renewedAt: NOW - 1_000 }],
    deadLetters: { count: 0, days: ['2026-01-01'], reasons: [], read: 0 },
    local: undefined,
    problems: [],
    ...overrides,
  };
}

export function snapshotOf(types: TypeView[]): StatusSnapshot {
  return { generatedAt: NOW, store: 'file:///data', replicaId: 'replica-1', types, storeReads: 7, ttlMs: 5_000 };
}

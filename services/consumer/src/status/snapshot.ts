import type { LeaseState } from '@hourglass/bucket-format';

/**
 * What the status page shows, as plain data: the collector fills it from the store and the
 * serving replica, the renderer turns it into HTML. Pure functions here decide a window's state
 * and a type's problems, so both are unit-tested with fixed input.
 */

/**
 * closed: its `_SUCCESS` exists and holds records. empty: closed with no record.
 * finalizing: its close is under way (a committed `_plan.json`) or due (the global watermark
 * passed end + grace). open: may still receive events. none: before the type's first closed
 * window and nothing staged (it will never get a manifest).
 */
export type WindowState = 'closed' | 'empty' | 'finalizing' | 'open' | 'none';

export interface WindowCell {
  start: number;
  end: number;
  state: WindowState;
  /** From the manifest (closed and empty windows). */
  records?: number;
  late?: number;
  duplicates?: number;
  /** Staged part files found (windows not closed; counted only when staging was read). */
  stagedFiles?: number;
  /** Dead letters whose event time falls into the window (of those whose reasons were read). */
  deadLetters: number;
}

export interface LeaseView {
  /** `<replicaId>.<incarnation>` */
  identity: string;
  state: LeaseState;
  /** null: the replica knows nothing yet. */
  watermark: number | null;
  renewedAt: number;
}

export interface DeadLetterReason {
  code: string;
  message: string;
  count: number;
  latestAt: number;
}

export interface DeadLetterView {
  /** Dead letters in the days the grid shows (by object name, all counted). */
  count: number;
  days: string[];
  /** Reasons of the ones read so far, latest first. */
  reasons: DeadLetterReason[];
  /** How many of `count` have been read (at most a bounded number per refresh). */
  read: number;
}

/** The serving replica's own view of a type (not from the store). */
export interface LocalView {
  heldEvents: number;
  events: number;
  deadLettered: number;
  watermark: number | null;
}

export interface TypeView {
  eventType: string;
  windowMs: number;
  graceMs: number;
  /** Global watermark (minimum over live and stale leases); undefined when no lease counts. */
  watermark: number | undefined;
  /** Start of the last window closed in order (the cursor). */
  lastClosed: number | undefined;
  /** The grid: most recent windows, oldest first. */
  windows: WindowCell[];
  leases: LeaseView[];
  deadLetters: DeadLetterView;
  local: LocalView | undefined;
  /** Why a person should look at this type; empty when all is well. */
  problems: string[];
}

export interface StatusSnapshot {
  generatedAt: number;
  store: string;
  replicaId: string;
  types: TypeView[];
  /** Store reads the refresh that built this snapshot made (lists, gets, folder listings). */
  storeReads: number;
  /** How long a snapshot is reused: views within it cost no store read. */
  ttlMs: number;
}

/** What is known of a window that has no manifest. */
export interface UnclosedWindowFacts {
  start: number;
  end: number;
  graceMs: number;
  watermark: number | undefined;
  /** Start of the last closed window, if any. */
  lastClosed: number | undefined;
  /** A committed `_plan.json` in its staging folder. */
  planned: boolean;
  stagedFiles: number;
}

export function unclosedWindowState(f: UnclosedWindowFacts): WindowState {
  if (f.planned) return 'finalizing';
  const closable = f.watermark !== undefined && f.end + f.graceMs <= f.watermark;
  if (!closable) return 'open';
  // A type's closing starts at its first staged window (or after its cursor): an empty window
  // before that never gets a manifest.
  if (f.lastClosed === undefined ? f.stagedFiles > 0 : f.start > f.lastClosed) return 'finalizing';
  return 'none';
}

export function manifestWindowState(records: number): WindowState {
  return records > 0 ? 'closed' : 'empty';
}

/** Problems of a type, in the order a person should look at them. */
export function problemsOf(
  view: Pick<TypeView, 'leases' | 'watermark' | 'graceMs' | 'deadLetters'>,
  now: number,
  readError?: string,
): string[] {
  const problems: string[] = [];
  if (readError !== undefined) problems.push(`store read failed: ${readError}`);
  if (!view.leases.some((l) => l.state === 'live')) problems.push('no live replica: the watermark cannot move');
  // An expired lease counts no more (it is deleted a ttl later); a stale one still holds the watermark.
  for (const l of view.leases) {
    if (l.state === 'stale') problems.push(`replica ${l.identity} stale: holds the watermark`);
  }
  if (view.watermark !== undefined && Number.isFinite(view.watermark) && now - view.watermark > view.graceMs) {
    problems.push(`watermark ${formatDuration(now - view.watermark)} behind, past the grace: windows close late`);
  }
  if (view.deadLetters.count > 0) problems.push(`${view.deadLetters.count} dead letter(s)`);
  return problems;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (Math.abs(s) < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (Math.abs(m) < 120) return `${m} min`;
  return `${Math.round(m / 60)} h`;
}

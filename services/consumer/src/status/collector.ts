import type { Clock } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import {
  readCursor,
  LeaseBoard,
  readLeaseBoard,
  manifestName,
  planName,
  stagingDir,
  isStagedDataFile,
  parseManifest,
  globalWatermark,
  leaseIdentity,
  leaseState,
  type IntervalWindow,
  assignWindow,
} from '@hourglass/bucket-format';
import { DeadLetterReader } from './dead-letters.js';
import {
  type LocalView,
  type StatusSnapshot,
  type TypeView,
  type WindowCell,
  manifestWindowState,
  problemsOf,
  unclosedWindowState,
} from './snapshot.js';

/**
 * Builds the status page's snapshot from the store and the serving replica, with bounded reads:
 * one refresh serves every view for `ttlMs` (concurrent views share it), and per type a refresh
 * reads the lease folder (1 list + one get per lease and the cursor), the manifests of windows
 * that closed since the last refresh (each read once: manifests never change), one staging folder
 * listing per window whose close is due but not done (usually none), and the dead-letter folders
 * of the grid's days (at most every DEAD_LETTER_LIST_EVERY; new bodies read at most
 * DEAD_LETTER_READS per refresh). No listing of a type's partitions or staging tree.
 */
export interface StatusCollectorOptions {
  store: ObjectStore;
  clock: Clock;
  eventTypes: readonly string[];
  windowMs: number;
  graceFor: (eventType: string) => number;
  replicaId: string;
  ttlMs: number;
  /** Windows per type in the grid, newest last. */
  gridWindows?: number;
  /** The serving replica's own state of a type, when it serves it. */
  local?: (eventType: string) => LocalView | undefined;
}

/** What the page keeps of a manifest: its counts (the manifest itself is served on demand). */
interface ManifestCounts {
  records: number;
  late: number;
  duplicates: number;
}

const DEFAULT_GRID = 12;
/** Types read at once during a refresh: 100 types take a few round trips, not 100. */
const TYPE_PARALLELISM = 8;
/** Bound on the manifest counts kept (immutable, so never refreshed): 12 windows of 100 types fit 8 times over. */
const MANIFEST_CACHE_ENTRIES = 10_000;

export class StatusCollector {
  private cached: StatusSnapshot | undefined;
  private refreshing: Promise<StatusSnapshot> | undefined;
  /** Manifest counts by object name; null: no manifest, and none will come (before the cursor). */
  private readonly manifests = new Map<string, ManifestCounts | null>();
  private readonly previousWatermark = new Map<string, number>();
  private readonly deadLetters: DeadLetterReader;
  private readonly known: ReadonlySet<string>;

  constructor(private readonly options: StatusCollectorOptions) {
    this.deadLetters = new DeadLetterReader();
    this.known = new Set(options.eventTypes);
  }

  /** The current snapshot: cached for ttlMs, one refresh at a time. */
  snapshot(): Promise<StatusSnapshot> {
    const now = this.options.clock.now();
    if (this.cached && now - this.cached.generatedAt < this.options.ttlMs) return Promise.resolve(this.cached);
    this.refreshing ??= this.refresh(now).finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** The manifest bytes of one window of a served type, or undefined (unknown type, no window, not closed). */
  async manifest(eventType: string, start: number): Promise<Buffer | undefined> {
    if (!this.known.has(eventType) || !Number.isSafeInteger(start) || start % this.options.windowMs !== 0) {
      return undefined;
    }
    return this.options.store.get(manifestName(eventType, { start, end: start + this.options.windowMs }));
  }

  private async refresh(now: number): Promise<StatusSnapshot> {
    let reads = 0;
    const store = countingReads(this.options.store, () => reads++);
    const types: TypeView[] = new Array(this.options.eventTypes.length);
    const indexes = this.options.eventTypes.map((_, i) => i);
    // every type's leases from one listing of _watermarks/ (replica leases hold all their types)
    const board = await readLeaseBoard(store).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    await boundedEach(indexes, TYPE_PARALLELISM, async (i) => {
      types[i] = await this.readType(store, board, this.options.eventTypes[i]!, now);
    });
    const snapshot: StatusSnapshot = {
      generatedAt: now,
      store: this.options.store.url,
      replicaId: this.options.replicaId,
      types,
      storeReads: reads,
      ttlMs: this.options.ttlMs,
    };
    this.cached = snapshot;
    return snapshot;
  }

  private async readType(
    store: ObjectStore,
    board: LeaseBoard | Error,
    eventType: string,
    now: number,
  ): Promise<TypeView> {
    const graceMs = this.options.graceFor(eventType);
    const local = this.options.local?.(eventType);
    const view: TypeView = {
      eventType,
      windowMs: this.options.windowMs,
      graceMs,
      watermark: undefined,
      lastClosed: undefined,
      windows: [],
      leases: [],
      deadLetters: { count: 0, days: [], reasons: [], read: 0 },
      local,
      problems: [],
    };
    let readError: string | undefined;
    try {
      if (board instanceof Error) throw board;
      const leases = board.ofType(eventType);
      const lastClosed = (await readCursor(store, eventType))?.lastClosed;
      const watermark = globalWatermark(leases, now, this.previousWatermark.get(eventType));
      if (watermark !== undefined) this.previousWatermark.set(eventType, watermark);
      view.watermark = watermark;
      view.lastClosed = lastClosed?.start;
      view.leases = leases
        .map((l) => ({
          identity: leaseIdentity(l),
          state: leaseState(l, now),
          watermark: Number.isFinite(l.watermark) ? l.watermark : null,
          renewedAt: l.renewedAt,
        }))
        .sort((a, b) => (a.identity < b.identity ? -1 : 1));
      view.windows = await this.readWindows(store, eventType, now, graceMs, watermark, lastClosed);
      view.deadLetters = await this.deadLetters.read(store, eventType, view.windows, now);
    } catch (e) {
      readError = (e as Error).message ?? String(e);
    }
    view.problems = problemsOf(view, now, readError);
    return view;
  }

  private async readWindows(
    store: ObjectStore,
    eventType: string,
    now: number,
    graceMs: number,
    watermark: number | undefined,
    lastClosed: IntervalWindow | undefined,
  ): Promise<WindowCell[]> {
    const size = this.options.windowMs;
    const newest = assignWindow(now, size).start;
    const cells: WindowCell[] = [];
    for (let i = (this.options.gridWindows ?? DEFAULT_GRID) - 1; i >= 0; i--) {
      const w = { start: newest - i * size, end: newest - i * size + size };
      const closedByCursor = lastClosed !== undefined && w.start <= lastClosed.start;
      const closable = watermark !== undefined && w.end + graceMs <= watermark;
      // A window the watermark has not passed has no manifest and no plan: no read needed.
      if (!closedByCursor && !closable) {
        cells.push({ ...w, state: 'open', deadLetters: 0 });
        continue;
      }
      const counts = await this.manifestCounts(store, eventType, w, closedByCursor);
      if (counts) {
        cells.push({ ...w, state: manifestWindowState(counts.records), ...counts, deadLetters: 0 });
        continue;
      }
      if (closedByCursor) {
        cells.push({ ...w, state: 'none', deadLetters: 0 });
        continue;
      }
      const staged = await store.listChildren(stagingDir(eventType, w));
      const planned = staged.objects.some((o) => o.name === planName(eventType, w));
      const stagedFiles = staged.objects.filter((o) => isStagedDataFile(o.name.slice(o.name.lastIndexOf('/') + 1)));
      const facts = { ...w, graceMs, watermark, lastClosed: lastClosed?.start, planned };
      const state = unclosedWindowState({ ...facts, stagedFiles: stagedFiles.length });
      cells.push({ ...w, state, stagedFiles: stagedFiles.length, deadLetters: 0 });
    }
    return cells;
  }

  private async manifestCounts(
    store: ObjectStore,
    eventType: string,
    w: IntervalWindow,
    closedByCursor: boolean,
  ): Promise<ManifestCounts | undefined> {
    const name = manifestName(eventType, w);
    const known = this.manifests.get(name);
    if (known !== undefined) return known ?? undefined;
    const data = await store.get(name);
    const m = data && parseManifest(data, name);
    const counts = m
      ? { records: m.counts.records, late: m.counts.late, duplicates: m.counts.duplicatesDropped }
      : null;
    // A manifest never changes; a window before the cursor without one never gets one.
    if (counts || closedByCursor) {
      if (this.manifests.size >= MANIFEST_CACHE_ENTRIES) this.manifests.delete(this.manifests.keys().next().value!);
      this.manifests.set(name, counts);
    }
    return counts ?? undefined;
  }
}

/** The store as the collector sees it: every read counted. */
function countingReads(store: ObjectStore, count: () => void): ObjectStore {
  return {
    url: store.url,
    get: (name) => (count(), store.get(name)),
    getRange: (name, start, end) => (count(), store.getRange(name, start, end)),
    list: (prefix) => (count(), store.list(prefix)),
    listChildren: (prefix) => (count(), store.listChildren(prefix)),
    exists: (name) => (count(), store.exists(name)),
    createIfAbsent: () => readOnly(),
    put: () => readOnly(),
    delete: () => readOnly(),
    renameFolder: () => readOnly(),
    deleteMany: () => readOnly(),
    deleteFolder: () => readOnly(),
  };
}

function readOnly(): never {
  throw new Error('the status page only reads the store');
}

async function boundedEach<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

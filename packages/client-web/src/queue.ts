/**
 * The client's queue of events not yet known to be accepted, bounded and kept in
 * localStorage, so a reload (or a crash) loses nothing: the next page load sends them
 * again with the same ids. localStorage rather than IndexedDB because `pagehide` handlers
 * must finish synchronously.
 */
export interface QueuedEvent {
  type: string;
  id: string;
  client_ts: number;
  payload: Record<string, unknown>;
  /** When a beacon carried it (its answer cannot be read); a later send re-uses the id. */
  beaconedAt?: number;
}

export interface StoreLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export class PersistentQueue {
  private items: QueuedEvent[];

  constructor(
    private readonly store: StoreLike | undefined,
    private readonly storageKey: string,
    private readonly capacity: number,
  ) {
    this.items = this.load();
  }

  get length(): number {
    return this.items.length;
  }

  all(): readonly QueuedEvent[] {
    return this.items;
  }

  /** Appends; returns how many of the oldest events were dropped to stay within capacity. */
  push(event: QueuedEvent): number {
    this.items.push(event);
    const over = Math.max(0, this.items.length - this.capacity);
    this.items.splice(0, over);
    this.save();
    return over;
  }

  /** Removes the events with these ids (the queue may have moved on while they were in flight). */
  remove(ids: ReadonlySet<string>): void {
    if (ids.size === 0) return;
    this.items = this.items.filter((e) => !ids.has(e.id));
    this.save();
  }

  save(): void {
    try {
      this.store?.setItem(this.storageKey, JSON.stringify(this.items));
    } catch {
      // Quota or privacy mode: the queue still works for this page's lifetime.
    }
  }

  private load(): QueuedEvent[] {
    try {
      const parsed: unknown = JSON.parse(this.store?.getItem(this.storageKey) ?? '[]');
      return Array.isArray(parsed) ? (parsed as QueuedEvent[]).slice(-this.capacity) : [];
    } catch {
      return [];
    }
  }
}

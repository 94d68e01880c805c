import type { Route } from './routes.js';

/** Requests that mutate one object: GCS limits how often each name may be written. */
export const ObjectMutationRoutes: readonly Route[] = [
  'upload.multipart',
  'upload.media',
  'upload.resumable.start',
  'upload.resumable.chunk',
  'object.patch',
  'object.delete',
  'object.compose',
];

/**
 * GCS's per-object write limit (about one mutation per second of one name; a faster one is
 * answered 429 `rateLimitExceeded`). Off by default; `enable()` turns it on at run time, so a
 * test can show that a client spaces its writes (leases, cursors) instead of hammering a name.
 */
export class WriteRateLimit {
  private minIntervalMs = 0;
  private readonly lastWrite = new Map<string, number>();
  /** Writes refused so far. */
  refused = 0;
  /** Writes refused so far per object name (without its bucket): which names a client writes too often. */
  readonly refusedByName = new Map<string, number>();

  enable(minIntervalMs = 1000): void {
    this.minIntervalMs = minIntervalMs;
  }

  disable(): void {
    this.minIntervalMs = 0;
    this.lastWrite.clear();
    this.refused = 0;
    this.refusedByName.clear();
  }

  get enabled(): boolean {
    return this.minIntervalMs > 0;
  }

  /** True (and counted) when writing `name` now would come too soon after its last write. */
  refuses(route: Route, bucket: string, name: string | undefined, now = Date.now()): boolean {
    if (!this.enabled || name === undefined || !ObjectMutationRoutes.includes(route)) return false;
    // A resumable upload's middle chunks write nothing yet; its start is what GCS limits.
    if (route === 'upload.resumable.chunk') return false;
    const last = this.lastWrite.get(`${bucket}/${name}`);
    if (last === undefined || now - last >= this.minIntervalMs) return false;
    this.refused++;
    this.refusedByName.set(name, (this.refusedByName.get(name) ?? 0) + 1);
    return true;
  }

  /** Records a write of `name` that changed stored state. */
  noteWrite(route: Route, bucket: string, name: string | undefined, now = Date.now()): void {
    if (this.enabled && name !== undefined && ObjectMutationRoutes.includes(route)) {
      this.lastWrite.set(`${bucket}/${name}`, now);
    }
  }
}

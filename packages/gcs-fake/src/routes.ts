/** Every JSON-API operation the fake serves; faults and request counters are keyed by these. */
export const Routes = [
  'bucket.insert',
  'bucket.get',
  'bucket.delete',
  'object.list',
  'object.get',
  'object.download',
  'object.patch',
  'object.delete',
  'object.compose',
  'upload.multipart',
  'upload.media',
  'upload.resumable.start',
  'upload.resumable.chunk',
  'upload.resumable.status',
  'folder.insert',
  'folder.get',
  'folder.delete',
  'folder.rename',
  'operation.get',
  'unknown',
] as const;

export type Route = (typeof Routes)[number];

/** Routes that change stored state: the only ones a "drop after commit" fault applies to. */
export const WriteRoutes: readonly Route[] = [
  'bucket.insert',
  'bucket.delete',
  'object.patch',
  'object.delete',
  'object.compose',
  'upload.multipart',
  'upload.media',
  'upload.resumable.chunk',
  'upload.resumable.status',
  'folder.insert',
  'folder.delete',
  'folder.rename',
];

/** Routes that carry object bytes from the client. */
export const UploadRoutes: readonly Route[] = ['upload.multipart', 'upload.media', 'upload.resumable.chunk'];

/** Coarse store operations, for reports of "store operations per tick": each route counts as one. */
export type Operation = 'list' | 'get' | 'insert' | 'delete' | 'rename' | 'other';

export function operationOf(route: Route): Operation {
  if (route === 'object.list') return 'list';
  if (route === 'folder.rename') return 'rename';
  if (route === 'object.delete' || route === 'folder.delete' || route === 'bucket.delete') return 'delete';
  if (route.startsWith('upload.') || route === 'folder.insert' || route === 'bucket.insert') return 'insert';
  if (route === 'object.compose' || route === 'object.patch') return 'insert';
  if (route === 'unknown') return 'other';
  return 'get';
}

/** Requests served so far, per route, counted before any fault is applied; and how many were in flight at once. */
export class RequestCounter {
  private readonly counts = new Map<Route, number>();
  private inFlight = 0;
  /** Most requests in flight at once since the last reset. */
  maxInFlight = 0;
  /** Object bytes served by downloads since the last reset: whole objects, and ranges (206). */
  readonly downloadBytes = { whole: 0, range: 0 };

  record(route: Route): void {
    this.counts.set(route, (this.counts.get(route) ?? 0) + 1);
  }

  /** A download answered with `bytes` of object data, of a range or of the whole object. */
  served(ranged: boolean, bytes: number): void {
    if (ranged) this.downloadBytes.range += bytes;
    else this.downloadBytes.whole += bytes;
  }

  /** A request arrived; call the returned function once it is answered (or abandoned). */
  enter(): () => void {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.inFlight--;
    };
  }

  /** Requests to one route, or to all routes when none is given. */
  count(route?: Route | readonly Route[]): number {
    if (route === undefined) return [...this.counts.values()].reduce((a, b) => a + b, 0);
    const routes: readonly Route[] = typeof route === 'string' ? [route] : route;
    return routes.reduce((sum, r) => sum + (this.counts.get(r) ?? 0), 0);
  }

  snapshot(): Partial<Record<Route, number>> {
    return Object.fromEntries(this.counts) as Partial<Record<Route, number>>;
  }

  /** Requests per coarse operation (list, get, insert, delete, rename, other). */
  byOperation(): Partial<Record<Operation, number>> {
    const out: Partial<Record<Operation, number>> = {};
    for (const [route, n] of this.counts) out[operationOf(route)] = (out[operationOf(route)] ?? 0) + n;
    return out;
  }

  reset(): void {
    this.counts.clear();
    this.maxInFlight = this.inFlight;
    this.downloadBytes.whole = 0;
    this.downloadBytes.range = 0;
  }
}

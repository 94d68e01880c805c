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

/** Requests served so far, per route, counted before any fault is applied. */
export class RequestCounter {
  private readonly counts = new Map<Route, number>();

  record(route: Route): void {
    this.counts.set(route, (this.counts.get(route) ?? 0) + 1);
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

  reset(): void {
    this.counts.clear();
  }
}

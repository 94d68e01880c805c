import { createHash } from 'node:crypto';
import type { Manifest, IntervalWindow } from '@hourglass/bucket-format';

/**
 * The closed-window notice: one Pub/Sub message on `<prefix>-closed` per window whose `_SUCCESS`
 * was published. Built from the stored manifest's bytes only, so every re-send after a crash is
 * the same message with the same `notice_id` (docs/operations.md, "Closed-window notices").
 */
export const NOTICE_TYPE = 'window.closed';
export const NOTICE_VERSION = 1;

export interface ClosedNotice {
  type: typeof NOTICE_TYPE;
  version: typeof NOTICE_VERSION;
  /** The dedup id, also the `notice_id` attribute. */
  noticeId: string;
  eventType: string;
  window: Manifest['window'];
  partition: string;
  /** The published folder, relative to the store root, and as a URL (`gs://…/` or `file:///…/`). */
  path: string;
  uri: string;
  empty: boolean;
  counts: Pick<Manifest['counts'], 'records' | 'onTime' | 'late' | 'duplicatesDropped' | 'duplicatesOfClosedWindows'>;
  files: { path: string; late: boolean; records: number; bytes: number; sha256: string }[];
  manifest: { path: string; uri: string; sha256: string };
}

export interface NoticeMessage {
  data: Buffer;
  attributes: Record<string, string>;
}

/**
 * sha256 of `window.closed|<event type>|<start ms>|<end ms>|<manifest sha256>` in hex. The manifest
 * is written once and never changes, so every copy of a window's notice carries the same id; a
 * window can have only one manifest, so the id names the window's close.
 */
export function noticeIdOf(eventType: string, w: IntervalWindow, manifestSha256: string): string {
  const key = [NOTICE_TYPE, eventType, w.start, w.end, manifestSha256].join('|');
  return createHash('sha256').update(key).digest('hex');
}

/** The notice for a published window from its manifest object's bytes. */
export function buildNotice(storeUrl: string, manifestPath: string, manifestBytes: Buffer, m: Manifest): ClosedNotice {
  const sha = createHash('sha256').update(manifestBytes).digest('hex');
  const window = { start: m.window.startMs, end: m.window.endMs };
  const root = storeUrl.endsWith('/') ? storeUrl : `${storeUrl}/`;
  const path = manifestPath.slice(0, manifestPath.lastIndexOf('/') + 1);
  const { records, onTime, late, duplicatesDropped, duplicatesOfClosedWindows } = m.counts;
  return {
    type: NOTICE_TYPE,
    version: NOTICE_VERSION,
    noticeId: noticeIdOf(m.eventType, window, sha),
    eventType: m.eventType,
    window: m.window,
    partition: m.partition,
    path,
    uri: `${root}${path}`,
    empty: records === 0,
    counts: { records, onTime, late, duplicatesDropped, duplicatesOfClosedWindows },
    files: m.files.map((f) => ({ path: f.path, late: f.late, records: f.records, bytes: f.bytes, sha256: f.sha256 })),
    manifest: { path: manifestPath, uri: `${root}${manifestPath}`, sha256: sha },
  };
}

/** The Pub/Sub message: the notice as JSON, and attributes a subscription filter can use. */
export function noticeMessage(n: ClosedNotice): NoticeMessage {
  return {
    data: Buffer.from(JSON.stringify(n)),
    attributes: {
      notice_type: n.type,
      notice_id: n.noticeId,
      event_type: n.eventType,
      window_start: n.window.start,
      window_end: n.window.end,
      partition: n.partition,
      manifest_sha256: n.manifest.sha256,
      records: String(n.counts.records),
    },
  };
}

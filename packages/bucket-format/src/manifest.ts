import { HourglassError } from '@hourglass/common';
import type { IntervalWindow } from './windows.js';

/**
 * The `_SUCCESS` manifest of a closed window. Its existence means the window is complete and
 * will never change; downstream jobs wait for it and nothing else.
 */
export interface ManifestFile {
  /** Object name relative to the store root. */
  path: string;
  /** true for late files: records whose gateway_ts is before the window (their own window had closed). */
  late: boolean;
  records: number;
  bytes: number;
  sha256: string;
  minGatewayTs: number;
  maxGatewayTs: number;
}

export interface Manifest {
  manifestVersion: 1;
  eventType: string;
  window: { start: string; end: string; startMs: number; endMs: number };
  partition: string;
  schema: { fingerprint: string; version: number };
  files: ManifestFile[];
  counts: {
    /** Records in the final files: onTime + late. */
    records: number;
    onTime: number;
    late: number;
    /** Staged copies dropped because their event_id was already in this window or, for late ones, in a closed window. */
    duplicatesDropped: number;
    /** Of duplicatesDropped: late copies of events already in a closed window. */
    duplicatesOfClosedWindows: number;
    stagedFiles: number;
    stagedRecords: number;
  };
  /** Smallest and largest gateway_ts among the records (null when the window is empty). */
  gatewayTs: { min: number | null; max: number | null };
  closedBy: { watermark: number; watermarkIso: string; graceMs: number };
  /**
   * Present when the window was finalized as shard jobs: its `part-sSSSSS-…` / `late-sSSSSS-…`
   * files hold only ids of shard job SSSSS among this many (shardJobOf), which lets the next
   * windows' shard jobs read only the files that can hold their ids.
   */
  shards?: number;
}

export function windowFields(w: IntervalWindow): Manifest['window'] {
  return {
    start: new Date(w.start).toISOString(),
    end: new Date(w.end).toISOString(),
    startMs: w.start,
    endMs: w.end,
  };
}

export function serializeManifest(m: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
}

export function parseManifest(data: Buffer, name: string): Manifest {
  try {
    const m = JSON.parse(data.toString('utf8')) as Manifest;
    if (m.manifestVersion === 1 && Array.isArray(m.files) && typeof m.counts?.records === 'number') return m;
  } catch {
    /* fall through */
  }
  throw new HourglassError('MANIFEST_MISMATCH', `${name} is not a readable manifest`);
}

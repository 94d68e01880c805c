import { HourglassError } from '@hourglass/common';
import type { ManifestFile } from '@hourglass/bucket-format';

/**
 * What one shard job of a window wrote (shard-jobs.ts), stored create-if-absent as
 * `_shard-SSSSS.json` beside the plan once all its files exist: the closer lists these files in
 * the manifest in shard order. A rerun of the job writes the same result.
 */
export interface ShardResult {
  shardResultVersion: 1;
  shard: number;
  onTime: ManifestFile[];
  late: ManifestFile[];
  /** The shard's staged datums, copies included. */
  stagedRecords: number;
  duplicatesDropped: number;
  duplicatesOfClosedWindows: number;
}

export function serializeShardResult(r: ShardResult): Buffer {
  return Buffer.from(`${JSON.stringify(r, null, 2)}\n`);
}

export function parseShardResult(data: Buffer, name: string): ShardResult {
  try {
    const r = JSON.parse(data.toString('utf8')) as ShardResult;
    if (r.shardResultVersion === 1 && Array.isArray(r.onTime) && Array.isArray(r.late)) return r;
  } catch {
    /* fall through */
  }
  throw new HourglassError('STAGED_FILE_CORRUPT', `${name} is not a readable shard result`);
}

import { crc32 } from 'node:zlib';
import { HourglassError } from '@hourglass/common';
import type { SchemaVersion } from '@hourglass/schemas';
import {
  type IntervalWindow,
  type OcfHeader,
  type ScannedDatum,
  groupCrcsOf,
  groupIndexOf,
  groupsOfShardJob,
  ocfHeaderIn,
  readOcfHeader,
  scanBlocks,
  scanContainer,
  shardJobOf as sharedShardJobOf,
  windowLabel,
} from '@hourglass/bucket-format';
import type { FinalizeContext } from './context.js';
import type { PlanFile } from './plan.js';

/**
 * One shard's datums of one planned staged file, read without reading the whole file when it is
 * grouped by event id hash (GroupedOcfWriter): a ranged read of its head (header and group
 * index), then one ranged read of the blocks of the shard job's groups (shardJobOf). A
 * file without a group index (staged by an older version) is read whole. Either way only the
 * datums of the shard are visited, in stored order, so every shard job sees the order a reader
 * of the whole file would. A ranged read carries no checksum (GCS checks whole objects only), so
 * each group read is checked against its CRC-32 in the header (GROUP_CRCS_META_KEY) before any
 * datum is visited; files staged before the CRCs are read unchecked.
 */

/** Bound once: a cross-workspace import is a getter read at every call (datums.ts in bucket-format). */
const shardJobOf = sharedShardJobOf;

/** First read of a staged file: its header (schema, group index) fits in most. */
export const HEAD_BYTES = 4 * 1024;

export async function forEachShardDatum(
  ctx: FinalizeContext,
  w: IntervalWindow,
  file: PlanFile,
  target: SchemaVersion,
  shard: number,
  shards: number,
  visit: (d: ScannedDatum) => Promise<void> | undefined,
): Promise<{ records: number; bytes: number }> {
  const { first, last } = groupsOfShardJob(shard, shards);
  let bytes = 0;
  const read = async (start: number, end: number): Promise<Buffer> => {
    const data = await ctx.store.getRange(file.name, start, end);
    if (!data) {
      throw new HourglassError('STAGED_FILE_CORRUPT', `${file.name} is in the plan of ${windowLabel(w)} but missing`);
    }
    bytes += data.length;
    return data;
  };
  let records = 0;
  const inShard = (d: ScannedDatum): Promise<void> | undefined => {
    if (shardJobOf(d.bytes, d.idStart, d.idEnd, shards) !== shard) return undefined;
    records++;
    return visit(d);
  };

  const { head, header, whole } = await readHead(read, file);
  const index = groupIndexOf(header, file.name);
  if (!index) {
    await scanContainer(
      whole ? head : Buffer.concat([head, await read(head.length, file.size)]),
      file.name,
      target,
      inShard,
      ctx.pace,
    );
    return { records, bytes };
  }
  const from = header.dataOffset + index[first]!;
  const to = header.dataOffset + index[last + 1]!;
  if (from < to) {
    const blocks =
      to <= head.length
        ? head.subarray(from, to)
        : Buffer.concat([head.subarray(Math.min(from, head.length)), await read(Math.max(from, head.length), to)]);
    if (blocks.length !== to - from) throw corrupt(file.name, `ends before its group index says (${to} bytes)`);
    checkGroups(file.name, header, index, first, last, blocks);
    await scanBlocks(header, blocks, file.name, target, inShard, ctx.pace);
  }
  return { records, bytes };
}

/** The file's first bytes holding its whole header (re-reading a longer head while it does not); `whole` when they are the file. */
async function readHead(
  read: (start: number, end: number) => Promise<Buffer>,
  { name, size }: PlanFile,
): Promise<{ head: Buffer; header: OcfHeader; whole: boolean }> {
  let wanted = HEAD_BYTES;
  let head = await read(0, wanted);
  for (;;) {
    const whole = head.length < wanted || head.length === size;
    const header = ocfHeaderIn(head, name);
    if (header) return { head, header, whole };
    if (whole) return { head, header: readOcfHeader(head, name), whole }; // throws: truncated
    wanted *= 4;
    head = Buffer.concat([head, await read(head.length, wanted)]);
  }
}

/**
 * Throws STORAGE_CHECKSUM_MISMATCH (retried, like a failed download) unless each group g in
 * [first, last] of `blocks` (the bytes from group first's start) has the header's CRC-32
 * (zlib's, as GroupedOcfWriter computes it).
 */
function checkGroups(
  name: string,
  header: OcfHeader,
  index: number[],
  first: number,
  last: number,
  blocks: Buffer,
): void {
  const crcs = groupCrcsOf(header, name);
  if (!crcs) return; // staged before group CRCs
  const base = index[first]!;
  for (let g = first; g <= last; g++) {
    const actual = crc32(blocks.subarray(index[g]! - base, index[g + 1]! - base));
    if (actual === crcs[g]) continue;
    const [a, e] = [actual, crcs[g]!].map((crc) => crc.toString(16).padStart(8, '0'));
    const [start, end] = [index[g]!, index[g + 1]!].map((at) => header.dataOffset + at);
    throw new HourglassError(
      'STORAGE_CHECKSUM_MISMATCH',
      `${name}: group ${g} (bytes ${start}-${end}) was read with CRC-32 ${a}, its header says ${e}`,
      { path: name },
    );
  }
}

function corrupt(name: string, message: string): HourglassError {
  return new HourglassError('STAGED_FILE_CORRUPT', `${name}: ${message}`);
}

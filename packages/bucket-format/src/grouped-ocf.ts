import { crc32 } from 'node:zlib';
import { HourglassError } from '@hourglass/common';
import { readVarint as sharedReadVarint, varintValue as sharedVarintValue } from '@hourglass/schemas';
import {
  type OcfHeader,
  type OcfWriterOptions,
  FRAME_HEAD_ROOM,
  FRAME_ROOM,
  FRAME_TAIL_ROOM,
  PendingFrames,
  SYNC_SIZE,
  containerHeader,
  frameBlock,
} from './avro-file.js';
import { HASH_GROUPS, groupOf } from './shard-hash.js';

/**
 * Staged files whose datums are grouped by the hash of their event id (groupOf): group 0's
 * datums first, then group 1's, …, each group's in the order they were appended, with a block
 * cut at every group boundary. The header's `hourglass.groups` metadata holds HASH_GROUPS + 1
 * comma-separated decimals: where each group's first block starts, relative to the end of the
 * header, then where the last group ends. A shard job of a window (a contiguous run of groups,
 * groupsOfShardJob) is then one ranged read of each staged file. Still a plain Avro container file.
 *
 * `hourglass.groups.crc32` holds HASH_GROUPS comma-separated CRC-32 (IEEE, zlib's: Node's
 * `zlib.crc32`) values, 8 lower-case hex digits each: group g's is of the file's bytes
 * [index[g], index[g + 1]) after the header, exactly what a ranged read of the group returns. A
 * store checks no ranged read (GCS only checks whole-object downloads), so readers check them
 * (groupCrcsOf). Not GCS's CRC-32C: only Hourglass writes and reads the key, and Node's native
 * CRC-32 is several times faster than CRC-32C in JavaScript. Files staged before the key have
 * none: read unchecked.
 */
export const GROUPS_META_KEY = 'hourglass.groups';
export const GROUP_CRCS_META_KEY = 'hourglass.groups.crc32';

/** A group's block being filled; grows up to the block size, so 64 groups cost a small file little. */
interface GroupBlock {
  /** Datums at [FRAME_HEAD_ROOM, pos), FRAME_TAIL_ROOM spare after them (frameBlock frames it in place). */
  data: Buffer;
  pos: number;
  count: number;
  frames: Promise<Buffer>[];
  /** CRC-32 of the group's frames so far, each added once it and those before it are framed. */
  crc: Promise<number>;
}

/**
 * First allocation of a group's block: most staged files are small (flushed by age). Below half of
 * Buffer.poolSize, so it is a slice of Node's shared pool, not an ArrayBuffer of its own: with 255
 * types a replica starts 255 files of 64 groups a second, and at 4 KiB each those allocations were
 * 5% of its busy CPU (bench/e2e.js at 255 types, profiled). A 300-event file costs 201-205 µs
 * instead of 233-240 (bench/staged-file-cpu.js, two alternating pairs).
 */
const FIRST_BLOCK_BYTES = 1024;
const EMPTY = Buffer.alloc(0);
/** Bound once: a cross-workspace import is a getter read at every call (see datums.ts). */
const readVarint = sharedReadVarint;
const varintValue = sharedVarintValue;

/** An OcfWriter (same options, same counting) writing grouped files; each datum starts with meta.event_id. */
export class GroupedOcfWriter {
  private readonly groups: GroupBlock[] = [];
  /** Every frame in the order blocks were cut, for drained(). */
  private readonly cut = new PendingFrames();
  private scratch = Buffer.allocUnsafe(FIRST_BLOCK_BYTES);
  /** Records appended so far. */
  records = 0;
  /** Uncompressed datum bytes appended so far (decides file rolling deterministically). */
  rawBytes = 0;

  constructor(private readonly options: OcfWriterOptions) {
    if (options.syncMarker.length !== SYNC_SIZE) throw new RangeError('an Avro sync marker has 16 bytes');
    for (let g = 0; g < HASH_GROUPS; g++) {
      this.groups.push({ data: EMPTY, pos: FRAME_HEAD_ROOM, count: 0, frames: [], crc: Promise.resolve(0) });
    }
  }

  /** Appends one Avro binary datum of the writer's type. */
  appendDatum(datum: Buffer): void {
    this.appendDatumAt(datum, 0, datum.length);
  }

  /** Appends the datum `source[start, end)`, into the group of the event id it starts with. */
  appendDatumAt(source: Buffer, start: number, end: number): void {
    const idStart = readVarint(source, start);
    const idLength = varintValue();
    if (idStart < 0 || idLength < 0 || idStart + idLength > end) {
      throw new RangeError('a datum that does not start with a readable meta.event_id');
    }
    const group = this.groups[groupOf(source, idStart, idStart + idLength)]!;
    const length = end - start;
    if (group.pos + length > group.data.length - FRAME_TAIL_ROOM) this.makeRoom(group, length);
    source.copy(group.data, group.pos, start, end);
    group.pos += length;
    group.count++;
    this.records++;
    this.rawBytes += length;
    if (group.pos - FRAME_HEAD_ROOM >= this.options.blockBytes) this.cutBlock(group, true);
  }

  /** Encodes and appends one record of the writer's type. */
  appendRecord(record: unknown): void {
    let end = this.options.type.encode(record, this.scratch, 0);
    if (end < 0) {
      // avsc returns -(bytes missing)
      this.scratch = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, this.scratch.length - end));
      end = this.options.type.encode(record, this.scratch, 0);
    }
    this.appendDatumAt(this.scratch, 0, end);
  }

  /** As OcfWriter: cut the group's block when the datum would overflow it, else grow the buffer. */
  private makeRoom(group: GroupBlock, length: number): void {
    const blockBytes = this.options.blockBytes;
    if (group.count > 0 && group.pos - FRAME_HEAD_ROOM + length > blockBytes) this.cutBlock(group, true);
    const needed = group.pos + length + FRAME_TAIL_ROOM;
    if (needed <= group.data.length) return;
    const grown = Buffer.allocUnsafe(
      Math.max(needed, Math.min(FRAME_ROOM + blockBytes, Math.max(FIRST_BLOCK_BYTES, group.data.length * 2))),
    );
    if (group.count > 0) group.data.copy(grown, FRAME_HEAD_ROOM, FRAME_HEAD_ROOM, group.pos);
    group.data = grown;
  }

  private cutBlock(group: GroupBlock, more: boolean): void {
    if (group.count === 0) return;
    // the frame is this block (or read by deflate later), which is replaced below, never reused
    const frame = frameBlock(group.data, group.pos, group.count, this.options);
    group.frames.push(frame);
    this.cut.push(frame);
    // per block, not per datum; in frame order, as the group's bytes are stored
    group.crc = Promise.all([group.crc, frame]).then(([crc, f]) => crc32(f, crc));
    group.crc.catch(noop); // a failed frame is reported by drained() and finish(), not as unhandled
    // a group that filled a block will likely fill another
    group.data = more ? Buffer.allocUnsafe(FRAME_ROOM + this.options.blockBytes) : EMPTY;
    group.pos = FRAME_HEAD_ROOM;
    group.count = 0;
  }

  /** As OcfWriter.drained: resolves once every block cut before the previous call is compressed. */
  drained(): Promise<void> {
    return this.cut.drained();
  }

  /** The whole file as its parts, in order (see finish): stores write them without joining them. */
  async finishParts(): Promise<Buffer[]> {
    for (const group of this.groups) this.cutBlock(group, false);
    const [grouped, crcs] = await Promise.all([
      Promise.all(this.groups.map((group) => Promise.all(group.frames))),
      Promise.all(this.groups.map((group) => group.crc)),
    ]);
    const offsets = [0];
    let offset = 0;
    for (const groupFrames of grouped) {
      for (const frame of groupFrames) offset += frame.length;
      offsets.push(offset);
    }
    const meta = {
      [GROUPS_META_KEY]: offsets.join(','),
      [GROUP_CRCS_META_KEY]: crcs.map((crc) => crc.toString(16).padStart(8, '0')).join(','),
    };
    return [containerHeader(this.options, meta), ...grouped.flat()];
  }

  /** The whole file: header with the group index, then each group's blocks in group order. */
  async finish(): Promise<Buffer> {
    return Buffer.concat(await this.finishParts());
  }
}

/**
 * The group index of a container file: HASH_GROUPS + 1 offsets relative to the header's end
 * (`header.dataOffset`), group g's blocks are [index[g], index[g + 1]). Undefined for a file
 * without one (staged by an older version, or not a staged file).
 */
export function groupIndexOf(header: OcfHeader, what: string): number[] | undefined {
  const text = header.meta[GROUPS_META_KEY]?.toString('latin1');
  if (text === undefined) return undefined;
  const index = text.split(',').map((n) => (/^\d{1,15}$/.test(n) ? Number(n) : NaN));
  const ordered = index.every((n, i) => (i === 0 ? n === 0 : n >= index[i - 1]!));
  if (index.length !== HASH_GROUPS + 1 || !ordered) {
    throw new HourglassError('STAGED_FILE_CORRUPT', `${what}: ${GROUPS_META_KEY} is not a group index`);
  }
  return index;
}

/**
 * The group CRCs of a container file (GROUP_CRCS_META_KEY): group g's CRC-32, unsigned. Undefined
 * for a file without them (staged by an older version): its groups cannot be checked.
 */
export function groupCrcsOf(header: OcfHeader, what: string): number[] | undefined {
  const text = header.meta[GROUP_CRCS_META_KEY]?.toString('latin1');
  if (text === undefined) return undefined;
  const crcs = text.split(',').map((n) => (/^[0-9a-f]{8}$/.test(n) ? parseInt(n, 16) : NaN));
  if (crcs.length !== HASH_GROUPS || crcs.some(Number.isNaN)) {
    throw new HourglassError('STAGED_FILE_CORRUPT', `${what}: ${GROUP_CRCS_META_KEY} is not ${HASH_GROUPS} CRCs`);
  }
  return crcs;
}

function noop(): void {}

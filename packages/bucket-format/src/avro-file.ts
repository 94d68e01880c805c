import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deflateRaw, inflateRawSync } from 'node:zlib';
import avro from 'avsc';
import { HourglassError } from '@hourglass/common';
import { type SchemaVersion, fingerprintOf, longSize, readVarint, varintValue, writeLong } from '@hourglass/schemas';

/**
 * Standard Avro object container files (spec 1.11 "Object Container Files"). Reading: avsc decodes
 * the header; blocks are walked here to hand out raw datums. Writing: for records that each fit in
 * a block, OcfWriter writes byte for byte what avsc's BlockEncoder writes with the same
 * `syncMarker`, `blockSize` and codec (tests/unit/bucket-format/ocf-avsc-parity.test.ts), yet it
 * is not BlockEncoder, for what that cannot do:
 *  - append datums as bytes: staging and finalize copy records as raw Avro datums without decoding
 *    them, and BlockEncoder takes values only (its write path is not public);
 *  - keep the block size after a record larger than a block: BlockEncoder doubles it for the rest
 *    of the file, and a final file must be byte-for-byte what earlier finalizes of the window
 *    wrote (a rerun compares them by sha256);
 *  - count appended bytes synchronously (files roll at a size of datum bytes, deterministically),
 *    where a stream buffers writes and reports blocks later.
 * Deflate runs on libuv's pool, bounded process-wide (below), and the sync marker is derived
 * from the file's name, so every rerun writes the same bytes.
 */
const MAGIC = Buffer.from('Obj\x01', 'latin1');
export const SYNC_SIZE = 16;

const headerType = avro.Type.forSchema({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: SYNC_SIZE } },
  ],
});
const longType = avro.Type.forSchema('long');

/** A sync marker derived from a name (type, window, file): every rerun writes the same bytes. */
export function syncMarkerFor(name: string): Buffer {
  return createHash('sha256').update(`hourglass-sync:${name}`).digest().subarray(0, SYNC_SIZE);
}

/** Schema text from avsc's view of a type (logical types and enum defaults it does not keep are lost). */
export function schemaText(type: avro.Type): string {
  return JSON.stringify(type.schema({ exportAttrs: true }));
}

const versionTexts = new Map<string, string>();

/**
 * The schema text written into headers: the version's own .avsc (compacted), with its logical
 * types (timestamp-millis, uuid), docs and enum defaults, so any Avro reader types the data as
 * the schema's authors meant. Falls back to avsc's view if the file changed since it was loaded.
 */
export function schemaTextOf(version: SchemaVersion): string {
  let text = versionTexts.get(version.fingerprint);
  if (text === undefined) {
    text = schemaText(version.type);
    try {
      const json = JSON.parse(readFileSync(version.file, 'utf8')) as avro.Schema;
      if (fingerprintOf(avro.Type.forSchema(json)) === version.fingerprint) text = JSON.stringify(json);
    } catch {
      /* keep avsc's view */
    }
    versionTexts.set(version.fingerprint, text);
  }
  return text;
}

/**
 * Deflate jobs running on libuv's thread pool at once, process-wide. The pool (4 threads) also
 * runs every file write and fsync: when finalize queued a block per thread, staging's fsyncs
 * waited behind them and the stage latency p99 rose from ≤ 2 s to 10–30 s while windows
 * finalized. Two leave two threads for the file system.
 */
const MAX_DEFLATES_IN_FLIGHT = 2;
/**
 * Output chunk of one deflate: the block's own size (its deflated form fits in one), not zlib's
 * 16 KiB, which took a pool job and an event-loop callback per 16 KiB of output. 64 KiB blocks
 * of event-like records at level 1, two at a time: CPU 0.549 against 0.612 s for 256 blocks and
 * their set-up (farm-bench, 10 pairs, median ratio 0.91). The deflated bytes are the same.
 */
const MIN_DEFLATE_CHUNK_BYTES = 16 * 1024;
let deflatesInFlight = 0;
const waitingDeflates: (() => void)[] = [];

function deflateOnPool(raw: Buffer, level: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const run = (): void => {
      deflatesInFlight++;
      const chunkSize = Math.max(MIN_DEFLATE_CHUNK_BYTES, raw.length);
      deflateRaw(raw, { level, chunkSize }, (err, data) => {
        deflatesInFlight--;
        waitingDeflates.shift()?.();
        if (err) reject(err);
        else resolve(data);
      });
    };
    if (deflatesInFlight < MAX_DEFLATES_IN_FLIGHT) run();
    else waitingDeflates.push(run);
  });
}

export interface OcfWriterOptions {
  type: avro.Type;
  /** Schema text for the header (default: avsc's view of `type`); see schemaTextOf. */
  schema?: string;
  syncMarker: Buffer;
  /** 1–9: the deflate codec at that level; 0: the null codec (blocks stored as they are). */
  deflateLevel: number;
  /** Uncompressed bytes per block. */
  blockBytes: number;
  metadata?: Record<string, string>;
}

/**
 * Accumulates datums into blocks; each full block is deflated on libuv's thread pool while
 * the caller keeps decoding (at most MAX_DEFLATES_IN_FLIGHT blocks at once, process-wide).
 */
export class OcfWriter {
  /** Datums at [FRAME_HEAD_ROOM, pos), FRAME_TAIL_ROOM spare after the block's capacity (frameBlock). */
  private block: Buffer;
  private pos = FRAME_HEAD_ROOM;
  private blockCount = 0;
  private readonly frames = new PendingFrames();
  /** Records appended so far. */
  records = 0;
  /** Uncompressed datum bytes appended so far (decides file rolling deterministically). */
  rawBytes = 0;

  constructor(private readonly options: OcfWriterOptions) {
    if (options.syncMarker.length !== SYNC_SIZE) throw new RangeError('an Avro sync marker has 16 bytes');
    this.block = Buffer.allocUnsafe(FRAME_ROOM + options.blockBytes);
  }

  /** Where datums may end in the current block. */
  private get limit(): number {
    return this.block.length - FRAME_TAIL_ROOM;
  }

  /** Appends one Avro binary datum of the writer's type. */
  appendDatum(datum: Buffer): void {
    this.appendDatumAt(datum, 0, datum.length);
  }

  /** Appends the datum `source[start, end)` (no view object per datum). */
  appendDatumAt(source: Buffer, start: number, end: number): void {
    const length = end - start;
    if (this.pos + length > this.limit) this.growOrCut(length);
    source.copy(this.block, this.pos, start, end);
    this.pos += length;
    this.counted(length);
  }

  /** Encodes and appends one record of the writer's type. */
  appendRecord(record: unknown): void {
    const type = this.options.type;
    let next = type.encode(record, this.block, this.pos);
    if (next < 0 || next > this.limit) {
      // avsc returns -(bytes missing); past the limit, it wrote into the sync marker's room:
      // cut the block, or grow it for one oversized record
      this.growOrCut(next < 0 ? this.block.length - this.pos - next : next - this.pos);
      next = type.encode(record, this.block, this.pos);
    }
    const length = next - this.pos;
    this.pos = next;
    this.counted(length);
  }

  private counted(length: number): void {
    this.blockCount++;
    this.records++;
    this.rawBytes += length;
    if (this.pos - FRAME_HEAD_ROOM >= this.options.blockBytes) this.cutBlock();
  }

  private growOrCut(needed: number): void {
    if (this.blockCount > 0) this.cutBlock();
    if (needed + FRAME_ROOM > this.block.length) this.block = Buffer.allocUnsafe(needed + FRAME_ROOM);
  }

  private cutBlock(): void {
    if (this.blockCount === 0) return;
    // the frame is this block (or read by deflate later), which is replaced below, never reused
    this.frames.push(frameBlock(this.block, this.pos, this.blockCount, this.options));
    this.block = Buffer.allocUnsafe(FRAME_ROOM + this.options.blockBytes);
    this.pos = FRAME_HEAD_ROOM;
    this.blockCount = 0;
  }

  /** Resolves once every block cut before the previous call is compressed (PendingFrames.drained). */
  drained(): Promise<void> {
    return this.frames.drained();
  }

  /** The whole file as its parts, in order: header, then every block (see finish). */
  async finishParts(): Promise<Buffer[]> {
    this.cutBlock();
    const frames = await Promise.all(this.frames.all);
    return [containerHeader(this.options), ...frames];
  }

  /** The whole file: header, then every block in order. */
  async finish(): Promise<Buffer> {
    return Buffer.concat(await this.finishParts());
  }
}

/** A writer's blocks, framed or being deflated, in the order they were cut. */
export class PendingFrames {
  readonly all: Promise<Buffer>[] = [];
  private drainedFrames = 0;
  private drainMark = 0;

  push(frame: Promise<Buffer>): void {
    this.all.push(frame);
  }

  /**
   * Resolves once every block cut before the previous call is compressed. Blocks wait for the
   * pool holding their raw bytes: a caller that appends faster than the pool deflates awaits this
   * now and then, or a whole file's raw bytes may wait at once. One interval of lag keeps the
   * pool busy while the caller goes on.
   */
  async drained(): Promise<void> {
    const from = this.drainedFrames;
    const upTo = this.drainMark;
    this.drainMark = this.all.length;
    this.drainedFrames = upTo;
    await Promise.all(this.all.slice(from, upTo));
  }
}

/** Room a block buffer keeps before its datums for the frame's count and size (two longs of 10 bytes at most). */
export const FRAME_HEAD_ROOM = 20;
/** Room a block buffer keeps after its datums for the sync marker. */
export const FRAME_TAIL_ROOM = SYNC_SIZE;
/** Both: a block buffer of `n` datum bytes is FRAME_ROOM + n long. */
export const FRAME_ROOM = FRAME_HEAD_ROOM + FRAME_TAIL_ROOM;

/**
 * One block as stored: datum count, size, the datums (deflated on the pool unless level 0), the
 * sync marker. The datums are `block[FRAME_HEAD_ROOM, end)` with FRAME_TAIL_ROOM spare after
 * `end`. At level 0 the frame is written around them in place and returned as a view of `block`:
 * a staged file's datums are copied once, into their block, instead of again into a frame and
 * into the file (bench/consumer.js). `block` must not be written to afterwards: the frame is it,
 * or deflate reads it later.
 */
export function frameBlock(block: Buffer, end: number, count: number, options: OcfWriterOptions): Promise<Buffer> {
  const size = end - FRAME_HEAD_ROOM;
  if (options.deflateLevel !== 0) {
    return deflateOnPool(block.subarray(FRAME_HEAD_ROOM, end), options.deflateLevel).then((data) =>
      Buffer.concat([longType.toBuffer(count), longType.toBuffer(data.length), data, options.syncMarker]),
    );
  }
  const start = FRAME_HEAD_ROOM - longSize(count) - longSize(size);
  writeLong(block, writeLong(block, start, count), size);
  options.syncMarker.copy(block, end);
  return Promise.resolve(block.subarray(start, end + SYNC_SIZE));
}

/** The container header: schema, codec, the options' metadata, then `extra` metadata. */
export function containerHeader(options: OcfWriterOptions, extra: Record<string, string> = {}): Buffer {
  const meta: Record<string, Buffer> = {
    'avro.schema': Buffer.from(options.schema ?? schemaText(options.type)),
    'avro.codec': Buffer.from(options.deflateLevel === 0 ? 'null' : 'deflate'),
  };
  for (const [k, v] of Object.entries({ ...options.metadata, ...extra })) meta[k] = Buffer.from(v);
  return headerType.toBuffer({ magic: MAGIC, meta, sync: options.syncMarker });
}

export interface OcfHeader {
  schema: avro.Schema;
  codec: string;
  sync: Buffer;
  meta: Record<string, Buffer>;
  /** Offset of the first block. */
  dataOffset: number;
}

function corrupt(what: string, message: string): HourglassError {
  return new HourglassError('STAGED_FILE_CORRUPT', `${what}: ${message}`);
}

export function readOcfHeader(buf: Buffer, what: string): OcfHeader {
  const header = ocfHeaderIn(buf, what);
  if (!header) throw corrupt(what, 'header is truncated');
  return header;
}

/** The header at the start of `buf`, or undefined when `buf` ends inside it (read a longer head). */
export function ocfHeaderIn(buf: Buffer, what: string): OcfHeader | undefined {
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw corrupt(what, 'not an Avro object container file');
  }
  let decoded: { value: unknown; offset: number };
  try {
    decoded = headerType.decode(buf, 0);
  } catch (e) {
    throw corrupt(what, `header cannot be decoded (${(e as Error).message})`);
  }
  if (decoded.offset < 0) return undefined;
  const header = decoded.value as { meta: Record<string, Buffer>; sync: Buffer };
  const schemaBytes = header.meta['avro.schema'];
  if (!schemaBytes) throw corrupt(what, 'no avro.schema in the header');
  let schema: avro.Schema;
  try {
    schema = JSON.parse(schemaBytes.toString('utf8')) as avro.Schema;
  } catch (e) {
    throw corrupt(what, `embedded schema is not JSON (${(e as Error).message})`);
  }
  return {
    schema,
    codec: header.meta['avro.codec']?.toString('utf8') ?? 'null',
    sync: header.sync,
    meta: header.meta,
    dataOffset: decoded.offset,
  };
}

/** A block header's long at `pos` (a count or a size): its value and the position after it. */
function readLong(buf: Buffer, pos: number, what: string): { value: number; next: number } {
  const next = readVarint(buf, pos);
  if (next < 0) throw corrupt(what, 'block header is truncated');
  return { value: varintValue(), next };
}

export interface OcfBlock {
  count: number;
  /** The block's datums, decompressed. */
  data: Buffer;
}

/** Every block of a container file, decompressed, checking each sync marker. */
export function* ocfBlocks(buf: Buffer, header: OcfHeader, what: string): Generator<OcfBlock> {
  if (header.codec !== 'deflate' && header.codec !== 'null')
    throw corrupt(what, `codec ${header.codec} is unsupported`);
  let pos = header.dataOffset;
  while (pos < buf.length) {
    const count = readLong(buf, pos, what);
    const size = readLong(buf, count.next, what);
    const start = size.next;
    const end = start + size.value;
    if (count.value < 0 || size.value < 0 || end + SYNC_SIZE > buf.length) throw corrupt(what, 'block is truncated');
    if (!buf.subarray(end, end + SYNC_SIZE).equals(header.sync)) throw corrupt(what, 'sync marker mismatch');
    const stored = buf.subarray(start, end);
    let data: Buffer;
    try {
      data = header.codec === 'deflate' ? inflateRawSync(stored) : stored;
    } catch (e) {
      throw corrupt(what, `block cannot be inflated (${(e as Error).message})`);
    }
    yield { count: count.value, data };
    pos = end + SYNC_SIZE;
  }
}

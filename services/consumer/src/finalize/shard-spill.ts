import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { shardOf as sharedShardOf } from '@hourglass/bucket-format';

/**
 * Grace hash partitioning of a window's datums onto local disk: a sharded finalize reads each
 * staged file once from the store and appends each datum to the spill file of its shard (a hash
 * of its event id), so a duplicate always lands beside its twin; each shard is then read back
 * alone. Per shard two files: `records` (staged datums, in the order they were read) and `ids`
 * (closed windows' event ids the shard's records are checked against).
 */

/** The shard of an event id (in @hourglass/bucket-format, where staged files group by it), bound once: see datums.ts. */
export const shardOf = sharedShardOf;

/** What an `ids` entry is: an id of the dedup reference, or one stored in a closed window. */
export const enum SpilledId {
  /** Stored within the dedup horizon before the window (checked against on-time records). */
  Reference = 1,
  /** Stored in the closed windows within the horizon of window `windowStart` (late records). */
  ClosedWindow = 2,
}

const BUFFER_BYTES = 256 * 1024;
const READ_BYTES = 1024 * 1024;
/** records entry: datum length u32, gateway_ts f64, idStart u32, idEnd u32, then the datum. */
const RECORD_HEADER = 20;
/** ids entry: kind u8, window start f64, id length u32, then the id. */
const ID_HEADER = 13;

class SpillFile {
  private buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  bytes = 0;

  constructor(private readonly handle: FileHandle) {}

  /** Appends `length` bytes that `fill(buffer, at)` writes; a promise only when the buffer had to be written out. */
  append(length: number, fill: (b: Buffer, at: number) => void): Promise<void> | undefined {
    const put = (): undefined => {
      fill(this.buffer, this.used);
      this.used += length;
      this.bytes += length;
      return undefined;
    };
    if (this.used + length <= this.buffer.length) return put();
    return this.flush().then(() => {
      if (length > this.buffer.length) this.buffer = Buffer.allocUnsafe(length);
      put();
    });
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    await this.handle.write(this.buffer, 0, this.used);
    this.used = 0;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.handle.close();
  }
}

export interface SpilledRecord {
  /** The datum is `source[start, end)`, its id `source[idStart, idEnd)`. */
  source: Buffer;
  start: number;
  end: number;
  idStart: number;
  idEnd: number;
  gatewayTs: number;
}

export class ShardSpill {
  private records: SpillFile[] = [];
  private ids: SpillFile[] = [];

  private constructor(
    readonly dir: string,
    readonly shards: number,
    /** Awaited after each chunk read back (the finalize pacer's pause); absent: nothing more. */
    private readonly between: (() => Promise<void>) | undefined,
  ) {}

  static async create(shards: number, parent = tmpdir(), between?: () => Promise<void>): Promise<ShardSpill> {
    const spill = new ShardSpill(await mkdtemp(path.join(parent, 'hourglass-finalize-')), shards, between);
    try {
      for (let s = 0; s < shards; s++) {
        spill.records.push(new SpillFile(await open(spill.file('records', s), 'w')));
        spill.ids.push(new SpillFile(await open(spill.file('ids', s), 'w')));
      }
    } catch (e) {
      await spill.remove();
      throw e;
    }
    return spill;
  }

  /** Bytes spilled (both kinds, every shard), known once sealed. */
  bytes = 0;

  private file(kind: 'records' | 'ids', shard: number): string {
    return path.join(this.dir, `${kind}-${String(shard).padStart(5, '0')}`);
  }

  /** Appends the datum `bytes` (its id at `[idStart, idEnd)`) to its shard. */
  addRecord(bytes: Buffer, idStart: number, idEnd: number, gatewayTs: number): Promise<void> | undefined {
    const f = this.records[shardOf(bytes, idStart, idEnd, this.shards)]!;
    return f.append(RECORD_HEADER + bytes.length, (b, at) => {
      b.writeUInt32LE(bytes.length, at);
      b.writeDoubleLE(gatewayTs, at + 4);
      b.writeUInt32LE(idStart, at + 12);
      b.writeUInt32LE(idEnd, at + 16);
      bytes.copy(b, at + RECORD_HEADER);
    });
  }

  /** Appends the id `source[start, end)` of `kind` (for ClosedWindow: of window `windowStart`) to its shard. */
  addId(kind: SpilledId, windowStart: number, source: Buffer, start: number, end: number): Promise<void> | undefined {
    const f = this.ids[shardOf(source, start, end, this.shards)]!;
    return f.append(ID_HEADER + end - start, (b, at) => {
      b[at] = kind;
      b.writeDoubleLE(windowStart, at + 1);
      b.writeUInt32LE(end - start, at + 9);
      source.copy(b, at + ID_HEADER, start, end);
    });
  }

  /** Flushes and closes every spill file: from here on they are only read. */
  async seal(): Promise<void> {
    for (const f of [...this.records, ...this.ids]) {
      await f.close();
      this.bytes += f.bytes;
    }
    this.records = [];
    this.ids = [];
  }

  /** Every spilled id of `shard`, in the order spilled. */
  async forEachId(
    shard: number,
    visit: (kind: SpilledId, windowStart: number, source: Buffer, start: number, end: number) => void,
  ): Promise<void> {
    await readEntries(
      this.file('ids', shard),
      ID_HEADER,
      (b, at) => ID_HEADER + b.readUInt32LE(at + 9),
      (b, at, n) => {
        visit(b[at] as SpilledId, b.readDoubleLE(at + 1), b, at + ID_HEADER, at + n);
        return undefined;
      },
      this.between,
    );
  }

  /** Every spilled record of `shard`, in the order spilled; awaits what `visit` returns. */
  async forEachRecord(shard: number, visit: (r: SpilledRecord) => Promise<void> | undefined): Promise<void> {
    const r: SpilledRecord = { source: Buffer.alloc(0), start: 0, end: 0, idStart: 0, idEnd: 0, gatewayTs: 0 };
    await readEntries(
      this.file('records', shard),
      RECORD_HEADER,
      (b, at) => RECORD_HEADER + b.readUInt32LE(at),
      (b, at, n) => {
        r.source = b;
        r.start = at + RECORD_HEADER;
        r.end = at + n;
        r.gatewayTs = b.readDoubleLE(at + 4);
        r.idStart = r.start + b.readUInt32LE(at + 12);
        r.idEnd = r.start + b.readUInt32LE(at + 16);
        return visit(r);
      },
      this.between,
    );
  }

  /** Deletes the spill files (also after a failure: a rerun spills again from the store). */
  async remove(): Promise<void> {
    for (const f of [...this.records, ...this.ids]) await f.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Reads `file` in chunks and calls `visit(buffer, at, length)` per entry; `lengthAt` gives an
 * entry's whole length from its header of `headerBytes`. An entry is never split across calls.
 */
async function readEntries(
  file: string,
  headerBytes: number,
  lengthAt: (b: Buffer, at: number) => number,
  visit: (b: Buffer, at: number, length: number) => Promise<void> | undefined,
  between?: () => Promise<void>,
): Promise<void> {
  const handle = await open(file, 'r');
  try {
    let chunk = Buffer.allocUnsafe(READ_BYTES);
    let filled = 0;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, filled, chunk.length - filled);
      filled += bytesRead;
      let at = 0;
      while (filled - at >= headerBytes) {
        const length = lengthAt(chunk, at);
        if (filled - at < length) break;
        const pending = visit(chunk, at, length);
        if (pending) await pending;
        at += length;
      }
      if (between) await between();
      if (bytesRead === 0) {
        if (at !== filled) throw new Error(`${file}: spill file ends inside an entry`);
        return;
      }
      // keep the partial entry at the front, growing the chunk for an entry larger than it
      const rest = filled - at;
      const needed = rest >= headerBytes ? lengthAt(chunk, at) : headerBytes;
      const next = needed > chunk.length ? Buffer.allocUnsafe(needed) : chunk;
      chunk.copy(next, 0, at, filled);
      chunk = next;
      filled = rest;
    }
  } finally {
    await handle.close();
  }
}

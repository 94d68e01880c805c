import type avro from 'avsc';
import type { CompiledWriter, EventMeta } from '@hourglass/schemas';

/**
 * Encodes Avro datums into large shared chunks and hands out views, so an event costs
 * no buffer allocation (avsc's toBuffer allocates and zero-fills a buffer per call).
 * A chunk is freed by the GC once no bundle holds a view of it any more; memory held
 * is therefore bounded by the outstanding budget plus one chunk.
 */
const CHUNK_BYTES = 256 * 1024;
/** Datums above this get a buffer of their own rather than wasting most of a chunk. */
const LARGE_DATUM = CHUNK_BYTES / 4;

export class DatumArena {
  private chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  private pos = 0;

  /** Encodes an already validated value. */
  encode(type: avro.Type, value: unknown): Buffer {
    let end = type.encode(value, this.chunk, this.pos);
    if (end < 0) {
      const needed = this.chunk.length - this.pos - end;
      if (needed > LARGE_DATUM) return type.toBuffer(value);
      this.newChunk();
      end = type.encode(value, this.chunk, 0);
    }
    const datum = this.chunk.subarray(this.pos, end);
    this.pos = end;
    return datum;
  }

  /**
   * Encodes an event accepted by `writer` straight from its meta and payload. Undefined
   * when it does not fit an empty chunk: the caller then takes the general path.
   */
  encodeEvent(writer: CompiledWriter, meta: EventMeta, payload: object): Buffer | undefined {
    let end = writer.encode(meta, payload, this.chunk, this.pos);
    if (end < 0) {
      if (this.pos === 0) return undefined;
      this.newChunk();
      end = writer.encode(meta, payload, this.chunk, 0);
      if (end < 0) return undefined;
    }
    const datum = this.chunk.subarray(this.pos, end);
    this.pos = end;
    return datum;
  }

  /** A datum of `n` bytes for the caller to fill (the fast path writes its own bytes). */
  alloc(n: number): Buffer {
    if (n > LARGE_DATUM) return Buffer.allocUnsafe(n);
    if (this.pos + n > this.chunk.length) this.newChunk();
    const datum = this.chunk.subarray(this.pos, this.pos + n);
    this.pos += n;
    return datum;
  }

  /** Encodes `head` and appends `tail` bytes right after it, as one datum. */
  encodeWithTail(type: avro.Type, head: unknown, tail: Buffer): Buffer {
    const start = this.pos;
    let end = type.encode(head, this.chunk, start);
    if (end < 0 || end + tail.length > this.chunk.length) {
      const headBytes = type.toBuffer(head);
      const needed = headBytes.length + tail.length;
      if (needed > LARGE_DATUM) return Buffer.concat([headBytes, tail], needed);
      this.newChunk();
      end = type.encode(head, this.chunk, 0);
    }
    const from = this.pos;
    tail.copy(this.chunk, end);
    this.pos = end + tail.length;
    return this.chunk.subarray(from, this.pos);
  }

  private newChunk(): void {
    this.chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
    this.pos = 0;
  }
}

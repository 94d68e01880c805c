/**
 * Buffers given back once nothing reads them, for the next request or bundle to reuse.
 *
 * Why: each Buffer over 4 KiB is an ArrayBuffer of its own, and V8 counts its bytes towards the
 * old generation's limit from its allocation until the GC frees it (a scavenge, or a mark-compact
 * once the object holding it was promoted). The request bodies' payload buffers and the bundles'
 * buffers were about 140 MB/s of such memory at 400,000 events/s, and they set the pace of the
 * gateway's mark-compacts (docs/performance.md, "Buffers given back"). A reused buffer is
 * allocated once.
 *
 * Only give() a buffer when nothing holds a view of it any more: its next taker overwrites it.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private freeBytes = 0;

  /** `maxBytes`: the most this pool keeps (a buffer over it is left to the GC). */
  constructor(private readonly maxBytes: number) {}

  /** A buffer of at least `size` bytes (and at most four times that), its contents left from earlier use. */
  take(size: number): Buffer {
    const free = this.free;
    for (let i = free.length - 1; i >= 0; i--) {
      const buf = free[i]!;
      // not one far larger than asked for: a big bundle's buffer would go to a small one
      if (buf.length < size || buf.length > 4 * size) continue;
      free[i] = free[free.length - 1]!;
      free.pop();
      this.freeBytes -= buf.length;
      return buf;
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /** Keeps `buf` for a later take(), when it is a whole buffer of its own and there is room. */
  give(buf: Buffer): void {
    // A view (of a larger buffer or of Node's shared pool) is not ours to hand out again;
    // a transferred buffer (the publish worker's) is detached, its length 0.
    if (buf.length === 0 || buf.byteOffset !== 0 || buf.buffer.byteLength !== buf.length) return;
    if (this.freeBytes + buf.length > this.maxBytes) return;
    this.free.push(buf);
    this.freeBytes += buf.length;
  }

  /** Bytes kept for reuse (for tests). */
  get keptBytes(): number {
    return this.freeBytes;
  }
}

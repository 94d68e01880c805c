/**
 * Avro binary output for the transcoder: a growable buffer and the encodings avsc uses, byte
 * for byte (zigzag varints written as avsc's Tap.writeLong does, floats and doubles little
 * endian, strings as a length and their UTF-8 bytes).
 */
export class AvroWriter {
  buf: Buffer;
  pos = 0;

  /** `initial`: a buffer to write into first (a pooled one), used when it holds `capacity` bytes. */
  constructor(capacity: number, initial?: Buffer) {
    this.buf =
      initial !== undefined && initial.length >= capacity ? initial : Buffer.allocUnsafe(Math.max(64, capacity));
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  long(n: number): void {
    this.ensure(10);
    this.pos = writeLong(this.buf, this.pos, n);
  }

  float(x: number): void {
    this.ensure(4);
    this.pos = this.buf.writeFloatLE(x, this.pos);
  }

  double(x: number): void {
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(x, this.pos);
  }

  /** A string or bytes value: its length, then bytes [start, end) of `src`. */
  sized(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.ensure(n + 10);
    this.pos = copyBytes(src, start, end, this.buf, writeLong(this.buf, this.pos, n));
  }

  /** Bytes written as they are (a precomputed default value). */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.pos = copyBytes(bytes, 0, bytes.length, this.buf, this.pos);
  }
}

/** Short copies in a loop (a native call costs more than a few bytes); the rest natively. */
export function copyBytes(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): number {
  const n = end - start;
  if (n > 48) {
    dst.set(src.subarray(start, end), at);
    return at + n;
  }
  for (let i = start; i < end; i++) dst[at++] = src[i]!;
  return at;
}

/** A zigzag varint, exact within ±2^52; returns the end offset. */
export function writeLong(buf: Uint8Array, pos: number, n: number): number {
  if (n >= -1073741824 && n < 1073741824) {
    let m = n >= 0 ? n << 1 : (~n << 1) | 1;
    while (m > 0x7f) {
      buf[pos++] = (m & 0x7f) | 0x80;
      m >>>= 7;
    }
    buf[pos++] = m;
    return pos;
  }
  // 2^31 or more (epoch milliseconds): its low 28 bits as four full groups, the rest as an int
  // (one float division, not one per group as a loop on the double takes)
  const f = n >= 0 ? n * 2 : -n * 2 - 1;
  const low = f % 0x10000000;
  let high = (f - low) / 0x10000000;
  buf[pos++] = (low & 0x7f) | 0x80;
  buf[pos++] = ((low >>> 7) & 0x7f) | 0x80;
  buf[pos++] = ((low >>> 14) & 0x7f) | 0x80;
  buf[pos++] = (low >>> 21) | 0x80;
  while (high > 0x7f) {
    buf[pos++] = (high & 0x7f) | 0x80;
    high >>>= 7;
  }
  buf[pos++] = high;
  return pos;
}

/** How many bytes writeLong takes for `n`. */
export function longSize(n: number): number {
  let f = n >= 0 ? n * 2 : -n * 2 - 1;
  let size = 1;
  while (f >= 128) {
    f = Math.floor(f / 128);
    size++;
  }
  return size;
}

/**
 * Avro's zigzag varint (the encoding of int, long, and of every length and count), read by hand
 * in one place for every reader that walks datums without decoding them: the datum skippers
 * (datum-scan.ts), the container scan of @hourglass/bucket-format and its block headers.
 */

/** Value of the last readVarint, zigzag-decoded; module state, so reading a varint allocates nothing. */
let value = 0;

export function varintValue(): number {
  return value;
}

/**
 * Reads a varint of at most `maxBytes` bytes (5 for an int, 10 for a long) at `pos`: returns the
 * position after it, its value in varintValue(), or −1 when it is truncated or longer. Values are
 * exact up to 2^53 in magnitude (as avsc reads them).
 */
export function readVarint(buf: Buffer, pos: number, maxBytes = 10): number {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes; i++) {
    const b = buf[pos + i];
    if (b === undefined) return -1;
    n += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      value = n % 2 === 1 ? -(n + 1) / 2 : n / 2;
      return pos + i + 1;
    }
    scale *= 128;
  }
  return -1;
}

/**
 * Whether the varint read from `pos` to `next` is the one encoders write: no multi-byte form
 * ending in a zero byte (avsc would decode it and encode other bytes back).
 */
export function isCanonicalVarint(buf: Buffer, pos: number, next: number): boolean {
  return next - pos === 1 || buf[next - 1] !== 0;
}

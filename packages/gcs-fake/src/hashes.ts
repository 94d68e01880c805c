import { createHash } from 'node:crypto';
import { CRC32C } from '@google-cloud/storage';

/** GCS reports CRC32C as the base64 of the big-endian 4-byte checksum, exactly what the client computes. */
export function crc32cBase64(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

export function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

/** Parses an `x-goog-hash` style header: `crc32c=AAAAAA==,md5=...`. */
export function parseGoogHash(header: string | undefined): { crc32c?: string; md5?: string } {
  const out: { crc32c?: string; md5?: string } = {};
  if (!header) return out;
  for (const pair of header.split(',')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const kind = pair.slice(0, eq).trim().toLowerCase();
    const value = pair.slice(eq + 1).trim();
    if (kind === 'crc32c') out.crc32c = value;
    else if (kind === 'md5') out.md5 = value;
  }
  return out;
}

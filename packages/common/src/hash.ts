import { createHash } from 'node:crypto';

/**
 * SHA-256 as lower-case hex: of a final file's bytes (the manifest's `sha256`, which readers
 * check) and of an API key (the gateway's key file stores only this).
 */
export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

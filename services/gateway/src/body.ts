import { gunzip } from 'node:zlib';
import { HourglassError } from '@hourglass/common';

/**
 * Undoes Content-Encoding. The wire size is already bounded by fastify's bodyLimit;
 * the decompressed size is bounded here by zlib's maxOutputLength, so a gzip bomb
 * stops at the limit instead of filling memory.
 */
export function decodeContent(
  body: Buffer,
  encoding: string | undefined,
  maxDecompressedBytes: number,
): Promise<Buffer> | Buffer {
  const coding = encoding?.trim().toLowerCase();
  if (coding === undefined || coding === '' || coding === 'identity') {
    if (body.length > maxDecompressedBytes) throw tooLarge(maxDecompressedBytes);
    return body;
  }
  if (coding !== 'gzip' && coding !== 'x-gzip') {
    throw new HourglassError(
      'HTTP_UNSUPPORTED_MEDIA_TYPE',
      `Content-Encoding ${JSON.stringify(encoding)} is not supported; use gzip or none`,
    );
  }
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: maxDecompressedBytes }, (err, out) => {
      if (!err) return resolve(out);
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return reject(tooLarge(maxDecompressedBytes));
      reject(new HourglassError('HTTP_BAD_REQUEST', 'the body is not valid gzip'));
    });
  });
}

function tooLarge(limit: number): HourglassError {
  return new HourglassError('HTTP_BODY_TOO_LARGE', `the decompressed body exceeds ${limit} bytes`);
}

import { HourglassError } from '@hourglass/common';

/** Client error codes that mean the bytes and their checksum disagree. */
const CHECKSUM_CODES = new Set(['CONTENT_DOWNLOAD_MISMATCH', 'FILE_NO_UPLOAD', 'FILE_NO_UPLOAD_DELETE']);

/**
 * The HTTP status behind an error of the storage client, whichever layer raised it
 * (ApiError.code, a gaxios response, a resumable upload's numeric code).
 */
export function httpStatusOf(e: unknown): number | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const err = e as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const v of [err.code, err.status, err.response?.status]) {
    if (typeof v === 'number' && v >= 100 && v < 600) return v;
    if (typeof v === 'string' && /^\d{3}$/.test(v)) return Number(v);
  }
  return undefined;
}

/**
 * Maps a storage client error to the store's codes. The client has already retried what
 * it could, so a transient failure here means its retries ran out: STORAGE_UNAVAILABLE.
 * Anything not known to be permanent counts as transient: the caller retries rather
 * than drops data.
 */
export function toStoreError(e: unknown, op: string, name: string): HourglassError {
  if (e instanceof HourglassError) return e;
  const message = `GCS ${op} ${JSON.stringify(name)} failed: ${e instanceof Error ? e.message : String(e)}`;
  const options = { cause: e, path: name };
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CHECKSUM_CODES.has(code)) {
    return new HourglassError('STORAGE_CHECKSUM_MISMATCH', message, options);
  }
  const status = httpStatusOf(e);
  if (status === 400 && /CRC32C|MD5/i.test(message)) {
    return new HourglassError('STORAGE_CHECKSUM_MISMATCH', message, options);
  }
  // Object reads answer 404 as "absent" before getting here: a 404 left is the bucket's.
  if (status === 404) return new HourglassError('STORAGE_REJECTED', `${message} (does the bucket exist?)`, options);
  if (status === 412) return new HourglassError('STORAGE_PRECONDITION_FAILED', message, options);
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return new HourglassError('STORAGE_REJECTED', message, options);
  }
  return new HourglassError('STORAGE_UNAVAILABLE', message, options);
}

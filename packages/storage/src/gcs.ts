import { createHash, randomUUID } from 'node:crypto';
import {
  CRC32C,
  IdempotencyStrategy,
  RETRYABLE_ERR_FN_DEFAULT,
  Storage,
  type Bucket,
  type StorageOptions,
} from '@google-cloud/storage';
import { Defaults, HourglassError } from '@hourglass/common';
import { httpStatusOf, toStoreError } from './gcs-errors.js';
import { checkObjectName, compareNames } from './names.js';
import type { ObjectInfo, ObjectStore } from './store.js';

export interface GcsStoreOptions {
  bucket: string;
  /** Folder inside the bucket, e.g. `events/prod`; object `x` is stored as `events/prod/x`. */
  prefix?: string;
  /**
   * Options of the @google-cloud/storage client (projectId, credentials, apiEndpoint...).
   * Its `retryOptions` are merged over ours (Defaults.gcs*). The client also honours
   * STORAGE_EMULATOR_HOST, which is how tests point it at the GCS fake.
   */
  storage?: StorageOptions;
  /** Objects larger than this use a resumable upload (default Defaults.gcsResumableThreshold). */
  resumableThreshold?: number;
  /** Resumable chunk size, a multiple of 256 KiB (default Defaults.gcsChunkSize). */
  chunkSize?: number;
  /** Objects per list request, at most 1000 (default Defaults.gcsListPageSize). */
  listPageSize?: number;
}

/** Custom metadata naming the call that wrote an object: tells our own retried write from someone else's. */
const WRITER_KEY = 'hourglass-writer';

/** Creates retried when a refusing object vanished before we could look at it. */
const MAX_CREATE_ATTEMPTS = 3;

type RetryOptions = NonNullable<StorageOptions['retryOptions']>;

type Authorship = 'absent' | 'us' | 'other' | 'corrupt';

/**
 * The object store on Google Cloud Storage, through the official client.
 *
 * - createIfAbsent uploads with `ifGenerationMatch=0`, which also makes the client retry it
 *   safely. When the answer to a write is lost (a dropped connection, or a retry that meets
 *   our own first attempt and gets 412), the object's writer token says whether this call
 *   created it, so a create that succeeded is never reported as "already existed".
 * - put (watermark leases, one writer per name) overwrites; its retries are safe because
 *   every attempt writes the same bytes.
 * - Uploads above `resumableThreshold` go as chunked resumable uploads (a failed chunk is
 *   resent alone); smaller ones in one multipart request. The client checks the CRC32C of
 *   every upload and download; uploads are also checked against the returned MD5.
 */
export class GcsStore implements ObjectStore {
  readonly url: string;
  /** The underlying client, for what the store does not cover (e.g. creating the bucket). */
  readonly storage: Storage;
  private readonly bucket: Bucket;
  private readonly keyPrefix: string;
  private readonly resumableThreshold: number;
  private readonly chunkSize: number;
  private readonly listPageSize: number;

  constructor(options: GcsStoreOptions) {
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (prefix !== '') checkObjectName(prefix);
    this.keyPrefix = prefix === '' ? '' : `${prefix}/`;
    this.url = `gs://${options.bucket}${prefix === '' ? '' : `/${prefix}`}`;
    this.storage = new Storage({ ...options.storage, retryOptions: retryOptions(options.storage?.retryOptions) });
    this.bucket = this.storage.bucket(options.bucket);
    this.resumableThreshold = options.resumableThreshold ?? Defaults.gcsResumableThreshold;
    this.chunkSize = options.chunkSize ?? Defaults.gcsChunkSize;
    this.listPageSize = Math.min(Math.max(options.listPageSize ?? Defaults.gcsListPageSize, 1), 1000);
  }

  async createIfAbsent(name: string, data: Buffer): Promise<boolean> {
    const key = this.key(name);
    const writer = randomUUID();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.upload(key, data, writer, 0);
        return true;
      } catch (e) {
        const author = await this.authorOf(key, writer, data);
        if (author === 'us') return true;
        if (author === 'other') return false; // the name is taken: create-if-absent leaves it unchanged
        if (author === 'corrupt') throw checksumMismatch(name);
        // Refused as existing, yet gone now: deleted in between, so the name is free again.
        if (author === 'absent' && httpStatusOf(e) === 412 && attempt < MAX_CREATE_ATTEMPTS) continue;
        throw toStoreError(e, 'create', name);
      }
    }
  }

  async put(name: string, data: Buffer): Promise<void> {
    const key = this.key(name);
    const writer = randomUUID();
    try {
      await this.upload(key, data, writer);
    } catch (e) {
      const author = await this.authorOf(key, writer, data);
      if (author === 'us') return;
      if (author === 'corrupt') throw checksumMismatch(name);
      throw toStoreError(e, 'put', name);
    }
  }

  async get(name: string): Promise<Buffer | undefined> {
    try {
      const [data] = await this.bucket.file(this.key(name)).download({ validation: 'crc32c' });
      return data;
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw toStoreError(e, 'get', name);
    }
  }

  async exists(name: string): Promise<boolean> {
    try {
      const [found] = await this.bucket.file(this.key(name)).exists();
      return found;
    } catch (e) {
      throw toStoreError(e, 'exists', name);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let pageToken: string | undefined;
    try {
      do {
        const [files, next] = await this.bucket.getFiles({
          prefix: this.keyPrefix + prefix,
          autoPaginate: false,
          maxResults: this.listPageSize,
          ...(pageToken === undefined ? {} : { pageToken }),
        });
        for (const f of files) out.push({ name: f.name.slice(this.keyPrefix.length), size: Number(f.metadata.size) });
        pageToken = (next as { pageToken?: string } | null)?.pageToken;
      } while (pageToken);
    } catch (e) {
      throw toStoreError(e, 'list', prefix);
    }
    return out.sort((a, b) => compareNames(a.name, b.name));
  }

  async delete(name: string): Promise<void> {
    try {
      await this.bucket.file(this.key(name)).delete({ ignoreNotFound: true });
    } catch (e) {
      throw toStoreError(e, 'delete', name);
    }
  }

  private key(name: string): string {
    return this.keyPrefix + checkObjectName(name);
  }

  private async upload(key: string, data: Buffer, writer: string, ifGenerationMatch?: number): Promise<void> {
    // A fresh File per call: the client keeps per-upload state (metadata) on it.
    const file = this.bucket.file(key);
    const resumable = data.length > this.resumableThreshold;
    await file.save(data, {
      resumable,
      ...(resumable ? { chunkSize: this.chunkSize } : {}),
      validation: 'crc32c',
      metadata: { metadata: { [WRITER_KEY]: writer } },
      ...(ifGenerationMatch === undefined ? {} : { preconditionOpts: { ifGenerationMatch } }),
    });
    const md5 = file.metadata.md5Hash;
    if (md5 !== undefined && md5 !== md5Base64(data)) throw checksumMismatch(key);
  }

  /** After a failed write: is the object there, and did this call (token `writer`) write it, intact? */
  private async authorOf(key: string, writer: string, data: Buffer): Promise<Authorship | undefined> {
    let metadata;
    try {
      [metadata] = await this.bucket.file(key).getMetadata();
    } catch (e) {
      return httpStatusOf(e) === 404 ? 'absent' : undefined; // unknown: report the write's own error
    }
    if (metadata.metadata?.[WRITER_KEY] !== writer) return 'other';
    const intact =
      Number(metadata.size) === data.length &&
      metadata.crc32c === crc32cBase64(data) &&
      (metadata.md5Hash === undefined || metadata.md5Hash === md5Base64(data));
    return intact ? 'us' : 'corrupt';
  }
}

/**
 * Our retry defaults for the client. RetryAlways: every write we make is safe to repeat
 * (create carries ifGenerationMatch=0, put rewrites the same bytes, delete ignores 404);
 * the client's default (RetryConditional) would also switch retries off on the shared
 * client for the duration of any unconditional call, racing with concurrent creates.
 */
function retryOptions(overrides: RetryOptions | undefined): RetryOptions {
  const merged: RetryOptions = {
    autoRetry: true,
    maxRetries: Defaults.gcsMaxRetries,
    totalTimeout: Defaults.gcsRetryTotalTimeout / 1000,
    maxRetryDelay: Defaults.gcsMaxRetryDelay / 1000,
    idempotencyStrategy: IdempotencyStrategy.RetryAlways,
    retryableErrorFn: (err) => RETRYABLE_ERR_FN_DEFAULT(err) || isTimeoutOrRefused(err),
    ...overrides,
  };
  // The client's upload retry (async-retry) starts at 1 s and throws if its cap is lower.
  merged.maxRetryDelay = Math.max(merged.maxRetryDelay ?? 1, 1);
  return merged;
}

/**
 * The client's default does not retry a request that timed out or found the port closed
 * (an endpoint restarting); both are transient, and every call we make is safe to repeat.
 */
function isTimeoutOrRefused(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown } | null;
  return (
    e?.type === 'request-timeout' ||
    (typeof e?.code === 'string' && ['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNREFUSED'].includes(e.code))
  );
}

function checksumMismatch(name: string): HourglassError {
  return new HourglassError(
    'STORAGE_CHECKSUM_MISMATCH',
    `GCS object ${JSON.stringify(name)} does not match its checksum`,
    {
      path: name,
    },
  );
}

function crc32cBase64(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

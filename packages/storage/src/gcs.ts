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
import { withDeadline } from './deadline.js';
import { httpStatusOf, toStoreError } from './gcs-errors.js';
import { GcsFolders } from './gcs-folders.js';
import { bucketJson } from './gcs-json.js';
import { checkFolderName, checkObjectName, compareNames } from './names.js';
import { forEachBounded } from './parallel.js';
import { checkByteRange } from './range.js';
import {
  type Children,
  type ObjectBytes,
  type ObjectInfo,
  type ObjectStore,
  type RenameFolderResult,
  joinedBytes,
} from './store.js';
import { WriterTokens } from './writer-tokens.js';

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
  /** Bound on one request with its retries, in ms (default Defaults.storeTimeout). */
  timeoutMs?: number;
  /** Deletes in flight at once in deleteMany (default Defaults.storeDeleteParallelism). */
  deleteParallelism?: number;
}

/** A list returns names and sizes only: the rest of each object resource is bytes for nothing. */
const LIST_FIELDS = 'items(name,size),prefixes,nextPageToken';

/** A page of objects.list as LIST_FIELDS asks for it. */
interface ListPage {
  items?: { name: string; size: string }[];
  prefixes?: string[];
  nextPageToken?: string;
}

/** Custom metadata naming the call that wrote an object: tells our own retried write from someone else's. */
const WRITER_KEY = 'hourglass-writer';

/** Creates retried when a refusing object vanished before we could look at it. */
const MAX_CREATE_ATTEMPTS = 3;

type RetryOptions = NonNullable<StorageOptions['retryOptions']>;

/**
 * Share of the store timeout the client may spend retrying: it stops before the store's bound,
 * so a call whose retries run out reports the last real error (ECONNREFUSED, a 503), not the bound.
 */
const RETRY_BUDGET_SHARE = 0.8;

/** Who wrote the object found after a failed write: this call (token), someone with our exact bytes, or another. */
type Authorship = 'absent' | 'us' | 'same-bytes' | 'other' | 'corrupt';

/**
 * The object store on Google Cloud Storage, through the official client.
 *
 * - createIfAbsent uploads with `ifGenerationMatch=0`, which also makes the client retry it
 *   safely. When the answer to a write is lost (a dropped connection, or a retry that meets
 *   our own first attempt and gets 412), the object's writer token says whether this call
 *   created it, so a create that succeeded is never reported as "already existed". A create
 *   that failed without a known outcome leaves its token behind (writer-tokens.ts): a retry
 *   of the same bytes that meets the write landing late recognises it as its own.
 * - Every request, with the client's retries, is bounded by `timeoutMs`; past it the call
 *   fails STORAGE_UNAVAILABLE.
 * - Folders are those of a hierarchical-namespace bucket (gcs-folders.ts): renameFolder is
 *   the JSON API's atomic folder rename.
 * - put (watermark leases, one writer per name) overwrites; its retries are safe because
 *   every attempt writes the same bytes.
 * - Uploads above `resumableThreshold` go as chunked resumable uploads (a failed chunk is
 *   resent alone); smaller ones in one multipart request. The client checks the CRC32C of
 *   every upload and download; uploads are also checked against the returned MD5.
 */
export class GcsStore implements ObjectStore {
  readonly url: string;
  /** GCS sustains about one write per second to one object name. */
  readonly rewriteIntervalMs = 1_000;
  /** The underlying client, for what the store does not cover (e.g. creating the bucket). */
  readonly storage: Storage;
  private readonly bucket: Bucket;
  private readonly keyPrefix: string;
  private readonly resumableThreshold: number;
  private readonly chunkSize: number;
  private readonly listPageSize: number;
  private readonly timeoutMs: number;
  private readonly deleteParallelism: number;
  private readonly folders: GcsFolders;
  private readonly writerTokens = new WriterTokens();

  constructor(options: GcsStoreOptions) {
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (prefix !== '') checkObjectName(prefix);
    this.keyPrefix = prefix === '' ? '' : `${prefix}/`;
    this.url = `gs://${options.bucket}${prefix === '' ? '' : `/${prefix}`}`;
    this.timeoutMs = options.timeoutMs ?? Defaults.storeTimeout;
    this.storage = new Storage({
      timeout: this.timeoutMs,
      ...options.storage,
      retryOptions: retryOptions(this.timeoutMs, options.storage?.retryOptions),
    });
    this.bucket = this.storage.bucket(options.bucket);
    this.resumableThreshold = options.resumableThreshold ?? Defaults.gcsResumableThreshold;
    this.chunkSize = options.chunkSize ?? Defaults.gcsChunkSize;
    this.listPageSize = Math.min(Math.max(options.listPageSize ?? Defaults.gcsListPageSize, 1), 1000);
    this.deleteParallelism = options.deleteParallelism ?? Defaults.storeDeleteParallelism;
    this.folders = new GcsFolders(this.bucket, this.timeoutMs);
  }

  async createIfAbsent(name: string, bytes: ObjectBytes): Promise<boolean> {
    // one upload body: the client hashes and sends a Buffer
    const data = joinedBytes(bytes);
    const key = this.key(name);
    const digest = md5Base64(data);
    const writer = this.writerTokens.tokenFor(key, digest);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.bounded('create', name, () => this.upload(key, data, writer, 0));
        this.writerTokens.settle(key);
        return true;
      } catch (e) {
        const author = await this.authorOf(key, writer, data);
        if (author !== undefined && author !== 'absent') this.writerTokens.settle(key);
        if (author === 'us') return true;
        // The name is taken (equal bytes from another writer too): create-if-absent leaves it unchanged.
        if (author === 'other' || author === 'same-bytes') return false;
        if (author === 'corrupt') throw checksumMismatch(name);
        // Refused as existing, yet gone now: deleted in between, so the name is free again.
        if (author === 'absent' && httpStatusOf(e) === 412 && attempt < MAX_CREATE_ATTEMPTS) continue;
        this.writerTokens.remember(key, digest, writer);
        throw toStoreError(e, 'create', name);
      }
    }
  }

  async put(name: string, data: Buffer): Promise<void> {
    const key = this.key(name);
    const writer = randomUUID();
    try {
      await this.bounded('put', name, () => this.upload(key, data, writer));
    } catch (e) {
      const author = await this.authorOf(key, writer, data);
      if (author === 'us' || author === 'same-bytes') return;
      if (author === 'corrupt') throw checksumMismatch(name);
      throw toStoreError(e, 'put', name);
    }
  }

  async get(name: string): Promise<Buffer | undefined> {
    const file = this.bucket.file(this.key(name));
    try {
      const [data] = await this.bounded('get', name, () => file.download({ validation: 'crc32c' }));
      return data;
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw toStoreError(e, 'get', name);
    }
  }

  async getRange(name: string, start: number, end: number): Promise<Buffer | undefined> {
    checkByteRange(start, end);
    if (end === start) return (await this.exists(name)) ? Buffer.alloc(0) : undefined;
    const file = this.bucket.file(this.key(name));
    try {
      // No validation: GCS's hashes cover the whole object (the client refuses one with a range).
      const range = { start, end: end - 1, validation: false } as const;
      const [data] = await this.bounded('get', name, () => file.download(range));
      return data;
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      if (httpStatusOf(e) === 416) return Buffer.alloc(0); // the object ends before `start`
      throw toStoreError(e, 'get', name);
    }
  }

  async exists(name: string): Promise<boolean> {
    const file = this.bucket.file(this.key(name));
    try {
      const [found] = await this.bounded('exists', name, () => file.exists());
      return found;
    } catch (e) {
      throw toStoreError(e, 'exists', name);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.listPage('list', prefix, pageToken);
      out.push(...page.objects);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out.sort((a, b) => compareNames(a.name, b.name));
  }

  async listChildren(prefix: string): Promise<Children> {
    const out: Children = { objects: [], prefixes: [] };
    let pageToken: string | undefined;
    do {
      const page = await this.listPage('listChildren', prefix, pageToken, '/');
      out.objects.push(...page.objects);
      out.prefixes.push(...page.prefixes);
      pageToken = page.nextPageToken;
    } while (pageToken);
    out.objects.sort((a, b) => compareNames(a.name, b.name));
    out.prefixes.sort(compareNames);
    return out;
  }

  async delete(name: string): Promise<void> {
    const file = this.bucket.file(this.key(name));
    try {
      await this.bounded('delete', name, () => file.delete({ ignoreNotFound: true }));
    } catch (e) {
      throw toStoreError(e, 'delete', name);
    }
  }

  async deleteMany(names: readonly string[]): Promise<void> {
    for (const name of names) this.key(name);
    await forEachBounded(names, this.deleteParallelism, (name) => this.delete(name));
  }

  async renameFolder(from: string, to: string): Promise<RenameFolderResult> {
    const source = this.keyPrefix + checkFolderName(from);
    const target = this.keyPrefix + checkFolderName(to);
    if (to.startsWith(from) || from.startsWith(to)) {
      throw new HourglassError('STORAGE_REJECTED', `cannot rename folder ${from} to ${to}: one is inside the other`, {
        path: from,
      });
    }
    return this.folders.rename(source, target);
  }

  async deleteFolder(prefix: string): Promise<void> {
    await this.folders.delete(this.keyPrefix + checkFolderName(prefix));
  }

  /** One page of a listing: objects (name, size) and, with a delimiter, the folder prefixes. */
  private async listPage(
    op: string,
    prefix: string,
    pageToken: string | undefined,
    delimiter?: string,
  ): Promise<Children & { nextPageToken: string | undefined }> {
    const query = {
      prefix: this.keyPrefix + prefix,
      maxResults: this.listPageSize,
      fields: LIST_FIELDS,
      ...(delimiter === undefined ? {} : { delimiter }),
      ...(pageToken === undefined ? {} : { pageToken }),
    };
    let page: ListPage;
    try {
      page = await this.bounded(op, prefix, () => bucketJson<ListPage>(this.bucket, { uri: '/o', qs: query }));
    } catch (e) {
      throw toStoreError(e, op, prefix);
    }
    const strip = (name: string): string => name.slice(this.keyPrefix.length);
    return {
      objects: (page.items ?? []).map((o) => ({ name: strip(o.name), size: Number(o.size) })),
      prefixes: (page.prefixes ?? []).map(strip),
      nextPageToken: page.nextPageToken,
    };
  }

  private bounded<T>(op: string, name: string, work: () => Promise<T>): Promise<T> {
    return withDeadline(this.timeoutMs, `GCS ${op} ${JSON.stringify(name)}`, name, work);
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
      ...(resumable ? { chunkSize: this.chunkSize } : { timeout: this.timeoutMs }),
      validation: 'crc32c',
      metadata: { metadata: { [WRITER_KEY]: writer } },
      ...(ifGenerationMatch === undefined ? {} : { preconditionOpts: { ifGenerationMatch } }),
    });
    const md5 = file.metadata.md5Hash;
    if (md5 !== undefined && md5 !== md5Base64(data)) throw checksumMismatch(key);
  }

  /**
   * After a failed write: is the object there, and did this call (token `writer`) write it,
   * intact? Unknown (the check failed too) is undefined: the write's own error is reported.
   */
  private async authorOf(key: string, writer: string, data: Buffer): Promise<Authorship | undefined> {
    let metadata;
    try {
      [metadata] = await this.bounded('getMetadata', key, () => this.bucket.file(key).getMetadata());
    } catch (e) {
      return httpStatusOf(e) === 404 ? 'absent' : undefined;
    }
    const intact =
      Number(metadata.size) === data.length &&
      metadata.crc32c === crc32cBase64(data) &&
      (metadata.md5Hash === undefined || metadata.md5Hash === md5Base64(data));
    if (metadata.metadata?.[WRITER_KEY] !== writer) return intact ? 'same-bytes' : 'other';
    return intact ? 'us' : 'corrupt';
  }
}

/**
 * Our retry defaults for the client. RetryAlways: every write we make is safe to repeat
 * (create carries ifGenerationMatch=0, put rewrites the same bytes, delete ignores 404);
 * the client's default (RetryConditional) would also switch retries off on the shared
 * client for the duration of any unconditional call, racing with concurrent creates.
 */
function retryOptions(timeoutMs: number, overrides: RetryOptions | undefined): RetryOptions {
  const merged: RetryOptions = {
    autoRetry: true,
    maxRetries: Defaults.gcsMaxRetries,
    totalTimeout: (timeoutMs * RETRY_BUDGET_SHARE) / 1000,
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

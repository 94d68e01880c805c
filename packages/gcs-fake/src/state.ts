import { addFolders, ancestorsOf, type OperationRecord } from './folders.js';
import { crc32cBase64, md5Base64 } from './hashes.js';

/** A JSON-API error: the status and `reason` real GCS answers with. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StoredObject {
  bucket: string;
  name: string;
  data: Buffer;
  generation: string;
  metageneration: number;
  contentType: string;
  /** Custom key/value metadata (`metadata` in the JSON resource). */
  metadata: Record<string, string> | undefined;
  crc32c: string;
  /** Absent for composed objects, as on real GCS. */
  md5Hash: string | undefined;
  componentCount: number | undefined;
  timeCreated: string;
  updated: string;
}

export interface BucketRecord {
  name: string;
  timeCreated: string;
  objects: Map<string, StoredObject>;
  /** Hierarchical namespace: folder name (ending in '/') → folder (folders.ts). */
  folders: Map<string, FolderRecord>;
}

export interface FolderRecord {
  name: string;
  metageneration: number;
  createTime: string;
  updateTime: string;
}

/** Generation / metageneration preconditions, as strings straight from the query. */
export interface Preconditions {
  ifGenerationMatch?: string;
  ifGenerationNotMatch?: string;
  ifMetagenerationMatch?: string;
  ifMetagenerationNotMatch?: string;
}

/** Object metadata a client may set on upload (the JSON part / resumable init body). */
export interface WritableMetadata {
  contentType?: string;
  metadata?: Record<string, string>;
}

export interface ListQuery {
  prefix?: string;
  delimiter?: string;
  maxResults?: number;
  pageToken?: string;
  startOffset?: string;
  endOffset?: string;
}

export interface ListPage {
  items: StoredObject[];
  prefixes: string[];
  nextPageToken: string | undefined;
}

/** GCS caps a list page at 1000 results whatever maxResults asks for. */
const MAX_PAGE = 1000;

/**
 * The fake's data: buckets, objects (one live generation each: no versioning) and
 * resumable upload sessions, all in memory. Pass one FakeState to several servers in
 * turn to keep data across a simulated GCS restart.
 */
export class FakeState {
  readonly buckets = new Map<string, BucketRecord>();
  readonly sessions = new Map<string, UploadSession>();
  /** Long-running operations (folder renames) by id. */
  readonly operations = new Map<string, OperationRecord>();
  private generationSeq = 0;

  constructor(readonly autoCreateBuckets = true) {}

  bucket(name: string): BucketRecord {
    const found = this.buckets.get(name);
    if (found) return found;
    if (!this.autoCreateBuckets) throw new ApiError(404, 'notFound', `The specified bucket does not exist: ${name}`);
    return this.insertBucket(name);
  }

  insertBucket(name: string): BucketRecord {
    if (this.buckets.has(name)) throw new ApiError(409, 'conflict', `The bucket ${name} already exists.`);
    const record: BucketRecord = {
      name,
      timeCreated: new Date().toISOString(),
      objects: new Map(),
      folders: new Map(),
    };
    this.buckets.set(name, record);
    return record;
  }

  deleteBucket(name: string): void {
    const b = this.bucket(name);
    if (b.objects.size > 0) throw new ApiError(409, 'conflict', `The bucket ${name} is not empty.`);
    this.buckets.delete(name);
  }

  getObject(bucket: string, name: string, pre: Preconditions = {}, generation?: string): StoredObject {
    const obj = this.bucket(bucket).objects.get(name);
    if (!obj || (generation !== undefined && generation !== obj.generation)) {
      throw new ApiError(404, 'notFound', `No such object: ${bucket}/${name}`);
    }
    checkPreconditions(obj, pre);
    return obj;
  }

  putObject(
    bucket: string,
    name: string,
    data: Buffer,
    meta: WritableMetadata,
    pre: Preconditions,
    componentCount?: number,
  ): StoredObject {
    const b = this.bucket(bucket);
    checkPreconditions(b.objects.get(name), pre);
    const now = new Date().toISOString();
    const obj: StoredObject = {
      bucket,
      name,
      data,
      generation: this.nextGeneration(),
      metageneration: 1,
      contentType: meta.contentType ?? 'application/octet-stream',
      metadata: meta.metadata,
      crc32c: crc32cBase64(data),
      md5Hash: componentCount === undefined ? md5Base64(data) : undefined,
      componentCount,
      timeCreated: now,
      updated: now,
    };
    b.objects.set(name, obj);
    addFolders(b, ancestorsOf(name));
    return obj;
  }

  patchObject(bucket: string, name: string, patch: WritableMetadata, pre: Preconditions): StoredObject {
    const obj = this.getObject(bucket, name, pre);
    if (patch.contentType !== undefined) obj.contentType = patch.contentType;
    if (patch.metadata !== undefined) obj.metadata = { ...obj.metadata, ...patch.metadata };
    obj.metageneration++;
    obj.updated = new Date().toISOString();
    return obj;
  }

  deleteObject(bucket: string, name: string, pre: Preconditions): void {
    this.getObject(bucket, name, pre);
    this.bucket(bucket).objects.delete(name);
  }

  compose(
    bucket: string,
    destination: string,
    sources: { name: string; generation?: string; ifGenerationMatch?: string }[],
    meta: WritableMetadata,
    pre: Preconditions,
  ): StoredObject {
    if (sources.length === 0 || sources.length > 32) {
      throw new ApiError(400, 'invalid', 'compose takes 1 to 32 source objects');
    }
    const parts = sources.map((s) =>
      this.getObject(bucket, s.name, { ifGenerationMatch: s.ifGenerationMatch }, s.generation),
    );
    const count = parts.reduce((n, p) => n + (p.componentCount ?? 1), 0);
    return this.putObject(bucket, destination, Buffer.concat(parts.map((p) => p.data)), meta, pre, count);
  }

  list(bucket: string, q: ListQuery): ListPage {
    const b = this.bucket(bucket);
    const prefix = q.prefix ?? '';
    const pageSize = Math.min(Math.max(q.maxResults ?? MAX_PAGE, 1), MAX_PAGE);
    const after = q.pageToken === undefined ? undefined : Buffer.from(q.pageToken, 'base64url').toString('utf8');
    const names = [...b.objects.keys()].filter((n) => n.startsWith(prefix)).sort(compareNames);
    const items: StoredObject[] = [];
    const prefixes: string[] = [];
    let last: string | undefined;
    for (const name of names) {
      if (q.startOffset !== undefined && compareNames(name, q.startOffset) < 0) continue;
      if (q.endOffset !== undefined && compareNames(name, q.endOffset) >= 0) continue;
      // Resume strictly after the last result; a prefix result covers every name under it.
      if (after !== undefined && (compareNames(name, after) <= 0 || isUnderPrefixToken(name, after, q.delimiter))) {
        continue;
      }
      const key = rollUp(name, prefix, q.delimiter);
      if (key === last) continue;
      if (items.length + prefixes.length === pageSize) {
        return { items, prefixes, nextPageToken: Buffer.from(last ?? '', 'utf8').toString('base64url') };
      }
      if (key === name) items.push(b.objects.get(name) as StoredObject);
      else prefixes.push(key);
      last = key;
    }
    return { items, prefixes, nextPageToken: undefined };
  }

  startSession(id: string, bucket: string, name: string, meta: WritableMetadata, pre: Preconditions): UploadSession {
    this.bucket(bucket);
    // Real GCS checks generation preconditions when the session starts and again when it completes.
    checkPreconditions(this.bucket(bucket).objects.get(name), pre);
    const session = new UploadSession(id, bucket, name, meta, pre);
    this.sessions.set(id, session);
    return session;
  }

  private nextGeneration(): string {
    this.generationSeq = (this.generationSeq + 1) % 1000;
    return String(Date.now() * 1000 + this.generationSeq);
  }
}

/** Bytes received so far by one resumable upload, and its result once complete. */
export class UploadSession {
  private readonly chunks: Buffer[] = [];
  received = 0;
  result: StoredObject | undefined;

  constructor(
    readonly id: string,
    readonly bucket: string,
    readonly name: string,
    readonly meta: WritableMetadata,
    readonly pre: Preconditions,
  ) {}

  /** Appends the part of `data` (which starts at byte `offset` of the object) not yet received. */
  append(offset: number, data: Buffer): void {
    if (offset > this.received) return; // a gap: keep nothing, the client re-syncs from Range
    const fresh = data.subarray(this.received - offset);
    if (fresh.length === 0) return;
    this.chunks.push(Buffer.from(fresh));
    this.received += fresh.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function checkPreconditions(current: StoredObject | undefined, pre: Preconditions): void {
  const generation = current?.generation ?? '0';
  if (pre.ifGenerationMatch !== undefined && pre.ifGenerationMatch !== generation) {
    throw new ApiError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
  }
  if (pre.ifGenerationNotMatch !== undefined && pre.ifGenerationNotMatch === generation) {
    throw new ApiError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
  }
  if (pre.ifMetagenerationMatch !== undefined && pre.ifMetagenerationMatch !== String(current?.metageneration ?? 0)) {
    throw new ApiError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
  }
  if (
    pre.ifMetagenerationNotMatch !== undefined &&
    pre.ifMetagenerationNotMatch === String(current?.metageneration ?? 0)
  ) {
    throw new ApiError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
  }
}

/** GCS orders names by their UTF-8 bytes. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function rollUp(name: string, prefix: string, delimiter: string | undefined): string {
  if (!delimiter) return name;
  const at = name.indexOf(delimiter, prefix.length);
  return at < 0 ? name : name.slice(0, at + delimiter.length);
}

function isUnderPrefixToken(name: string, token: string, delimiter: string | undefined): boolean {
  return delimiter !== undefined && delimiter !== '' && token.endsWith(delimiter) && name.startsWith(token);
}

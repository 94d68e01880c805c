/**
 * The object store the consumer stages, finalizes and leases into. Two implementations:
 * a local directory (the default) and GCS. Names are '/'-separated keys relative to the
 * store root, e.g. `track_played/dt=2026-11-28/hour=17/_SUCCESS`.
 *
 * Both stores accept the same names (checkObjectName in names.ts): no empty, '.', '..'
 * or '.tmp-*' segments, no leading '/', at most 1024 bytes; others fail STORAGE_INVALID_NAME.
 *
 * Durability contract: when a write resolves, the bytes survive a crash (fsync locally,
 * a completed upload on GCS). Errors are HourglassError with a STORAGE_* code;
 * STORAGE_UNAVAILABLE is transient (retry), the others are permanent.
 */
/**
 * An object's bytes: one buffer, or the buffers that make it up, in order. A staged file is its
 * header and its blocks: the local store writes them with writev, without joining them first.
 */
export type ObjectBytes = Buffer | readonly Buffer[];

/** How many bytes `data` holds. */
export function byteLengthOf(data: ObjectBytes): number {
  if (Buffer.isBuffer(data)) return data.length;
  let n = 0;
  for (const part of data) n += part.length;
  return n;
}

/** `data` as one buffer (itself when it is one). */
export function joinedBytes(data: ObjectBytes): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.concat(data);
}

export interface ObjectInfo {
  name: string;
  size: number;
}

export interface ObjectStore {
  /** Human-readable location, e.g. `file:///data` or `gs://bucket/prefix`. */
  readonly url: string;
  /**
   * The least time between two writes of one object name that the store sustains (GCS: one per
   * second, more is throttled with 429); callers that rewrite a name (leases, the cursor) space
   * their writes by it. Absent: no limit.
   */
  readonly rewriteIntervalMs?: number;
  /**
   * Creates `name` with `data` only if no object of that name exists. Resolves `true`
   * when this call created it, `false` when it already existed (left unchanged).
   */
  createIfAbsent(name: string, data: ObjectBytes): Promise<boolean>;
  /** Creates or replaces `name` (used only for watermark leases). */
  put(name: string, data: Buffer): Promise<void>;
  /** The object's bytes, or undefined when it does not exist. */
  get(name: string): Promise<Buffer | undefined>;
  /**
   * The object's bytes [start, end) (shorter when the object ends before `end`, empty when it
   * ends before `start`), or undefined when it does not exist. No checksum covers a range: GCS's
   * hashes are the whole object's.
   */
  getRange(name: string, start: number, end: number): Promise<Buffer | undefined>;
  exists(name: string): Promise<boolean>;
  /** Every object whose name starts with `prefix`, sorted by name. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Deletes `name`; resolves when it is gone, also when it never existed. */
  delete(name: string): Promise<void>;
  /**
   * Moves every object under folder `from` to folder `to` (both end with '/') in one step
   * that is atomic for readers: a lister sees all of `to` or none of it. Parent folders of
   * `to` are created as needed. `to` must not hold objects yet: then 'target-exists' and
   * nothing changed; 'source-missing' when there is no folder `from`.
   */
  renameFolder(from: string, to: string): Promise<RenameFolderResult>;
  /** One level below `prefix` (delimiter '/'): its objects and the folders holding objects, sorted. */
  listChildren(prefix: string): Promise<Children>;
  /** Deletes every name (as `delete`), a bounded number at a time; resolves when all are gone. */
  deleteMany(names: readonly string[]): Promise<void>;
  /** Removes the folder `prefix` (ends with '/') when it is empty; a no-op when absent or not empty. */
  deleteFolder(prefix: string): Promise<void>;
}

export type RenameFolderResult = 'renamed' | 'target-exists' | 'source-missing';

export interface Children {
  objects: ObjectInfo[];
  /** Folder names one level below the prefix, each ending with '/'. */
  prefixes: string[];
}

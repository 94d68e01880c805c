import { randomUUID } from 'node:crypto';
import { type Answer, parseJson } from './http.js';
import { ApiError, type BucketRecord, type FakeState, type FolderRecord } from './state.js';
import type { Target } from './target.js';

/**
 * The hierarchical namespace of a bucket, as GCS models it: folders are resources of their
 * own; writing `a/b/c` creates the folders `a/` and `a/b/` if missing, and they stay when their
 * objects go. folders.rename is a long-running operation whose effect is one state swap: a
 * lister sees every object under the old name or every object under the new one.
 */
export interface OperationRecord {
  id: string;
  bucket: string;
  source: string;
  destination: string;
  done: boolean;
  error?: { code: number; message: string };
  createTime: string;
}

/** Folder names ending in '/', each ancestor of an object or folder name: `a/b/c` → `a/`, `a/b/`. */
export function ancestorsOf(name: string): string[] {
  const out: string[] = [];
  for (let at = name.indexOf('/'); at >= 0 && at < name.length - 1; at = name.indexOf('/', at + 1)) {
    out.push(name.slice(0, at + 1));
  }
  return out;
}

export function addFolders(b: BucketRecord, names: readonly string[]): void {
  const now = new Date().toISOString();
  for (const name of names) {
    if (!b.folders.has(name)) b.folders.set(name, { name, metageneration: 1, createTime: now, updateTime: now });
  }
}

export function checkFolderName(name: string): string {
  if (!name.endsWith('/') || name.startsWith('/') || name.includes('//')) {
    throw new ApiError(400, 'invalid', `invalid folder name ${JSON.stringify(name)}: must end with "/"`);
  }
  return name;
}

export function getFolder(b: BucketRecord, name: string): FolderRecord {
  const folder = b.folders.get(name);
  if (!folder) throw new ApiError(404, 'notFound', `The folder ${name} does not exist.`);
  return folder;
}

/** folders.insert: the parent must exist unless `recursive`; an existing folder is a 409. */
export function insertFolder(b: BucketRecord, name: string, recursive: boolean): FolderRecord {
  checkFolderName(name);
  if (b.folders.has(name)) throw new ApiError(409, 'conflict', `The folder ${name} already exists.`);
  const parents = ancestorsOf(name.slice(0, -1));
  const parent = parents[parents.length - 1];
  if (!recursive && parent !== undefined && !b.folders.has(parent)) {
    throw new ApiError(404, 'notFound', `The parent folder ${parent} does not exist.`);
  }
  addFolders(b, [...parents, name]);
  return getFolder(b, name);
}

/** folders.delete: only an empty folder (no object, no subfolder). */
export function deleteFolder(b: BucketRecord, name: string): void {
  getFolder(b, name);
  const holds = (n: string): boolean => n !== name && n.startsWith(name);
  if ([...b.objects.keys()].some(holds) || [...b.folders.keys()].some(holds)) {
    throw new ApiError(409, 'failedPrecondition', `The folder ${name} is not empty.`);
  }
  b.folders.delete(name);
}

/** Checks a rename can run: source present, destination absent, its parent present, not nested. */
function checkRename(b: BucketRecord, source: string, destination: string): void {
  getFolder(b, checkFolderName(source));
  checkFolderName(destination);
  if (destination.startsWith(source) || source.startsWith(destination)) {
    throw new ApiError(400, 'invalid', `cannot rename ${source} to ${destination}: one contains the other`);
  }
  if (b.folders.has(destination)) throw new ApiError(409, 'conflict', `The folder ${destination} already exists.`);
  const parents = ancestorsOf(destination.slice(0, -1));
  const parent = parents[parents.length - 1];
  if (parent !== undefined && !b.folders.has(parent)) {
    throw new ApiError(404, 'notFound', `The parent folder ${parent} of the destination does not exist.`);
  }
}

/** The one swap: every folder and object under `source` moves under `destination`, synchronously. */
function swap(b: BucketRecord, source: string, destination: string): void {
  const now = new Date().toISOString();
  for (const [name, folder] of [...b.folders]) {
    if (!name.startsWith(source)) continue;
    b.folders.delete(name);
    const renamed = destination + name.slice(source.length);
    b.folders.set(renamed, { ...folder, name: renamed, updateTime: now });
  }
  for (const [name, obj] of [...b.objects]) {
    if (!name.startsWith(source)) continue;
    b.objects.delete(name);
    const renamed = destination + name.slice(source.length);
    b.objects.set(renamed, { ...obj, name: renamed, updated: now });
  }
}

/**
 * folders.rename: checks now (404 source missing, 409 destination exists), answers an
 * operation that is not done yet, and swaps after `delayMs`; the checks run again at the
 * swap, and a failure then ends the operation with an error instead.
 */
export function startRename(
  state: FakeState,
  bucket: string,
  source: string,
  destination: string,
  delayMs: number,
): OperationRecord {
  checkRename(state.bucket(bucket), source, destination);
  const op: OperationRecord = {
    id: randomUUID(),
    bucket,
    source,
    destination,
    done: false,
    createTime: new Date().toISOString(),
  };
  state.operations.set(op.id, op);
  setTimeout(() => {
    try {
      const b = state.bucket(bucket);
      checkRename(b, source, destination);
      swap(b, source, destination);
    } catch (e) {
      const status = e instanceof ApiError ? e.status : 500;
      op.error = { code: status, message: e instanceof Error ? e.message : String(e) };
    }
    op.done = true;
  }, delayMs).unref();
  return op;
}

export function operationResource(op: OperationRecord, origin: string): Record<string, unknown> {
  return {
    kind: 'storage#operation',
    name: `projects/_/buckets/${op.bucket}/operations/${op.id}`,
    selfLink: `${origin}/storage/v1/b/${op.bucket}/operations/${op.id}`,
    metadata: {
      '@type': 'type.googleapis.com/google.storage.control.v2.RenameFolderMetadata',
      sourceFolderId: op.source,
      destinationFolderId: op.destination,
      commonMetadata: { createTime: op.createTime, type: 'rename-folder' },
    },
    done: op.done,
    ...(op.error === undefined ? {} : { error: op.error }),
  };
}

export function folderResource(f: FolderRecord, bucket: string, origin: string): Record<string, unknown> {
  return {
    kind: 'storage#folder',
    id: `${bucket}/${f.name}`,
    selfLink: `${origin}/storage/v1/b/${bucket}/folders/${encodeURIComponent(f.name)}`,
    name: f.name,
    bucket,
    metageneration: String(f.metageneration),
    createTime: f.createTime,
    updateTime: f.updateTime,
  };
}

/** Answers the hierarchical-namespace routes: folders.insert/get/delete/rename and operations.get. */
export function folderCall(
  state: FakeState,
  t: Target,
  q: URLSearchParams,
  body: Buffer,
  origin: string,
  renameOperationMs: number,
): Answer {
  const bucket = t.bucket ?? '';
  const b = state.bucket(bucket);
  switch (t.route) {
    case 'folder.insert': {
      const name = parseJson(body).name;
      if (typeof name !== 'string') throw new ApiError(400, 'required', 'folder name required');
      const folder = insertFolder(b, name, q.get('recursive') === 'true');
      return { status: 200, body: folderResource(folder, bucket, origin), committed: true };
    }
    case 'folder.get':
      return { status: 200, body: folderResource(getFolder(b, t.object ?? ''), bucket, origin) };
    case 'folder.delete':
      deleteFolder(b, t.object ?? '');
      return { status: 204, committed: true };
    case 'folder.rename': {
      const op = startRename(state, bucket, t.object ?? '', t.destination ?? '', renameOperationMs);
      return { status: 200, body: operationResource(op, origin), committed: true };
    }
    default: {
      const op = state.operations.get(t.object ?? '');
      if (!op || op.bucket !== bucket) throw new ApiError(404, 'notFound', `no such operation ${t.object}`);
      return { status: 200, body: operationResource(op, origin) };
    }
  }
}

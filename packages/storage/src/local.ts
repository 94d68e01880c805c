import { constants, type Dirent } from 'node:fs';
import { type FileHandle, link, mkdir, open, readdir, readFile, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { Defaults, HourglassError } from '@hourglass/common';
import { checkFolderName, checkObjectName, compareNames, prefixSegments, TEMP_PREFIX } from './names.js';
import { forEachBounded } from './parallel.js';
import { checkByteRange } from './range.js';
import type { Children, ObjectBytes, ObjectInfo, ObjectStore, RenameFolderResult } from './store.js';

export interface LocalStoreOptions {
  /** Deletes in flight at once in deleteMany (default Defaults.storeDeleteParallelism). */
  deleteParallelism?: number;
}

/**
 * The default store: a local directory. Writes go to a temp file that is fsynced, then
 * `link()`ed to its final name, which fails with EEXIST if the name is taken: an atomic
 * create-if-absent. The directory is fsynced after so the new name survives a crash.
 * A crash can leave a `.tmp-*` file behind; those names are reserved and never listed.
 * Folders are directories: renameFolder is one rename(2), atomic for readers.
 */
export class LocalDirectoryStore implements ObjectStore {
  readonly url: string;
  private readonly root: string;
  private readonly deleteParallelism: number;

  constructor(root: string, options: LocalStoreOptions = {}) {
    this.root = resolve(root);
    this.url = pathToFileURL(this.root).href;
    this.deleteParallelism = options.deleteParallelism ?? Defaults.storeDeleteParallelism;
  }

  private path(name: string): string {
    return join(this.root, ...checkObjectName(name).split('/'));
  }

  async createIfAbsent(name: string, data: ObjectBytes): Promise<boolean> {
    const target = this.path(name);
    const tmp = await this.writeTemp(target, data, name);
    try {
      await link(tmp, target);
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw fsError(e, 'create', name);
      if ((await stat(target).catch(() => undefined))?.isDirectory()) throw fsError(e, 'create', name);
      return false;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    await fsyncDir(dirname(target)).catch((e: unknown) => {
      throw fsError(e, 'create', name);
    });
    return true;
  }

  async put(name: string, data: Buffer): Promise<void> {
    const target = this.path(name);
    const tmp = await this.writeTemp(target, data, name);
    try {
      await rename(tmp, target);
      await fsyncDir(dirname(target));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw fsError(e, 'put', name);
    }
  }

  async get(name: string): Promise<Buffer | undefined> {
    const path = this.path(name);
    try {
      return await readFile(path);
    } catch (e) {
      // A directory is a prefix of other objects, not an object.
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR' || errno(e) === 'EISDIR') return undefined;
      throw fsError(e, 'get', name);
    }
  }

  async getRange(name: string, start: number, end: number): Promise<Buffer | undefined> {
    checkByteRange(start, end);
    let handle: FileHandle;
    try {
      handle = await open(this.path(name), 'r');
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
      throw fsError(e, 'get', name);
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) return undefined; // a directory is a prefix of other objects, not an object
      const data = Buffer.allocUnsafe(Math.max(0, Math.min(end, info.size) - start));
      let filled = 0;
      while (filled < data.length) {
        const { bytesRead } = await handle.read(data, filled, data.length - filled, start + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return data.subarray(0, filled);
    } catch (e) {
      throw fsError(e, 'get', name);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  async exists(name: string): Promise<boolean> {
    const path = this.path(name);
    try {
      return (await stat(path)).isFile();
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return false;
      throw fsError(e, 'exists', name);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // Walk only the deepest directory the prefix names fully, then filter by prefix.
    const fullSegments = prefixSegments(prefix);
    const out: ObjectInfo[] = [];
    try {
      await walk(join(this.root, ...fullSegments), async (file) => {
        const name = relative(this.root, file).split(sep).join('/');
        if (!name.startsWith(prefix) || name.split('/').some((p) => p.startsWith(TEMP_PREFIX))) return;
        const s = await stat(file).catch(() => undefined);
        if (s?.isFile()) out.push({ name, size: s.size });
      });
    } catch (e) {
      throw fsError(e, 'list', prefix);
    }
    return out.sort((a, b) => compareNames(a.name, b.name));
  }

  async delete(name: string): Promise<void> {
    const path = this.path(name);
    try {
      await unlink(path);
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return;
      if (errno(e) === 'EISDIR' || errno(e) === 'EPERM') {
        // unlink() of a directory: a prefix, not an object; nothing to delete.
        if ((await stat(path).catch(() => undefined))?.isDirectory()) return;
      }
      throw fsError(e, 'delete', name);
    }
  }

  async renameFolder(from: string, to: string): Promise<RenameFolderResult> {
    const source = this.folderPath(from);
    const target = this.folderPath(to);
    if (to.startsWith(from) || from.startsWith(to)) {
      throw new HourglassError('STORAGE_REJECTED', `cannot rename folder ${from} to ${to}: one is inside the other`, {
        path: from,
      });
    }
    if (!(await stat(source).catch(() => undefined))?.isDirectory()) return 'source-missing';
    try {
      await mkdir(dirname(target), { recursive: true });
      // rename(2) replaces an empty directory in one step (a lister sees it empty, then full)
      // and refuses a non-empty one: the check and the move are one atomic system call.
      await rename(source, target);
      await fsyncDir(dirname(target));
      if (dirname(source) !== dirname(target)) await fsyncDir(dirname(source));
    } catch (e) {
      const code = errno(e);
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'target-exists';
      if (code === 'ENOENT' && !(await stat(source).catch(() => undefined))) return 'source-missing';
      throw fsError(e, 'renameFolder', from);
    }
    return 'renamed';
  }

  async listChildren(prefix: string): Promise<Children> {
    const dir = join(this.root, ...prefixSegments(prefix));
    const base = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const out: Children = { objects: [], prefixes: [] };
    try {
      for (const entry of await readdirOrEmpty(dir)) {
        const name = base + entry.name;
        if (!name.startsWith(prefix) || entry.name.startsWith(TEMP_PREFIX)) continue;
        const path = join(dir, entry.name);
        if (entry.isFile()) out.objects.push({ name, size: (await stat(path)).size });
        // A directory left empty by deletes holds no object: GCS would not list it either.
        else if (entry.isDirectory() && (await holdsObject(path))) out.prefixes.push(`${name}/`);
      }
    } catch (e) {
      throw fsError(e, 'listChildren', prefix);
    }
    out.objects.sort((a, b) => compareNames(a.name, b.name));
    out.prefixes.sort(compareNames);
    return out;
  }

  async deleteMany(names: readonly string[]): Promise<void> {
    for (const name of names) checkObjectName(name);
    await forEachBounded(names, this.deleteParallelism, (name) => this.delete(name));
  }

  async deleteFolder(prefix: string): Promise<void> {
    const path = this.folderPath(prefix);
    try {
      await rmdir(path);
      await fsyncDir(dirname(path));
    } catch (e) {
      const code = errno(e);
      if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') return;
      throw fsError(e, 'deleteFolder', prefix);
    }
  }

  private folderPath(folder: string): string {
    return join(this.root, ...checkFolderName(folder).slice(0, -1).split('/'));
  }

  private async writeTemp(target: string, data: ObjectBytes, name: string): Promise<string> {
    const tmp = join(dirname(target), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await mkdir(dirname(target), { recursive: true });
      const fh = await open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
      try {
        await writeAll(fh, data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw fsError(e, 'write', name);
    }
    return tmp;
  }
}

/** Writes every byte of `data` at the file's position; a list of buffers in writev calls, not joined. */
async function writeAll(fh: FileHandle, data: ObjectBytes): Promise<void> {
  if (Buffer.isBuffer(data)) return fh.writeFile(data);
  let parts = data.filter((part) => part.length > 0);
  while (parts.length > 0) {
    // libuv writes the whole list (in IOV_MAX slices); a short write is resumed, not trusted away
    const { bytesWritten } = await fh.writev(parts);
    if (bytesWritten <= 0) throw Object.assign(new Error('writev wrote nothing'), { code: 'EIO' });
    parts = partsAfter(parts, bytesWritten);
  }
}

/** What is left of `parts` after their first `written` bytes. */
function partsAfter(parts: readonly Buffer[], written: number): Buffer[] {
  let i = 0;
  while (i < parts.length && written >= parts[i]!.length) written -= parts[i++]!.length;
  if (i === parts.length) return [];
  return [parts[i]!.subarray(written), ...parts.slice(i + 1)];
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Maps a filesystem error to the store's codes: permission problems and name clashes a
 * directory cannot represent (an object where a parent directory must go) are permanent;
 * anything else (ENOSPC, EIO, EMFILE...) may pass, so it is reported as transient.
 */
function fsError(e: unknown, op: string, name: string): HourglassError {
  if (e instanceof HourglassError) return e;
  const code = errno(e);
  const message = `${op} ${JSON.stringify(name)} failed: ${(e as Error).message}`;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new HourglassError('STORAGE_REJECTED', message, { cause: e, path: name });
  }
  if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR') {
    return new HourglassError('STORAGE_REJECTED', `${message} (a name is both an object and a prefix)`, {
      cause: e,
      path: name,
    });
  }
  return new HourglassError('STORAGE_UNAVAILABLE', message, { cause: e, path: name });
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The entries of `dir`; none when it does not exist (a prefix nothing was written under). */
async function readdirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return [];
    throw e;
  }
}

/** True when some object (not a temp file) lies anywhere under `dir`; stops at the first. */
async function holdsObject(dir: string): Promise<boolean> {
  for (const entry of await readdirOrEmpty(dir)) {
    if (entry.name.startsWith(TEMP_PREFIX)) continue;
    if (entry.isFile() || (entry.isDirectory() && (await holdsObject(join(dir, entry.name))))) return true;
  }
  return false;
}

async function walk(dir: string, visit: (file: string) => Promise<void>): Promise<void> {
  for (const entry of await readdirOrEmpty(dir)) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await walk(p, visit);
    else if (entry.isFile()) await visit(p);
  }
}

import { constants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative, sep } from 'node:path';
import { HourglassError } from '@hourglass/common';
import type { ObjectInfo, ObjectStore } from './store.js';

/**
 * The default store: a local directory. Writes go to a temp file that is fsynced, then
 * `link()`ed to its final name, which fails with EEXIST if the name is taken: an atomic
 * create-if-absent. The directory is fsynced after so the new name survives a crash.
 */
export class LocalDirectoryStore implements ObjectStore {
  readonly url: string;

  constructor(private readonly root: string) {
    this.url = `file://${root}`;
  }

  private path(name: string): string {
    if (name.length === 0 || name.startsWith('/') || name.split('/').some((p) => p === '..' || p === '.' || p === '')) {
      throw new HourglassError('STORAGE_NOT_FOUND', `invalid object name "${name}"`);
    }
    return join(this.root, ...name.split('/'));
  }

  async createIfAbsent(name: string, data: Buffer): Promise<boolean> {
    const target = this.path(name);
    const tmp = await this.writeTemp(target, data);
    try {
      await link(tmp, target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    await fsyncDir(dirname(target));
    return true;
  }

  async put(name: string, data: Buffer): Promise<void> {
    const target = this.path(name);
    const tmp = await this.writeTemp(target, data);
    await rename(tmp, target);
    await fsyncDir(dirname(target));
  }

  async get(name: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.path(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async exists(name: string): Promise<boolean> {
    try {
      await stat(this.path(name));
      return true;
    } catch {
      return false;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // Walk only the deepest directory the prefix names fully, then filter by prefix.
    const slash = prefix.lastIndexOf('/');
    const baseDir = slash < 0 ? this.root : join(this.root, ...prefix.slice(0, slash).split('/'));
    const out: ObjectInfo[] = [];
    await walk(baseDir, async (file) => {
      const name = relative(this.root, file).split(sep).join('/');
      if (!name.startsWith(prefix) || name.split('/').some((p) => p.startsWith('.tmp-'))) return;
      const s = await stat(file).catch(() => undefined);
      if (s) out.push({ name, size: s.size });
    });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async delete(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }

  private async writeTemp(target: string, data: Buffer): Promise<string> {
    await mkdir(dirname(target), { recursive: true });
    const tmp = join(dirname(target), `.tmp-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function walk(dir: string, visit: (file: string) => Promise<void>): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const entry of entries) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await walk(p, visit);
    else if (entry.isFile()) await visit(p);
  }
}

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The repository root: the nearest ancestor of this file holding schemas/ and package.json. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(resolve(dir, 'schemas')) && existsSync(resolve(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * packages/cli/bin/hourglass.js in a clone that was not built: the real launcher, copied into a
 * tree where dist/ is missing (or where the CLI's dist/ loads a workspace that has none).
 */
const BIN = join(__dirname, '../../../packages/cli/bin/hourglass.js');
const NOT_BUILT = 'hourglass is not built: run `make build`\n';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'hourglass-bin-'));
  mkdirSync(join(root, 'packages/cli/bin'), { recursive: true });
  copyFileSync(BIN, join(root, 'packages/cli/bin/hourglass.js'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function run(): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'packages/cli/bin/hourglass.js'), '--help'], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeMain(source: string): void {
  mkdirSync(join(root, 'packages/cli/dist'), { recursive: true });
  writeFileSync(join(root, 'packages/cli/dist/main.js'), source);
}

test('no dist/: says to run make build, exit 1, no stack trace', () => {
  expect(run()).toEqual({ status: 1, stdout: '', stderr: NOT_BUILT });
});

test('the CLI is built but a workspace it loads is not: the same advice', () => {
  writeMain(`require(${JSON.stringify(join(root, 'packages/common/dist/index.js'))});`);
  expect(run()).toEqual({ status: 1, stdout: '', stderr: NOT_BUILT });
});

test('a built CLI runs; its own errors are not mistaken for a missing build', () => {
  writeMain("process.stdout.write('ran\\n');");
  expect(run()).toEqual({ status: 0, stdout: 'ran\n', stderr: '' });
  writeMain("require('no-such-npm-package');");
  const missingDependency = run();
  expect(missingDependency.status).toBe(1);
  expect(missingDependency.stderr).toContain("Cannot find module 'no-such-npm-package'");
  expect(missingDependency.stderr).not.toContain('make build');
});

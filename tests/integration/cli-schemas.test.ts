import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { brokenCases, validCases, writeSchemaDir, type SchemaFiles } from '../unit/schemas/schema-dirs';

/**
 * `hourglass schemas check` as an operator runs it: the built CLI in a child process.
 * It builds nothing itself; `make test` runs `npx tsc -b` first.
 */
const CLI = join(__dirname, '..', '..', 'packages', 'cli', 'bin', 'hourglass.js');
const BUILT = join(__dirname, '..', '..', 'packages', 'cli', 'dist', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCheck(dir: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'schemas', 'check', '--dir', dir],
      { env: { ...process.env, HOURGLASS_LOG_LEVEL: 'silent' }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs all checks two at a time (two cores), keyed by case name. */
async function runAll(dirs: Map<string, string>): Promise<Map<string, Run>> {
  const queue = [...dirs.entries()];
  const results = new Map<string, Run>();
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) results.set(next[0], await runCheck(next[1]));
  };
  await Promise.all([worker(), worker()]);
  return results;
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);
const STACK_FRAME = /^ {4}at /m;

const cliCases = brokenCases.filter((c) => c.cli);
const dirs = new Map<string, string>();
let results = new Map<string, Run>();

beforeAll(async () => {
  if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npx tsc -b\` first (make test does)`);
  const add = (name: string, files: SchemaFiles): void => void dirs.set(name, writeSchemaDir(files));
  for (const c of cliCases) add(c.name, c.files);
  for (const c of validCases) add(c.name, c.files);
  dirs.set('shipped', join(__dirname, '..', '..', 'schemas'));
  dirs.set('missing', '/nonexistent/hourglass-schemas');
  results = await runAll(dirs);
});

afterAll(() => {
  for (const [name, dir] of dirs)
    if (name !== 'shipped' && name !== 'missing') rmSync(dir, { recursive: true, force: true });
});

test('the shipped schemas pass with one ok line per type', () => {
  const run = results.get('shipped')!;
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const out = lines(run.stdout);
  expect(out.length).toBeGreaterThanOrEqual(5);
  for (const line of out) expect(line).toMatch(/^ok [a-z][a-z0-9_]* v1\.\.v[1-9][0-9]* [0-9a-f]{16}$/);
  expect(out).toContainEqual(expect.stringMatching(/^ok track_played v1\.\.v2 /));
});

test.each(validCases.map((c) => [c.name, c] as const))('passes: %s', (name) => {
  const run = results.get(name)!;
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
});

test.each(cliCases.map((c) => [c.name, c] as const))('fails with one clear line: %s', (name, c) => {
  const run = results.get(name)!;
  expect(run.code).toBe(1);
  expect(run.stderr).not.toMatch(STACK_FRAME);
  expect(lines(run.stderr)).toEqual([expect.stringMatching(c.line)]);
  expect(run.stdout).toBe('');
});

test('a missing directory fails with one clear line', () => {
  const run = results.get('missing')!;
  expect(run.code).toBe(1);
  expect(run.stderr).not.toMatch(STACK_FRAME);
  expect(lines(run.stderr)).toEqual([expect.stringMatching(/^SCHEMA_MALFORMED: .*cannot read schema directory/)]);
});

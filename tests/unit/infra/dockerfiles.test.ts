import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GATEWAY_NODE_ARGS } from '@hourglass/common';

/** deploy/*.Dockerfile: pinned bases, production dependencies only, an unprivileged user. */
const SERVICES = [
  { name: 'gateway', entry: 'services/gateway/dist/server.js', nodeArgs: GATEWAY_NODE_ARGS },
  { name: 'consumer', entry: 'services/consumer/dist/main.js', nodeArgs: [] },
];

/** A workspace directory and every workspace it depends on, transitively (from package.json). */
function workspaceClosure(dir: string): Set<string> {
  const root = JSON.parse(readFileSync('package.json', 'utf8')) as { workspaces: string[] };
  const byName = new Map<string, string>();
  for (const ws of root.workspaces) byName.set(manifest(ws).name, ws);
  const found = new Set<string>();
  const visit = (ws: string) => {
    if (found.has(ws)) return;
    found.add(ws);
    for (const dep of Object.keys(manifest(ws).dependencies ?? {})) {
      const target = byName.get(dep);
      if (target) visit(target);
    }
  };
  visit(dir);
  return found;
}

function manifest(dir: string): { name: string; dependencies?: Record<string, string> } {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    name: string;
    dependencies?: Record<string, string>;
  };
}

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions, comments dropped and continuation lines joined. */
function instructions(text: string): Instruction[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

describe.each(SERVICES)('deploy/$name.Dockerfile', ({ name, entry, nodeArgs }) => {
  const path = `deploy/${name}.Dockerfile`;
  const steps = instructions(readFileSync(path, 'utf8'));
  const froms = steps.filter((s) => s.keyword === 'FROM');
  const finalStage = steps.slice(steps.lastIndexOf(froms[froms.length - 1]!));

  test('is multi-stage and every base image is pinned to an exact version', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) {
      const image = from.args.split(/\s+/)[0] ?? '';
      expect(image).toMatch(/^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$/);
      expect(image).not.toMatch(/:latest\b/);
    }
  });

  test('installs production dependencies only into what it ships', () => {
    const runs = steps.filter((s) => s.keyword === 'RUN').map((s) => s.args);
    const prodInstall = runs.findIndex((r) => /npm ci\b.*--omit=dev/.test(r));
    const build = runs.findIndex((r) => /tsc -b/.test(r));
    expect(prodInstall).toBeGreaterThan(build);
    expect(build).toBeGreaterThanOrEqual(0);
    // The final stage installs nothing itself: it copies the pruned tree from the build stage.
    expect(finalStage.filter((s) => s.keyword === 'RUN')).toEqual([]);
    expect(finalStage.filter((s) => s.keyword === 'COPY').every((s) => s.args.startsWith('--from=build'))).toBe(true);
  });

  test('installs and ships only its own workspace and the workspaces it depends on', () => {
    const runs = steps.filter((s) => s.keyword === 'RUN').map((s) => s.args);
    const prodInstall = runs.find((r) => /npm ci\b.*--omit=dev/.test(r)) ?? '';
    expect(prodInstall).toMatch(new RegExp(`(--workspace|-w)[ =]services/${name}\\b`));
    const shipped = finalStage
      .filter((s) => s.keyword === 'COPY')
      .map((s) => s.args.split(/\s+/).pop() ?? '')
      .filter((dest) => /^\.\/(packages|services)\b/.test(dest))
      .map((dest) => dest.replace(/^\.\//, ''))
      .sort();
    expect(shipped).toEqual([...workspaceClosure(`services/${name}`)].sort());
  });

  test('runs as a non-root user', () => {
    const users = finalStage.filter((s) => s.keyword === 'USER').map((s) => s.args);
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);
    const lastUser = finalStage.map((s) => s.keyword).lastIndexOf('USER');
    const cmd = finalStage.map((s) => s.keyword).lastIndexOf('CMD');
    expect(lastUser).toBeLessThan(cmd);
  });

  test(`starts ${entry} with the service's node flags, and the sources compile to it`, () => {
    const cmd = finalStage.filter((s) => s.keyword === 'CMD').pop();
    expect(JSON.parse(cmd?.args ?? 'null')).toEqual(['node', ...nodeArgs, entry]);
    expect(existsSync(entry.replace('/dist/', '/src/').replace(/\.js$/, '.ts'))).toBe(true);
  });

  test('has a .dockerignore that keeps host build output and modules out of the context', () => {
    const ignore = `${path}.dockerignore`;
    expect(existsSync(ignore)).toBe(true);
    const lines = readFileSync(ignore, 'utf8').split('\n');
    for (const pattern of ['**/node_modules', '**/dist', '.git']) expect(lines).toContain(pattern);
  });
});

import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The CLI depends on no service: it shares the stored format with the consumer through
 * @hourglass/bucket-format, and starts the services as processes by path (`hourglass up`).
 * Importing a service would pull its dependencies (fastify, the Pub/Sub subscriber) into the CLI.
 */
const CLI = join(__dirname, '../../../packages/cli');
const SERVICES = /['"]@hourglass\/(consumer|gateway)(\/[^'"]*)?['"]/;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return /\.(ts|js)$/.test(e.name) ? [path] : [];
  });
}

test('no CLI source imports or requires a service', () => {
  const files = [...sources(join(CLI, 'src')), ...sources(join(CLI, 'bin'))];
  expect(files.length).toBeGreaterThan(5);
  const offending = files
    .flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => ({ f, line, i })),
    )
    .filter(({ line }) => /\b(import|from|require)\b/.test(line) && SERVICES.test(line))
    .map(({ f, line, i }) => `${relative(CLI, f)}:${i + 1}: ${line.trim()}`);
  expect(offending).toEqual([]);
});

test('the CLI package lists no service among its dependencies or project references', () => {
  const pkg = JSON.parse(readFileSync(join(CLI, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  expect(Object.keys(pkg.dependencies).filter((d) => SERVICES.test(`'${d}'`))).toEqual([]);
  expect(pkg.dependencies).toHaveProperty('@hourglass/bucket-format');
  const tsconfig = JSON.parse(readFileSync(join(CLI, 'tsconfig.json'), 'utf8')) as { references: { path: string }[] };
  expect(tsconfig.references.map((r) => r.path).filter((p) => p.includes('services/'))).toEqual([]);
});

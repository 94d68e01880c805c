import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { BUILT_CLI, STACK_FRAME, cliEnv, lines, runCli, type CliRun } from './support';

/**
 * The store-reading commands against a GCS store that cannot be reached (the client's endpoint,
 * STORAGE_EMULATOR_HOST, is a closed local port): exit 3 and one line, no stack trace.
 *
 * Slow by design of the store, not of the test: the GCS client retries a request that got no
 * response (ECONNREFUSED, ENOTFOUND) for Defaults.gcsRetryTotalTimeout (30 s) before giving up,
 * and the CLI has no option to shorten that. The runs go in parallel, in a file of their own so
 * that jest's other worker runs the rest of tests/cli meanwhile.
 */

/** A local port with nothing listening on it. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

let port = 0;
let runs: Promise<CliRun>[] = [];

const cases: [name: string, args: string[], stderr: (port: number) => RegExp][] = [
  [
    'ls (lists the type)',
    ['ls', 'track_played'],
    (p) =>
      new RegExp(
        `^STORAGE_UNAVAILABLE: GCS list "track_played/" failed: request to http://127\\.0\\.0\\.1:${p}/\\S+ failed, reason: connect ECONNREFUSED 127\\.0\\.0\\.1:${p}$`,
      ),
  ],
  [
    'cat by time (reads manifests by name)',
    ['cat', 'track_played', '2026-01-01T00:00:30Z'],
    (p) =>
      new RegExp(
        `^STORAGE_UNAVAILABLE: GCS get "track_played/dt=2026-01-01/hour=00/minute=00/_SUCCESS" failed: .*ECONNREFUSED 127\\.0\\.0\\.1:${p}$`,
      ),
  ],
];

beforeAll(async () => {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run \`npx tsc -b\` first (make test does)`);
  port = await closedPort();
  const env = cliEnv({
    HOURGLASS_STORE: 'gs://hourglass-cli-test/events',
    STORAGE_EMULATOR_HOST: `http://127.0.0.1:${port}`,
    METADATA_SERVER_DETECTION: 'none',
  });
  // killed (and failing, code null) if it takes longer than the client's retry budget allows
  runs = cases.map(([, args]) => runCli(args, env, 50_000));
  runs.forEach((r) => r.catch(() => undefined)); // awaited by the tests
});

afterAll(async () => {
  await Promise.allSettled(runs);
});

test.each(cases.map((c, i) => [c[0], i] as const))(
  '%s: exit 3 with one line naming the store call',
  async (_name, i) => {
    const run = await runs[i]!;
    expect(run.stdout).toBe('');
    expect(run.stderr).not.toMatch(STACK_FRAME);
    expect(lines(run.stderr)).toHaveLength(1);
    expect(lines(run.stderr)[0]).toMatch(cases[i]![2](port));
    expect(run.code).toBe(3);
  },
  58_000,
);

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, realpathSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { HourglassError, stopChild } from '@hourglass/common';

/** The JVM shuts down in well under a second; SIGKILL after this. */
const STOP_GRACE_MS = 5000;

/**
 * Starts the Pub/Sub emulator that ships with the Google Cloud SDK.
 *
 * We run the SDK's own launcher (`platform/pubsub-emulator/bin/cloud-pubsub-emulator`),
 * which `exec`s the JVM, so the pid we hold is the JVM's and stopping it by pid really
 * stops it; killing a `gcloud beta emulators` wrapper would leave the JVM running.
 */
export interface EmulatorOptions {
  port?: number;
  /** JVM heap cap: the emulator keeps every message in memory, acked ones too (see jvmOptions). */
  heapMb?: number;
  /**
   * Commit and touch this much of the heap at start (-Xms, -XX:+AlwaysPreTouch). On this
   * development VM the first touch of a page is slow, and the JVM paid it inside its young
   * pauses as the old generation grew into new pages: 580-1,070 ms pauses under bench/e2e.js's
   * load, each one an answer-latency spike, against 12-39 ms with the heap touched. Touching
   * more than a run needs slows the rest of the machine (disk writes fell 3-4 times with 6 GB
   * touched), so a benchmark gives what its load retains (the emulator keeps acked messages).
   */
  preTouchMb?: number;
  /** Where the emulator's stdout/stderr go; default: ignored. */
  logFile?: string;
  startTimeoutMs?: number;
}

export interface RunningEmulator {
  /** host:port, the value for PUBSUB_EMULATOR_HOST. */
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

const INSTALL_HINT =
  'install the Google Cloud SDK with its Pub/Sub emulator and Java 17+ ' +
  '(Debian: apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator openjdk-17-jre-headless; ' +
  'or gcloud components install pubsub-emulator), or set CLOUDSDK_ROOT_DIR to the SDK root';

/** Where the SDK's Debian/RPM packages and its tarball install usually put it. */
export const WELL_KNOWN_SDK_ROOTS: readonly string[] = [
  '/usr/lib/google-cloud-sdk',
  '/usr/share/google-cloud-sdk',
  '/opt/google-cloud-sdk',
];

/**
 * Finds the emulator launcher, or throws EMULATOR_MISSING saying what to install.
 * Looks in CLOUDSDK_ROOT_DIR, then next to `gcloud` on PATH, then in `wellKnownRoots`.
 */
export function findEmulatorLauncher(
  env: NodeJS.ProcessEnv = process.env,
  wellKnownRoots: readonly string[] = WELL_KNOWN_SDK_ROOTS,
): string {
  const roots: string[] = [];
  if (env.CLOUDSDK_ROOT_DIR) roots.push(env.CLOUDSDK_ROOT_DIR);
  const gcloud = which('gcloud', env);
  if (gcloud) roots.push(dirname(dirname(realpathSync(gcloud))));
  roots.push(...wellKnownRoots);
  for (const root of roots) {
    const launcher = join(root, 'platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');
    if (existsSync(launcher)) {
      if (!env.JAVA_HOME && !which('java', env)) {
        throw new HourglassError('EMULATOR_MISSING', `found ${launcher} but no java on PATH: ${INSTALL_HINT}`);
      }
      return launcher;
    }
  }
  const looked = roots.length > 0 ? roots.join(', ') : 'no SDK root: CLOUDSDK_ROOT_DIR unset and no gcloud on PATH';
  throw new HourglassError('EMULATOR_MISSING', `Pub/Sub emulator not found (looked in ${looked}): ${INSTALL_HINT}`);
}

function which(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(':')) {
    const p = join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The emulator keeps every message, acked ones too (200 MB published and acked left 213 MB in
 * its old generation after a full GC), so almost every message survives its first collection.
 * Promoted at once from a small young generation, each is copied once: under bench/e2e.js young
 * pauses fell from 110-957 ms (every ~17 s, copying the survivors back and forth) to 21-41 ms.
 */
function jvmOptions(heapMb: number, preTouchMb: number): string {
  const youngMb = Math.min(192, Math.floor(heapMb / 4));
  const touched = preTouchMb > 0 ? ` -Xms${Math.min(preTouchMb, heapMb)}m -XX:+AlwaysPreTouch` : '';
  return `-Xmx${heapMb}m${touched} -Xmn${youngMb}m -XX:MaxTenuringThreshold=0 -XX:+UseParallelGC`;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const launcher = findEmulatorLauncher();
  const port = options.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;
  // Something else answering there would pass our readiness probe while our JVM fails to bind.
  if (await listening(port)) throw new HourglassError('EMULATOR_START_FAILED', `port ${port} is already in use`);
  const heapMb = options.heapMb ?? 1024;
  const out = options.logFile ? openSync(options.logFile, 'a') : 'ignore';
  let child: ChildProcess;
  try {
    child = spawn(launcher, [`--host=127.0.0.1`, `--port=${port}`], {
      env: {
        ...process.env,
        JAVA_OPTS: `${process.env.JAVA_OPTS ?? ''} ${jvmOptions(heapMb, options.preTouchMb ?? 0)}`.trim(),
      },
      stdio: ['ignore', out, out],
      detached: false,
    });
  } finally {
    if (typeof out === 'number') closeSync(out); // the child holds its own copy
  }
  let exitReason: string | undefined;
  child.once('error', (e) => {
    exitReason = `cannot run ${launcher} (${e.message})`;
  });
  child.once('exit', (code, signal) => {
    exitReason ??= `emulator exited during start-up with ${signal ?? `code ${code}`}`;
  });
  // the JVM usually answers in seconds; on two cores shared with busy test processes it once took over 60 s
  const deadline = Date.now() + (options.startTimeoutMs ?? 120_000);
  while (!(await answers(host))) {
    if (exitReason !== undefined)
      throw new HourglassError(
        'EMULATOR_START_FAILED',
        `${exitReason} (port ${port}); see ${options.logFile ?? 'its output'}`,
      );
    if (Date.now() > deadline) {
      await stopChild(child, STOP_GRACE_MS);
      throw new HourglassError('EMULATOR_START_FAILED', `emulator did not answer on ${host} within the start timeout`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { host, port, pid: child.pid ?? -1, stop: () => stopChild(child, STOP_GRACE_MS) };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function answers(host: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** Stops an emulator started by another process (make run writes its pid). */
export function stopByPid(pid: number): void {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
}

/** True when `java -version` runs; used by `make` to print a clear hint. */
export function javaWorks(): boolean {
  return spawnSync('java', ['-version'], { stdio: 'ignore' }).status === 0;
}

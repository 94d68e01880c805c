import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Defaults, GATEWAY_NODE_ARGS, HourglassError, sha256Hex, stopChild, type Logger } from '@hourglass/common';
import { startEmulator, type RunningEmulator } from '@hourglass/emulator';
import { SchemaRegistry } from '@hourglass/schemas';
import { provisionTopology } from '../provision.js';
import { waitReady } from '../processes.js';
import { repoRoot } from '../paths.js';
import { runDemoTraffic } from './demo-traffic.js';
import { watchClosedWindows } from './window-watch.js';
import {
  type FleetStore,
  type ReplicaProcess,
  describeFleet,
  openFleetStore,
  parseReplicas,
  parseStoreKind,
  replicaPorts,
  startReplicas,
} from './up-fleet.js';

/**
 * `hourglass up` (make run / make demo): starts the Pub/Sub emulator, provisions every
 * topic, starts the gateway and the consumer as child processes on local defaults, and
 * stops all of them — the emulator by its JVM pid — on Ctrl-C. `--demo` uses one-minute
 * windows, a short grace and a built-in traffic generator with a few bad events.
 */
/** The gateway drains in-flight publishes and the consumer flushes staged files before exiting. */
const SERVICE_STOP_GRACE_MS = 30_000;

interface UpOptions {
  demo?: boolean;
  data: string;
  port: string;
  consumerPort?: string;
  rate: string;
  replicas: string;
  store: string;
}

export interface StackLayout {
  gatewayPort: number;
  consumerPort: number;
  /** Logs, pid file and API keys of this stack: `.run` for the default ports, `.run/<gateway port>` otherwise. */
  runDir: string;
}

/**
 * Ports and run directory of one local stack. The consumer port defaults to the gateway
 * port + 1 (8080 → 8081), so two stacks started with different `--port`s do not collide,
 * and neither do their logs or pid files.
 */
export function stackLayout(root: string, opts: { port: string; consumerPort?: string | undefined }): StackLayout {
  const gatewayPort = portOf(opts.port, '--port');
  const consumerPort = opts.consumerPort === undefined ? gatewayPort + 1 : portOf(opts.consumerPort, '--consumer-port');
  if (consumerPort === gatewayPort || consumerPort > 65535) {
    throw new HourglassError(
      'CONFIG_INVALID',
      `--consumer-port ${consumerPort} must differ from --port and be a port`,
      {
        path: '--consumer-port',
      },
    );
  }
  const defaults = gatewayPort === Defaults.gatewayPort && consumerPort === Defaults.consumerPort;
  return { gatewayPort, consumerPort, runDir: resolve(root, defaults ? '.run' : `.run/${gatewayPort}`) };
}

function portOf(text: string, option: string): number {
  const port = /^[1-9][0-9]{0,4}$/.test(text) ? Number(text) : NaN;
  if (!(port <= 65535)) {
    throw new HourglassError('CONFIG_INVALID', `${option} ${JSON.stringify(text)} is not a port (1..65535)`, {
      path: option,
    });
  }
  return port;
}

export function registerUpCommand(program: Command, log: Logger): void {
  program
    .command('up')
    .description('run the whole pipeline locally: emulator, topics, gateway, consumer (Ctrl-C stops all)')
    .option('--demo', 'one-minute windows, 10 s grace and generated traffic')
    .option('--data <dir>', 'local object store directory', Defaults.storeRoot)
    .option('--port <port>', 'gateway port', String(Defaults.gatewayPort))
    .option('--consumer-port <port>', 'consumer health/metrics port (default: gateway port + 1)')
    .option('--rate <eventsPerSec>', 'demo traffic rate', '2000')
    .option('--replicas <n>', 'consumer replicas, on the consumer port and the next ones', '1')
    .option('--store <kind>', 'local (the --data directory) or gcs-fake (the GCS fake server, HNS bucket)', 'local')
    .action(async (opts: UpOptions) => up(opts, log));
}

async function up(opts: UpOptions, log: Logger): Promise<void> {
  const root = repoRoot();
  const { gatewayPort, consumerPort: consumerPortNumber, runDir } = stackLayout(root, opts);
  const ports = replicaPorts(consumerPortNumber, parseReplicas(opts.replicas), gatewayPort);
  const dataDir = resolve(opts.data);
  mkdirSync(runDir, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  const say = (line: string): void => void process.stdout.write(`${line}\n`);

  const children: ChildProcess[] = [];
  // Filled in as things start; Ctrl-C stops whatever has started so far.
  const started: {
    emulator?: RunningEmulator;
    fake?: { stop(): Promise<void> };
    stopDemo?: () => Promise<void>;
    stopWatch?: () => void;
  } = {};
  let stopping = false;
  const stopAll = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      say('\nstopping: traffic, gateway (drains in-flight publishes), consumer (flushes staged files), emulator');
      await started.stopDemo?.();
      started.stopWatch?.();
      for (const child of children) await stopChild(child, SERVICE_STOP_GRACE_MS);
      await started.emulator?.stop();
      await started.fake?.stop();
      say('stopped');
    }
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));

  const registry = SchemaRegistry.load(resolve(root, Defaults.schemasDir));
  const { emulator, env } = await startPubSub(root, runDir, registry, log, say);
  started.emulator = emulator;

  // A fresh local key each run: auth stays on, as in production, and the key is only printed here.
  const apiKey = `hg_local_${randomBytes(16).toString('hex')}`;
  const keysFile = resolve(runDir, 'api-keys.json');
  writeFileSync(keysFile, JSON.stringify([{ name: 'local', sha256: sha256Hex(apiKey), types: ['*'] }], null, 2));
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;

  children.push(
    startService(
      root,
      'gateway',
      'services/gateway/dist/server.js',
      runDir,
      {
        ...env,
        HOURGLASS_GATEWAY_PORT: String(gatewayPort),
        HOURGLASS_API_KEYS_FILE: keysFile,
      },
      GATEWAY_NODE_ARGS,
    ),
  );
  const store = await openFleetStore(parseStoreKind(opts.store), dataDir, gatewayPort);
  started.fake = store.fake;
  const replicas = startReplicas({
    root,
    runDir,
    gatewayPort,
    ports,
    store,
    env: {
      ...env,
      ...(opts.demo ? { HOURGLASS_WINDOW: '1m', HOURGLASS_GRACE: '10s', HOURGLASS_STAGE_MAX_AGE: '1s' } : {}),
    },
  });
  children.push(...replicas.map((r) => r.child));
  for (const child of children) {
    child.once('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`hourglass: a service exited (${code ?? signal}); see ${runDir}/*.log\n`);
        void stopAll(1);
      }
    });
  }
  await waitReady(`${gatewayUrl}/readyz`);
  for (const r of replicas) await waitReady(`${r.url}/readyz`);

  printGuide(say, { gatewayUrl, runDir, apiKey, replicas, store, demo: opts.demo === true });

  started.stopWatch = watchClosedWindows(store.store, registry.eventTypes(), (line) => say(line));
  if (opts.demo) {
    started.stopDemo = runDemoTraffic({ registry, url: gatewayUrl, apiKey, ratePerSec: Number(opts.rate), say });
  }
  await new Promise<never>(() => undefined);
}

function startService(
  root: string,
  name: string,
  script: string,
  runDir: string,
  env: NodeJS.ProcessEnv,
  nodeArgs: readonly string[] = [],
): ChildProcess {
  const out = openSync(resolve(runDir, `${name}.log`), 'a');
  return spawn(process.execPath, [...nodeArgs, resolve(root, script)], { env, stdio: ['ignore', out, out] });
}

/** The Pub/Sub emulator, with every topic and subscription provisioned; the services' environment. */
async function startPubSub(
  root: string,
  runDir: string,
  registry: SchemaRegistry,
  log: Logger,
  say: (line: string) => void,
): Promise<{ emulator: RunningEmulator; env: NodeJS.ProcessEnv }> {
  say(`hourglass: starting the Pub/Sub emulator (log: ${runDir}/emulator.log)`);
  const emulator = await startEmulator({ heapMb: 2048, logFile: resolve(runDir, 'emulator.log') });
  writeFileSync(resolve(runDir, 'emulator.pid'), `${emulator.pid}\n`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PUBSUB_EMULATOR_HOST: emulator.host,
    METADATA_SERVER_DETECTION: 'none',
    HOURGLASS_SCHEMAS_DIR: resolve(root, Defaults.schemasDir),
  };
  process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  process.env.METADATA_SERVER_DETECTION = 'none';
  await provisionTopology({
    projectId: Defaults.projectId,
    prefix: Defaults.prefix,
    eventTypes: registry.eventTypes(),
    logger: log,
  });
  say(`hourglass: emulator on ${emulator.host}; topics provisioned for ${registry.eventTypes().join(', ')}`);
  return { emulator, env };
}

/** What is running where, and how to send an event and see its window. */
function printGuide(
  say: (line: string) => void,
  g: {
    gatewayUrl: string;
    runDir: string;
    apiKey: string;
    replicas: readonly ReplicaProcess[];
    store: FleetStore;
    demo: boolean;
  },
): void {
  const { gatewayUrl, runDir, apiKey, replicas, store } = g;
  say('');
  say(`gateway   ${gatewayUrl}  (metrics ${gatewayUrl}/metrics, log ${runDir}/gateway.log)`);
  for (const line of describeFleet(replicas, store)) say(line);
  say(`buckets   ${store.url}/<type>/dt=YYYY-MM-DD/hour=HH/  (complete when _SUCCESS exists)`);
  say(`api key   ${apiKey}`);
  say('');
  say('send an event:');
  say(
    `  curl -s -H 'authorization: Bearer ${apiKey}' -H 'content-type: application/json' ${gatewayUrl}/v1/events \\\n` +
      `    -d '{"events":[{"type":"ab_exposure","payload":{"user_id":"u1","experiment_id":"e1","variant":"A","first_exposure":true}}]}'`,
  );
  say(
    `look:  ${store.fake ? `STORAGE_EMULATOR_HOST=${store.fake.url} ` : ''}npx hourglass ls ab_exposure --store ${store.url}    (windows ${g.demo ? 'of one minute close ~15 s after their end: 10 s grace + 5 s publish timeout' : 'close ~5 min 5 s after each hour: grace + publish timeout'})`,
  );
  say('Ctrl-C stops everything.');
  say('');
}

'use strict';
/**
 * Consumer benchmark (run after `npx tsc -b`): `node bench/consumer.js`.
 *
 *   0. warm-up  - as many bundles published to a throwaway topic and drained with unary Pull and
 *                 Acknowledge, the consumer's RPCs (the emulator's JIT).
 *   1. backlog  - BENCH_EVENTS events (default 1,000,000) of track_played, all in one one-minute
 *                 window, encoded as bundles of 100 and published straight to the emulator topic
 *                 (timed: the emulator's publish rate for these bundles).
 *   2. ceiling  - the same bundles through the consumer's own staging code in this process, no
 *                 Pub/Sub: decode (resolution included) + route + Avro container write (codec as configured)
 *                 + fsynced create-if-absent on the local store.
 *   3. consumer - the built consumer (services/consumer/dist/main.js) draining the backlog from
 *                 the subscription to durable staged files: events/s from ready to all staged,
 *                 ratio to the ceiling, RSS sampled every 250 ms.
 *   4. finalize - the consumer then closes the window (idle watermark): time to finalize the
 *                 window of BENCH_EVENTS events (from its log) and RSS during it.
 * Writes bench/results/consumer.json.
 *
 * Env: BENCH_EVENTS, BENCH_BUNDLE (default 100), BENCH_WARMUP_MESSAGES (default: the backlog's),
 * PUBSUB_EMULATOR_HOST to use a running emulator
 * (default: start one with BENCH_EMULATOR_HEAP_MB, default 3072), BENCH_CONSUMER_ENV='{"K":"V"}',
 * BENCH_CONSUMER_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' (node flags of the consumer process).
 */
const { spawn } = require('node:child_process');
const {
  benchStager,
  cpuSeconds,
  metricsOf,
  publishBundles,
  rssMb,
  sumMetric,
  trackPlayed: record,
} = require('./lib.js');
const { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir, cpus, loadavg } = require('node:os');
const path = require('node:path');
const { randomBytes } = require('node:crypto');

const root = path.join(__dirname, '..');
const dist = (p) => require(path.join(root, p, 'dist/index.js'));
const { startEmulator } = dist('packages/emulator');
const { SchemaRegistry, encodeRecords } = dist('packages/schemas');
const { Defaults, ManualClock } = dist('packages/common');
const { LocalDirectoryStore } = dist('packages/storage');
const { provisionTopology } = dist('packages/cli');
const { subscriberClientFor } = dist('services/consumer');

const EVENTS = Number(process.env.BENCH_EVENTS || 1_000_000);
const BUNDLE = Number(process.env.BENCH_BUNDLE || 100);
const TYPE = 'track_played';
const MINUTE = 60_000;
const resultsDir = path.join(root, 'bench', 'results');
const prefix = `bench${randomBytes(3).toString('hex')}`;

/** Every bundle of the backlog, encoded once and used by both the publisher and the ceiling. */
function buildBundles(registry, windowStart) {
  const writer = registry.get(TYPE).latest;
  const bundles = [];
  for (let i = 0; i < EVENTS; i += BUNDLE) {
    const records = [];
    for (let j = i; j < Math.min(i + BUNDLE, EVENTS); j++) records.push(record(j, windowStart + (j % MINUTE)));
    bundles.push(encodeRecords(writer, records, 'null'));
  }
  return bundles;
}

/**
 * The emulator's JIT needs traffic before it serves at full speed, and on the RPCs the consumer
 * sends: unary Pull and Acknowledge (the consumer's default, HOURGLASS_PULL=unary). Warming with
 * a streaming pull, as this bench did until 2026-12-05, left the Pull path cold: the emulator
 * then spent about twice the CPU per message in a 1 M event drain as in the later part of a 4 M one.
 * Publishes a throwaway backlog of BENCH_WARMUP_MESSAGES bundles (default: as many as the
 * backlog) and pulls it as the consumer does, 1,000 messages per Pull.
 */
async function warmUp(bundles) {
  const { PubSub } = require('@google-cloud/pubsub');
  const pubsub = new PubSub({ projectId: Defaults.projectId });
  const [topic] = await pubsub.createTopic(`${prefix}-warmup`);
  const [sub] = await topic.createSubscription(`${prefix}-warmup-sub`);
  const count = Math.min(bundles.length, Number(process.env.BENCH_WARMUP_MESSAGES || bundles.length));
  await publish(bundles.slice(0, count), `${prefix}-warmup`);
  const client = await subscriberClientFor(pubsub); // the consumer's own, as it pulls
  const subscription = sub.name;
  let received = 0;
  const deadline = Date.now() + 300_000;
  while (received < count) {
    if (Date.now() > deadline) throw new Error(`warm-up: ${received} of ${count} messages pulled in 300 s`);
    const [answer] = await client.pull({
      subscription,
      maxMessages: Defaults.pullBatchMessages,
      returnImmediately: true,
    });
    const ackIds = (answer.receivedMessages ?? []).map((m) => m.ackId);
    if (ackIds.length > 0) await client.acknowledge({ subscription, ackIds });
    received += ackIds.length;
  }
  await client.close();
  await sub.delete();
  await pubsub.close();
  return { messages: count };
}

async function publish(bundles, topicName = `${prefix}-${TYPE}`) {
  const seconds = await publishBundles(Defaults.projectId, topicName, bundles);
  const events = bundles.reduce((n, b) => n + Number(b.attributes.count), 0);
  return { seconds, eventsPerSecond: events / seconds, messagesPerSecond: bundles.length / seconds };
}

/** The consumer's staging code alone on the same bundles: decode + route + container write + fsync. */
async function ceiling(registry, bundles) {
  const dir = mkdtempSync(path.join(tmpdir(), 'hourglass-bench-ceiling-'));
  const store = new LocalDirectoryStore(dir);
  const clock = new ManualClock(Date.now());
  const stager = benchStager({
    store,
    registry,
    clock,
    eventType: TYPE,
    replicaId: 'ceiling',
    incarnation: 'bench',
    graceMs: 2000,
  });
  let acked = 0;
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  let n = 0;
  for (const b of bundles) {
    stager.handle({ id: String(n), data: b.data, attributes: b.attributes, ack: () => acked++, nack: () => undefined });
    // let writes and deflate callbacks run, as the event loop would between messages
    if (++n % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  await stager.flushAll();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  rmSync(dir, { recursive: true, force: true });
  if (acked !== bundles.length || stager.stats.staged !== EVENTS) throw new Error('ceiling lost messages');
  return {
    seconds,
    eventsPerSecond: EVENTS / seconds,
    cpuCores: (cpu.user + cpu.system) / 1e6 / seconds,
    stagedFiles: stager.stats.stagedFiles,
    stagedBytes: stager.stats.stagedBytes,
  };
}

async function main() {
  process.env.METADATA_SERVER_DETECTION = 'none';
  mkdirSync(resultsDir, { recursive: true });
  const registry = SchemaRegistry.load(path.join(root, 'schemas'));
  const windowStart = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
  console.log(
    `consumer benchmark: ${EVENTS.toLocaleString('en')} events of ${TYPE} in bundles of ${BUNDLE}, one window`,
  );

  let emulator;
  if (!process.env.PUBSUB_EMULATOR_HOST) {
    emulator = await startEmulator({
      heapMb: Number(process.env.BENCH_EMULATOR_HEAP_MB || 3072),
      logFile: path.join(tmpdir(), 'hourglass-bench-consumer-emulator.log'),
    });
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  }
  const result = {
    machine: { cpus: cpus().length, node: process.version, loadavg: loadavg() },
    settings: { events: EVENTS, bundle: BUNDLE, prefix },
  };
  let consumer;
  try {
    await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE] });
    const bundles = buildBundles(registry, windowStart);
    const bytes = bundles.reduce((n, b) => n + b.data.length, 0);
    console.log(`bundles: ${bundles.length.toLocaleString('en')} messages, ${(bytes / 1e6).toFixed(1)} MB of Avro`);

    // 1. the backlog (after warming the emulator up)
    result.warmUp = await warmUp(bundles);
    result.publish = await publish(bundles);
    console.log(
      `publish  ${Math.round(result.publish.eventsPerSecond).toLocaleString('en').padStart(9)} events/s` +
        `  (${Math.round(result.publish.messagesPerSecond).toLocaleString('en')} messages/s, ${result.publish.seconds.toFixed(1)} s)`,
    );

    // 2. ceiling, before the consumer runs so the two never share the CPU
    result.ceiling = await ceiling(registry, bundles);
    console.log(
      `ceiling  ${Math.round(result.ceiling.eventsPerSecond).toLocaleString('en').padStart(9)} events/s` +
        `  decode + stage in-process, ${result.ceiling.cpuCores.toFixed(2)} CPU cores, ${result.ceiling.stagedFiles} staged files`,
    );
    bundles.length = 0;

    // 3. the consumer draining the backlog
    const store = mkdtempSync(path.join(tmpdir(), 'hourglass-bench-store-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const env = {
      ...process.env,
      HOURGLASS_STORE: store,
      HOURGLASS_PREFIX: prefix,
      HOURGLASS_EVENT_TYPES: TYPE,
      HOURGLASS_SCHEMAS_DIR: path.join(root, 'schemas'),
      HOURGLASS_WINDOW: '1m',
      HOURGLASS_GRACE: '2s',
      HOURGLASS_PUBLISH_TIMEOUT: '1s',
      HOURGLASS_IDLE_AFTER: '3s',
      HOURGLASS_CONSUMER_HOST: '127.0.0.1',
      HOURGLASS_CONSUMER_PORT: String(port),
      HOURGLASS_REPLICA_ID: 'bench',
      HOURGLASS_LOG_LEVEL: 'info',
      // Phases 3 and 4 measure staging alone, then a whole window's finalize: an early segment
      // firing mid-staging (the watermark crossing a third of the window, timing-dependent) made
      // one run stage 236 k events/s at 1.0 cores and "finalize" only the last 0.05 s of work.
      // bench/e2e.js measures early finalize under load.
      HOURGLASS_EARLY_SEGMENTS: '0',
      ...JSON.parse(process.env.BENCH_CONSUMER_ENV || '{}'),
    };
    const nodeArgs = process.env.BENCH_CONSUMER_NODE_ARGS ? process.env.BENCH_CONSUMER_NODE_ARGS.split(' ') : [];
    const child = spawn(process.execPath, [...nodeArgs, path.join(root, 'services/consumer/dist/main.js')], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    consumer = child;
    let log = '';
    child.stdout.on('data', (c) => (log += c));
    child.stderr.on('data', (c) => (log += c));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + 60_000;
    while (
      !(await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error(`consumer not ready:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const readyAt = process.hrtime.bigint();
    const cpu0 = cpuSeconds(child.pid);
    const emulatorCpu0 = emulator ? cpuSeconds(emulator.pid) : 0;
    let drainRss = 0;
    let staged = 0;
    while (staged < EVENTS) {
      await new Promise((r) => setTimeout(r, 250));
      drainRss = Math.max(drainRss, rssMb(child.pid));
      staged = sumMetric(await metricsOf(port), 'hourglass_consumer_events_staged_total');
      if (Date.now() > deadline + 600_000) throw new Error(`staging did not finish (${staged} staged)`);
    }
    const drainSeconds = Number(process.hrtime.bigint() - readyAt) / 1e9;
    result.consumer = {
      seconds: drainSeconds,
      eventsPerSecond: EVENTS / drainSeconds,
      ratioToCeiling: EVENTS / drainSeconds / result.ceiling.eventsPerSecond,
      cpuCores: (cpuSeconds(child.pid) - cpu0) / drainSeconds,
      // the emulator serving the Pulls meanwhile: with the consumer, what the 2 cores are left with
      emulatorCpuCores: emulator ? (cpuSeconds(emulator.pid) - emulatorCpu0) / drainSeconds : null,
      maxRssMb: drainRss,
    };
    // CPU per event, the consumer's against the ceiling's: how much of the gap is CPU, how much waiting
    result.consumer.cpuPerEventUs = (result.consumer.cpuCores * 1e6) / result.consumer.eventsPerSecond;
    result.ceiling.cpuPerEventUs = (result.ceiling.cpuCores * 1e6) / result.ceiling.eventsPerSecond;
    // per CPU, as issue 18 measures the gateway: the ceiling's CPU per event over the consumer's
    // (the events/s ratio also counts the emulator serving the Pulls from the same 2 cores)
    result.consumer.cpuRatioToCeiling = result.ceiling.cpuPerEventUs / result.consumer.cpuPerEventUs;
    const emulatorCores = result.consumer.emulatorCpuCores;
    console.log(
      `consumer ${Math.round(result.consumer.eventsPerSecond).toLocaleString('en').padStart(9)} events/s` +
        `  subscription -> staged files, ratio ${result.consumer.ratioToCeiling.toFixed(2)},` +
        ` ${result.consumer.cpuCores.toFixed(2)} CPU cores` +
        (emulatorCores === null ? '' : ` (emulator ${emulatorCores.toFixed(2)})`) +
        `, max RSS ${drainRss.toFixed(0)} MB; CPU per event ${result.consumer.cpuPerEventUs.toFixed(2)} µs` +
        ` (ceiling ${result.ceiling.cpuPerEventUs.toFixed(2)} µs: per CPU ${result.consumer.cpuRatioToCeiling.toFixed(2)})`,
    );

    // 4. the window closes once the consumer is idle; finalize time from its own log
    let finalizeRss = 0;
    let closed;
    while (!closed) {
      await new Promise((r) => setTimeout(r, 100));
      finalizeRss = Math.max(finalizeRss, rssMb(child.pid));
      closed = log
        .split('\n')
        .filter((l) => l.includes('"window closed"'))
        .map((l) => JSON.parse(l))
        .find((l) => l.records > 0);
      if (Date.now() > deadline + 900_000) throw new Error('window did not close');
    }
    const manifest = JSON.parse(readFileSync(path.join(store, manifestPath(windowStart)), 'utf8'));
    result.finalize = {
      records: closed.records,
      durationSeconds: closed.durationMs / 1000,
      maxRssMb: finalizeRss,
      files: manifest.files.map((f) => ({ path: f.path, records: f.records, bytes: f.bytes })),
    };
    console.log(
      `finalize ${closed.records.toLocaleString('en')} events in ${(closed.durationMs / 1000).toFixed(2)} s` +
        `, max RSS ${finalizeRss.toFixed(0)} MB, ${manifest.files.length} final file(s) of ${manifest.files
          .map((f) => `${(f.bytes / 1e6).toFixed(1)} MB`)
          .join(', ')}`,
    );
    if (manifest.counts.records !== EVENTS) throw new Error(`manifest has ${manifest.counts.records} records`);
    child.kill('SIGTERM');
    await exited;
    consumer = undefined;
    rmSync(store, { recursive: true, force: true });

    result.targets = {
      stagedEventsPerSecond: { target: 150_000, measured: Math.round(result.consumer.eventsPerSecond) },
      ratioToCeiling: { target: 0.5, measured: Number(result.consumer.ratioToCeiling.toFixed(3)) },
      cpuRatioToCeiling: { target: 0.5, measured: Number(result.consumer.cpuRatioToCeiling.toFixed(3)) },
      finalizeSeconds: { target: 10, measured: Number(result.finalize.durationSeconds.toFixed(2)), events: EVENTS },
      maxRssMb: { target: 500, measured: Math.round(Math.max(result.consumer.maxRssMb, result.finalize.maxRssMb)) },
    };
    writeFileSync(path.join(resultsDir, 'consumer.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(root, path.join(resultsDir, 'consumer.json'))}`);
  } finally {
    if (consumer) consumer.kill('SIGKILL');
    if (emulator) await emulator.stop();
  }
}

function manifestPath(windowStart) {
  const d = new Date(windowStart).toISOString();
  return path.join(TYPE, `dt=${d.slice(0, 10)}`, `hour=${d.slice(11, 13)}`, `minute=${d.slice(14, 16)}`, '_SUCCESS');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

'use strict';
/**
 * Consumer benchmark (run after `npx tsc -b`): `node bench/consumer.js`.
 *
 *   1. backlog  - BENCH_CONSUMER_WARMUP_EVENTS events (default: as many as measured) of
 *                 track_played in one one-minute window, then BENCH_EVENTS events (default
 *                 1,000,000) in the next, encoded as bundles of 100 and published straight to the
 *                 emulator topic (the second part timed: the emulator's publish rate).
 *   2. ceiling  - the same bundles through the consumer's own staging code in this process, no
 *                 Pub/Sub: decode (resolution included) + route + Avro container write (codec as configured)
 *                 + fsynced create-if-absent on the local store. The warm-up bundles first, then
 *                 the measured ones, timed.
 *   3. consumer - the built consumer (services/consumer/dist/main.js) draining the backlog from
 *                 the subscription to durable staged files. Timed from when it has staged the
 *                 warm-up's count to when it has staged everything: a consumer runs for days, and
 *                 a fresh process stages at a slower pace (its JIT, and every page it allocates is
 *                 touched for the first time). The warm-up also warms the emulator's Pull path.
 *                 Events/s, ratio to the ceiling, CPU, RSS sampled every 250 ms.
 *   4. finalize - the consumer then closes both windows (idle watermark): time to finalize the
 *                 measured window of BENCH_EVENTS events (from its log) and RSS meanwhile.
 * Writes bench/results/consumer.json.
 *
 * Env: BENCH_EVENTS, BENCH_BUNDLE (default 100), BENCH_CONSUMER_WARMUP_EVENTS (0: time the drain
 * from the consumer's readiness, a fresh process), PUBSUB_EMULATOR_HOST to use a running emulator
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
const { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
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

const EVENTS = Number(process.env.BENCH_EVENTS || 1_000_000);
const WARMUP_EVENTS = Number(process.env.BENCH_CONSUMER_WARMUP_EVENTS ?? EVENTS);
const BUNDLE = Number(process.env.BENCH_BUNDLE || 100);
const TYPE = 'track_played';
const MINUTE = 60_000;
const resultsDir = path.join(root, 'bench', 'results');
const prefix = `bench${randomBytes(3).toString('hex')}`;

/** `events` events of one window as bundles, encoded once and used by both the publisher and the ceiling. */
function buildBundles(registry, windowStart, events, firstId) {
  const writer = registry.get(TYPE).latest;
  const bundles = [];
  for (let i = 0; i < events; i += BUNDLE) {
    const records = [];
    for (let j = i; j < Math.min(i + BUNDLE, events); j++) {
      records.push(record(firstId + j, windowStart + (j % MINUTE)));
    }
    bundles.push(encodeRecords(writer, records, 'null'));
  }
  return bundles;
}

/** Events the bundles hold (their `count` attribute). */
function eventsIn(bundles) {
  return bundles.reduce((n, b) => n + Number(b.attributes.count), 0);
}

async function publish(bundles, topicName = `${prefix}-${TYPE}`) {
  const seconds = await publishBundles(Defaults.projectId, topicName, bundles);
  const events = eventsIn(bundles);
  return { seconds, eventsPerSecond: events / seconds, messagesPerSecond: bundles.length / seconds };
}

/** The consumer's staging code alone on the same bundles: decode + route + container write + fsync. */
async function ceiling(registry, bundles) {
  const events = eventsIn(bundles);
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
  if (acked !== bundles.length || stager.stats.staged !== events) throw new Error('ceiling lost messages');
  return {
    seconds,
    eventsPerSecond: events / seconds,
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
    `consumer benchmark: ${EVENTS.toLocaleString('en')} events of ${TYPE} in bundles of ${BUNDLE}, one window,` +
      ` after ${WARMUP_EVENTS.toLocaleString('en')} warm-up events in the window before`,
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
    // the warm-up's window first, the measured one after it (each closes with its own events)
    const warmBundles = buildBundles(registry, windowStart - MINUTE, WARMUP_EVENTS, EVENTS);
    const bundles = buildBundles(registry, windowStart, EVENTS, 0);
    const bytes = bundles.reduce((n, b) => n + b.data.length, 0);
    console.log(`bundles: ${bundles.length.toLocaleString('en')} messages, ${(bytes / 1e6).toFixed(1)} MB of Avro`);

    // 1. the backlog, the warm-up's part first
    if (warmBundles.length > 0) await publish(warmBundles);
    result.warmUp = { events: WARMUP_EVENTS, messages: warmBundles.length };
    result.publish = await publish(bundles);
    console.log(
      `publish  ${Math.round(result.publish.eventsPerSecond).toLocaleString('en').padStart(9)} events/s` +
        `  (${Math.round(result.publish.messagesPerSecond).toLocaleString('en')} messages/s, ${result.publish.seconds.toFixed(1)} s)`,
    );

    // 2. ceiling, before the consumer runs so the two never share the CPU; warmed as the consumer is
    if (warmBundles.length > 0) await ceiling(registry, warmBundles);
    result.ceiling = await ceiling(registry, bundles);
    console.log(
      `ceiling  ${Math.round(result.ceiling.eventsPerSecond).toLocaleString('en').padStart(9)} events/s` +
        `  decode + stage in-process, ${result.ceiling.cpuCores.toFixed(2)} CPU cores, ${result.ceiling.stagedFiles} staged files`,
    );
    bundles.length = 0;
    warmBundles.length = 0;

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
      await new Promise((r) => setTimeout(r, 10));
    }
    // samples of the staged count: the drain is timed from the first at or past the warm-up's count
    const sample = async () => ({
      at: process.hrtime.bigint(),
      staged: sumMetric(await metricsOf(port), 'hourglass_consumer_events_staged_total'),
      cpu: cpuSeconds(child.pid),
      emulatorCpu: emulator ? cpuSeconds(emulator.pid) : 0,
    });
    const total = WARMUP_EVENTS + EVENTS;
    let last = await sample();
    const ready = { ...last, staged: 0 };
    let first = WARMUP_EVENTS === 0 ? ready : undefined;
    let drainRss = 0;
    while (last.staged < total) {
      // the ends are read to within 10 ms (every 250 ms, the end was up to 250 ms late, 10% of a
      // 1 M event drain); polled that often only within half a second of the next one at the pace
      // so far, so the scrapes cost little and a short drain cannot jump over the start
      const next = first ? total : WARMUP_EVENTS;
      const pace = last.staged / (Number(last.at - ready.at) / 1e9 || Infinity);
      const near = pace > 0 && (next - last.staged) / pace < 0.5;
      await new Promise((r) => setTimeout(r, near ? 10 : 250));
      last = await sample();
      if (first) drainRss = Math.max(drainRss, rssMb(child.pid));
      else if (last.staged >= WARMUP_EVENTS) first = last;
      if (Date.now() > deadline + 600_000) throw new Error(`staging did not finish (${last.staged} staged)`);
    }
    if (first.at === last.at)
      throw new Error('the drain ended within one sample: too few events to time (BENCH_EVENTS)');
    // the fresh process's pace, from readiness over the warm-up (reported, not the ratio's)
    result.warmUp.drain = WARMUP_EVENTS === 0 ? null : rateBetween(ready, first);
    const drain = rateBetween(first, last);
    result.consumer = {
      ...drain,
      ratioToCeiling: drain.eventsPerSecond / result.ceiling.eventsPerSecond,
      // the emulator serving the Pulls meanwhile: with the consumer, what the 2 cores are left with
      emulatorCpuCores: emulator ? (last.emulatorCpu - first.emulatorCpu) / drain.seconds : null,
      maxRssMb: drainRss,
      // CLOCK_MONOTONIC (ns) at the timed drain's ends: the window of a --cpu-prof profile to read
      monotonicNs: [String(first.at), String(last.at)],
    };
    // CPU per event, the consumer's against the ceiling's: how much of the gap is CPU, how much waiting
    result.consumer.cpuPerEventUs = (result.consumer.cpuCores * 1e6) / result.consumer.eventsPerSecond;
    result.ceiling.cpuPerEventUs = (result.ceiling.cpuCores * 1e6) / result.ceiling.eventsPerSecond;
    // per CPU, as issue 18 measures the gateway: the ceiling's CPU per event over the consumer's
    // (the events/s ratio also counts the emulator serving the Pulls from the same 2 cores)
    result.consumer.cpuRatioToCeiling = result.ceiling.cpuPerEventUs / result.consumer.cpuPerEventUs;
    const emulatorCores = result.consumer.emulatorCpuCores;
    const fresh = result.warmUp.drain;
    if (fresh) {
      console.log(
        `warm-up  ${Math.round(fresh.eventsPerSecond).toLocaleString('en').padStart(9)} events/s` +
          `  the fresh consumer from readiness, ${fresh.events.toLocaleString('en')} events, ${fresh.cpuCores.toFixed(2)} CPU cores (not timed for the ratio)`,
      );
    }
    console.log(
      `consumer ${Math.round(result.consumer.eventsPerSecond).toLocaleString('en').padStart(9)} events/s` +
        `  subscription -> staged files, ratio ${result.consumer.ratioToCeiling.toFixed(2)},` +
        ` ${result.consumer.cpuCores.toFixed(2)} CPU cores` +
        (emulatorCores === null ? '' : ` (emulator ${emulatorCores.toFixed(2)})`) +
        `, max RSS ${drainRss.toFixed(0)} MB; CPU per event ${result.consumer.cpuPerEventUs.toFixed(2)} µs` +
        ` (ceiling ${result.ceiling.cpuPerEventUs.toFixed(2)} µs: per CPU ${result.consumer.cpuRatioToCeiling.toFixed(2)})`,
    );

    // 4. the windows close once the consumer is idle; the measured one's finalize time from its own log
    const measuredWindow = `[${new Date(windowStart).toISOString()},`;
    let finalizeRss = 0;
    let closed;
    while (!closed) {
      await new Promise((r) => setTimeout(r, 100));
      finalizeRss = Math.max(finalizeRss, rssMb(child.pid));
      closed = log
        .split('\n')
        .filter((l) => l.includes('"window closed"'))
        .map((l) => JSON.parse(l))
        .find((l) => l.records > 0 && l.window.startsWith(measuredWindow));
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
    if (WARMUP_EVENTS > 0) {
      const warmManifest = path.join(store, manifestPath(windowStart - MINUTE));
      while (!existsSync(warmManifest)) {
        if (Date.now() > deadline + 900_000) throw new Error('the warm-up window did not close');
        await new Promise((r) => setTimeout(r, 100));
      }
      const warm = JSON.parse(readFileSync(warmManifest, 'utf8'));
      if (warm.counts.records !== WARMUP_EVENTS) throw new Error(`warm-up manifest has ${warm.counts.records} records`);
    }
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

/** Staged events per second and consumer cores between two samples. */
function rateBetween(from, to) {
  const seconds = Number(to.at - from.at) / 1e9;
  const events = to.staged - from.staged;
  return { events, seconds, eventsPerSecond: events / seconds, cpuCores: (to.cpu - from.cpu) / seconds };
}

function manifestPath(windowStart) {
  const d = new Date(windowStart).toISOString();
  return path.join(TYPE, `dt=${d.slice(0, 10)}`, `hour=${d.slice(11, 13)}`, `minute=${d.slice(14, 16)}`, '_SUCCESS');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

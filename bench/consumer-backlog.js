'use strict';
/**
 * Consumer memory with a large backlog over every type (#13.3), after `npx tsc -b`:
 * `node bench/consumer-backlog.js`.
 *
 *   1. backlog - BENCH_EVENTS events (default 2,000,000) spread evenly over all five event types,
 *                in bundles of BENCH_BUNDLE (default 100), published straight to the emulator.
 *   2. consumer - the built consumer (services/consumer/dist/main.js) reads all five subscriptions
 *                with the default flow control (HOURGLASS_FLOW_MAX_MESSAGES 2,000 messages,
 *                HOURGLASS_FLOW_MAX_BYTES 128 MiB: one budget for the process) and part files
 *                flushed only every 5 s, so it keeps holding as much as flow control lets it
 *                while the backlog drains; it does not close windows (HOURGLASS_CLOSER=false).
 *                RSS and held events (hourglass_consumer_held_events, summed over the types) are
 *                sampled every 250 ms until every event is staged.
 * Writes bench/results/consumer-backlog.json. Env: BENCH_EVENTS, BENCH_BUNDLE,
 * BENCH_EMULATOR_HEAP_MB (default 3072), PUBSUB_EMULATOR_HOST to use a running emulator,
 * BENCH_CONSUMER_ENV='{"K":"V"}'.
 */
const { spawn } = require('node:child_process');
const { mkdirSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { randomBytes, randomUUID } = require('node:crypto');
const { median, metricsOf, publishBundles, rssMb, sumMetric } = require('./lib.js');

const root = path.join(__dirname, '..');
const dist = (p) => require(path.join(root, p, 'dist/index.js'));
const { startEmulator, freePort } = dist('packages/emulator');
const { SchemaRegistry, encodeRecords } = dist('packages/schemas');
const { Defaults } = dist('packages/common');
const { provisionTopology } = dist('packages/cli');

const EVENTS = Number(process.env.BENCH_EVENTS || 2_000_000);
const BUNDLE = Number(process.env.BENCH_BUNDLE || 100);
const MINUTE = 60_000;
const prefix = `backlog${randomBytes(3).toString('hex')}`;

/** Bundles of one type: records from 100 random templates, each with its own id and gateway_ts. */
function bundlesOf(registry, type, events, windowStart) {
  const writer = registry.get(type).latest;
  const templates = Array.from({ length: 100 }, () => writer.type.random());
  const bundles = [];
  for (let i = 0; i < events; i += BUNDLE) {
    const records = [];
    for (let j = i; j < Math.min(i + BUNDLE, events); j++) {
      const meta = { event_id: randomUUID(), gateway_ts: windowStart + (j % MINUTE), client_ts: null, gateway_id: 'b' };
      records.push({ ...templates[j % templates.length], meta });
    }
    bundles.push(encodeRecords(writer, records, 'null'));
  }
  return bundles;
}

async function main() {
  process.env.METADATA_SERVER_DETECTION = 'none';
  const registry = SchemaRegistry.load(path.join(root, 'schemas'));
  const types = registry.eventTypes();
  const windowStart = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
  let emulator;
  if (!process.env.PUBSUB_EMULATOR_HOST) {
    emulator = await startEmulator({
      heapMb: Number(process.env.BENCH_EMULATOR_HEAP_MB || 3072),
      logFile: path.join(tmpdir(), 'hourglass-bench-backlog-emulator.log'),
    });
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'hourglass-bench-backlog-'));
  let consumer;
  try {
    await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: types });
    let messages = 0;
    let bytes = 0;
    for (const type of types) {
      const bundles = bundlesOf(registry, type, Math.ceil(EVENTS / types.length), windowStart);
      messages += bundles.length;
      bytes += bundles.reduce((n, b) => n + b.data.length, 0);
      await publishBundles(Defaults.projectId, `${prefix}-${type}`, bundles);
    }
    const total = Math.ceil(EVENTS / types.length) * types.length;
    console.log(
      `backlog: ${total.toLocaleString('en')} events of ${types.length} types in ${messages.toLocaleString('en')} messages, ` +
        `${(bytes / 1e6).toFixed(1)} MB of Avro`,
    );
    const port = await freePort();
    const env = {
      ...process.env,
      HOURGLASS_STORE: path.join(dir, 'data'),
      HOURGLASS_PREFIX: prefix,
      HOURGLASS_SCHEMAS_DIR: path.join(root, 'schemas'),
      HOURGLASS_CONSUMER_PORT: String(port),
      HOURGLASS_WINDOW: '1m',
      HOURGLASS_CLOSER: 'false',
      HOURGLASS_STAGE_MAX_AGE: '5s',
      HOURGLASS_STAGE_MAX_EVENTS: '10000000',
      HOURGLASS_STAGE_MAX_BYTES: String(1 << 30),
      HOURGLASS_LOG_LEVEL: 'warn',
      ...JSON.parse(process.env.BENCH_CONSUMER_ENV || '{}'),
    };
    const flow = {
      messages: Number(env.HOURGLASS_FLOW_MAX_MESSAGES || Defaults.flowMaxMessages),
      bytes: env.HOURGLASS_FLOW_MAX_BYTES || Defaults.flowMaxBytes,
    };
    const started = Date.now();
    consumer = spawn(process.execPath, [path.join(root, 'services/consumer/dist/main.js')], { env, stdio: 'inherit' });
    let peakRss = 0;
    let peakHeld = 0;
    let staged = 0;
    let heldSamples = [];
    while (staged < total) {
      await new Promise((r) => setTimeout(r, 250));
      if (consumer.exitCode !== null) throw new Error(`consumer exited with ${consumer.exitCode}`);
      const text = await metricsOf(port);
      if (!text) continue;
      staged = sumMetric(text, 'hourglass_consumer_events_staged_total');
      const held = sumMetric(text, 'hourglass_consumer_held_events');
      peakHeld = Math.max(peakHeld, held);
      heldSamples.push(held);
      peakRss = Math.max(peakRss, rssMb(consumer.pid));
      if (Date.now() - started > 15 * MINUTE) throw new Error(`only ${staged} of ${total} staged after 15 minutes`);
    }
    const seconds = (Date.now() - started) / 1000;
    const result = {
      events: total,
      types: types.length,
      messages,
      backlogMb: bytes / 1e6,
      flowMaxMessages: flow.messages,
      flowMaxBytes: flow.bytes,
      drainSeconds: seconds,
      peakRssMb: Math.round(peakRss),
      peakHeldEvents: peakHeld,
      peakHeldMessages: Math.ceil(peakHeld / BUNDLE),
      medianHeldEvents: median(heldSamples) ?? 0,
    };
    console.log(
      `consumer: staged ${total.toLocaleString('en')} events in ${seconds.toFixed(1)} s; peak RSS ${result.peakRssMb} MB; ` +
        `peak held ${peakHeld.toLocaleString('en')} events (~${result.peakHeldMessages} messages, limit ${flow.messages} for the process), ` +
        `median held ${result.medianHeldEvents.toLocaleString('en')}`,
    );
    mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
    writeFileSync(path.join(root, 'bench', 'results', 'consumer-backlog.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    if (consumer && consumer.exitCode === null) {
      consumer.kill('SIGTERM');
      await new Promise((r) => consumer.once('exit', r));
    }
    await emulator?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

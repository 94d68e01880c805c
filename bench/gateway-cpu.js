'use strict';
/**
 * CPU per event of each gateway stage, in one process, on the load generator's bodies
 * (100-event JSON batches over every type): `node bench/gateway-cpu.js` after `npx tsc -b`.
 * Complements bench/gateway.js, whose throughput on a shared 2-core machine varies a lot:
 * CPU time of a fixed workload varies much less, and under `valgrind --tool=callgrind`
 * its instruction count is repeatable.
 *
 * Stages: parse (JSON.parse, the ceiling pays it too), reference (a body's bytes to datums as
 * main did: JSON.parse then prepareJson), read / read-ts (the body reader alone: WebAssembly with
 * the TypeScript reader for what it declines / the TypeScript reader alone), route (the same as
 * the route does now: the JSON-to-Avro transcoder, prepareJson its fallback), build (buildRecord: validate and
 * fill defaults), encode (Avro into the datum arena), prepare (prepareJson: envelope
 * checks + compiled writer or buildRecord + encode), bundle (Bundler + encodeBundle + the
 * answers, with a publisher that acks at once; about half of it is GC here, more than in
 * the gateway, so compare it between builds only), publish (the Pub/Sub publisher alone,
 * bundles of ~100 events or BENCH_PUBLISH_BUNDLE, 64 in flight, against an emulator; only with
 * BENCH_PUBLISH=1, which starts one unless PUBSUB_EMULATOR_HOST is set).
 *
 * Env: BENCH_ROUNDS (default 20) passes over 200 bodies per stage; BENCH_STAGES=a,b to run some;
 * BENCH_EXTRA_TYPES=n adds n event types to the registry (the bodies keep the 5 real ones);
 * BENCH_BATCH_MESSAGES / BENCH_BATCH_MS for the publisher's batching (default: the gateway's).
 */
const path = require('node:path');
const { rmSync } = require('node:fs');
const { schemasWithExtraTypes } = require('./lib.js');
const { randomUUID } = require('node:crypto');
const root = path.join(__dirname, '..');
const { SchemaRegistry, buildRecord } = require(path.join(root, 'packages/schemas/dist/index.js'));
const { EventGenerator } = require(path.join(root, 'packages/client/dist/index.js'));
const { datumEventId, prepareJson } = require(path.join(root, 'services/gateway/dist/prepare.js'));
const { eventsOf, metaRoom, prepareEvents } = require(path.join(root, 'services/gateway/dist/fast-path.js'));
const { readEventsBody } = require(path.join(root, 'services/gateway/dist/transcoded-body.js'));
const { DatumArena } = require(path.join(root, 'services/gateway/dist/datum-arena.js'));
const { Bundler } = require(path.join(root, 'services/gateway/dist/bundler.js'));
const { BatchAnswer } = require(path.join(root, 'services/gateway/dist/batch-answer.js'));
const { OutstandingBudget } = require(path.join(root, 'services/gateway/dist/outstanding.js'));
const { GatewayMetrics } = require(path.join(root, 'services/gateway/dist/metrics.js'));
const { RequestTrace } = require(path.join(root, 'services/gateway/dist/traceparent.js'));

const rounds = Number(process.env.BENCH_ROUNDS || 20);
const only = process.env.BENCH_STAGES ? new Set(process.env.BENCH_STAGES.split(',')) : undefined;
const schemas = SchemaRegistry.load(path.join(root, 'schemas'));
const extraTypes = Number(process.env.BENCH_EXTRA_TYPES || 0);
const registry = extraTypes === 0 ? schemas : loadExtraTypes(extraTypes);
const generator = new EventGenerator(schemas, { seed: 1 });

/** The registry with `n` more types (bench/lib.js); the bodies keep the 5 real ones. */
function loadExtraTypes(n) {
  const dir = schemasWithExtraTypes(n);
  const many = SchemaRegistry.load(dir);
  rmSync(dir, { recursive: true });
  return many;
}

const texts = [];
for (let i = 0; i < 200; i++) {
  const events = generator.batch(100).map((e) => ({ ...e, id: randomUUID(), client_ts: Date.now() }));
  texts.push(JSON.stringify({ events }));
}
const parsed = texts.map((t) => JSON.parse(t).events);
const eventsPerRound = parsed.reduce((n, b) => n + b.length, 0);
const metrics = new GatewayMetrics(registry.eventTypes(), new OutstandingBudget(1e12, 1e12));
const key = { name: 'bench', sha256: '', types: undefined, ratePerSecond: 1e9 };
const meta = () => ({ event_id: randomUUID(), gateway_ts: Date.now(), client_ts: null, gateway_id: 'bench-gw' });
const silent = { error() {}, warn() {}, info() {}, debug() {} };

/** Runs `fn` (one round) for warm-up, then `rounds` times, and prints CPU µs per event. */
async function stage(name, fn, events = eventsPerRound) {
  if (only && !only.has(name)) return;
  for (let r = 0; r < Math.max(3, rounds / 4); r++) await fn();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) await fn();
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  const n = rounds * events;
  console.log(
    `${name.padEnd(8)} ${(((cpu.user + cpu.system) / n) * 1).toFixed(2).padStart(6)} µs CPU/event  ` +
      `${((wall * 1000) / n).toFixed(2).padStart(6)} µs wall/event`,
  );
}

function prepareContext() {
  return { registry, gatewayId: 'bench-gw', maxEventBytes: 65536, metrics, arena: new DatumArena() };
}

async function main() {
  await stage('parse', () => {
    for (const t of texts) JSON.parse(t);
  });

  const writers = parsed.map((b) => b.map((e) => registry.get(e.type).latest));
  await stage('build', () => {
    for (let b = 0; b < parsed.length; b++) {
      const batch = parsed[b];
      for (let i = 0; i < batch.length; i++) {
        const built = buildRecord(writers[b][i], meta(), batch[i].payload);
        if (!built.ok) throw new Error(`${built.path} ${built.reason}`);
      }
    }
  });

  const records = parsed.map((b, bi) => b.map((e, i) => buildRecord(writers[bi][i], meta(), e.payload).record));
  const arena = new DatumArena();
  await stage('encode', () => {
    for (let b = 0; b < records.length; b++) {
      const batch = records[b];
      for (let i = 0; i < batch.length; i++) arena.encode(writers[b][i].type, batch[i]);
    }
  });

  const ctx = prepareContext();
  // The JSON route's whole body-to-datums work, as on main (JSON.parse, then prepareJson) and
  // as now (the transcoder, with prepareJson as its fallback): issue 18's pair.
  const raws = texts.map((t) => Buffer.from(t));
  const room = metaRoom ? metaRoom('bench-gw') : 0; // as the route reads bodies (builds before it had none)
  await stage('reference', () => {
    for (const raw of raws) {
      const events = JSON.parse(raw.toString('utf8')).events;
      const out = prepareJson(ctx, key, events, Date.now(), new BatchAnswer(events.length));
      if (out.count !== events.length) throw new Error('an event was rejected');
    }
  });
  // The body reader alone (no prepare): the WebAssembly reader with the TypeScript one for what
  // it declines, as the route runs it, and the TypeScript reader alone (docs/performance.md).
  for (const [name, reader] of [
    ['read', 'wasm'],
    ['read-ts', 'typescript'],
  ]) {
    await stage(name, () => {
      for (const raw of raws)
        if (eventsOf(readEventsBody(registry, raw, room, reader)).length !== 100) throw new Error(name);
    });
  }
  await stage('route', () => {
    for (const raw of raws) {
      const events = eventsOf(readEventsBody(registry, raw, room));
      const out = prepareEvents(ctx, key, events, Date.now(), new BatchAnswer(events.length));
      if (out.count !== events.length) throw new Error('an event was rejected');
    }
  });

  await stage('prepare', () => {
    for (const batch of parsed) {
      const answer = new BatchAnswer(batch.length);
      const out = prepareJson(ctx, key, batch, Date.now(), answer);
      if (out.count !== batch.length) throw new Error('an event was rejected');
    }
  });

  // Bundler on prepared events, with a publisher that acks at once.
  const prepared = parsed.map((batch) => prepareJson(ctx, key, batch, Date.now(), new BatchAnswer(batch.length)));
  const budget = new OutstandingBudget(1e12, 1e12);
  // A new bundler per round: drain() leaves a bundler flushing every event on its own.
  const newBundler = () =>
    new Bundler({
      publisher: { publish: () => Promise.resolve('1') },
      budget,
      clock: { now: () => Date.now() },
      metrics,
      logger: silent,
      maxEvents: 100,
      maxBytes: 1_000_000,
      linger: 5,
      maxLinger: 100,
      lingerTargetEvents: 100,
      codec: 'null',
      publishTimeout: 10_000,
      unbundledTypes: new Set(),
    });
  const trace = new RequestTrace(undefined, undefined); // tracing off: no spans (bench/tracing-cpu.js measures on)
  await stage('bundle', async () => {
    const bundler = newBundler();
    const waits = [];
    for (const p of prepared) {
      const answer = new BatchAnswer(p.count);
      budget.tryReserve(p.bytes, p.count);
      // as the route's passToBundler (routes/ingest.ts): datums as ranges of their sources
      for (let j = 0; j < p.count; j++) answer.expectDatum(p.indexes[j], p.sources[j], p.starts[j]);
      for (let j = 0; j < p.count; j++) {
        bundler.addRange(p.writers[j], p.sources[j], p.starts[j], p.ends[j], Date.now(), trace, answer, j);
      }
      // the answer's body once every event settled, as the route writes it
      waits.push(answer.settled().then(() => answer.toBody()));
    }
    bundler.drain();
    await Promise.all(waits);
  });

  if (process.env.BENCH_PUBLISH) await publishStage(prepared);
}

/** The Pub/Sub publisher alone: 64 bundles of ~100 events in flight, like the gateway under load. */
async function publishStage(prepared) {
  const { startEmulator } = require(path.join(root, 'packages/emulator/dist/index.js'));
  const { Defaults, resourceNames } = require(path.join(root, 'packages/common/dist/index.js'));
  const { encodeBundle } = require(path.join(root, 'packages/schemas/dist/index.js'));
  const { PubSubPublisher } = require(path.join(root, 'services/gateway/dist/publisher.js'));
  process.env.METADATA_SERVER_DETECTION = 'none';
  let emulator;
  if (!process.env.PUBSUB_EMULATOR_HOST) {
    emulator = await startEmulator({ heapMb: 1024 });
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  }
  try {
    const prefix = `cpu${Date.now().toString(36)}`;
    const { PubSub } = require('@google-cloud/pubsub');
    const admin = new PubSub({ projectId: Defaults.projectId });
    for (const t of schemas.eventTypes()) await admin.createTopic(resourceNames(prefix, t).topic);
    await admin.close();
    // One bundle per type per body: ~20 events each; group five bodies for ~100-event bundles
    // (BENCH_PUBLISH_BUNDLE=500: 25 bodies, the gateway's bundles at full load).
    const group = Math.max(1, Math.round(Number(process.env.BENCH_PUBLISH_BUNDLE || 100) / 20));
    const bundles = [];
    for (let b = 0; b + group <= prepared.length; b += group) {
      const byType = new Map();
      for (const p of prepared.slice(b, b + group)) {
        for (let j = 0; j < p.count; j++) {
          const w = p.writers[j];
          if (!byType.has(w)) byType.set(w, { datums: [], id: datumEventId(p.datum(j)) });
          byType.get(w).datums.push(p.datum(j));
        }
      }
      for (const [writer, { datums, id }] of byType) {
        const encoded = encodeBundle({
          writer,
          datums,
          firstEventId: id,
          minGatewayTs: Date.now(),
          codec: 'null',
          traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-00`,
        });
        bundles.push({ eventType: writer.eventType, encoded, count: datums.length });
      }
    }
    const publisher = new PubSubPublisher({
      projectId: Defaults.projectId,
      prefix,
      publishTimeout: 10_000,
      batchMaxMessages: Number(process.env.BENCH_BATCH_MESSAGES || Defaults.pubsubBatchMaxMessages),
      batchMaxDelay: Number(process.env.BENCH_BATCH_MS ?? Defaults.pubsubBatchMaxDelay),
    });
    const events = bundles.reduce((n, x) => n + x.count, 0);
    const inFlight = Number(process.env.BENCH_PUBLISH_IN_FLIGHT || 64);
    await stage(
      'publish',
      async () => {
        let next = 0;
        const worker = async () => {
          while (next < bundles.length) {
            const x = bundles[next++];
            await publisher.publish(x.eventType, x.encoded);
          }
        };
        await Promise.all(Array.from({ length: inFlight }, worker));
      },
      events,
    );
    await publisher.close();
  } finally {
    if (emulator) await emulator.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

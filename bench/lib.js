'use strict';
/** Small helpers shared by the benchmarks. */
const { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { randomUUID } = require('node:crypto');

/** Resident set size of a process in MB, from /proc (0 once it has exited). */
function rssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds (user + system) a process, or one of its threads when `tid` is given, has used so
 * far, from /proc (0 once it has exited).
 */
function cpuSeconds(pid, tid) {
  try {
    const stat = readFileSync(tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // the name may hold spaces
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** A realistic track_played record (newest schema) for event number `i`, stamped `gatewayTs`. */
function trackPlayed(i, gatewayTs) {
  return {
    meta: { event_id: randomUUID(), gateway_ts: gatewayTs, client_ts: gatewayTs - 250, gateway_id: 'bench-gw' },
    user_id: `user-${i % 100000}`,
    track_id: `spotify:track:${(i * 7919) % 1000000}`,
    ms_played: 180000 + (i % 1000),
    reason_start: 'TRACK_DONE',
    reason_end: 'TRACK_DONE',
    shuffle: i % 2 === 0,
    platform: 'ANDROID',
    country: 'SE',
    offline: false,
    context_uri: i % 3 ? null : `spotify:playlist:${i % 5000}`,
  };
}

/** Sums every series of a Prometheus metric in /metrics text. */
function sumMetric(text, name) {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
  return sum;
}

/** A process's /metrics text on a loopback port ('' while it does not answer). */
async function metricsOf(port) {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return '';
  }
}

/**
 * Publishes encoded bundles to a topic of the emulator (PUBSUB_EMULATOR_HOST), 2,000 in flight,
 * batched as the client library does; resolves with the seconds it took.
 */
async function publishBundles(projectId, topicName, bundles) {
  const { PubSub } = require('@google-cloud/pubsub');
  const pubsub = new PubSub({ projectId });
  const topic = pubsub.topic(topicName, {
    batching: { maxMessages: 100, maxMilliseconds: 10, maxBytes: 9 * 1024 * 1024 },
  });
  const started = process.hrtime.bigint();
  const inFlight = new Set();
  for (const b of bundles) {
    const p = topic.publishMessage(b).then(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 2000) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await pubsub.close();
  return seconds;
}

/** The middle value of `xs` (the upper one of an even count); undefined when empty. */
function median(xs) {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/**
 * A schema directory of the repository's 5 types and `n` more (page_viewed's schema under other
 * names, sorted before the real ones), for benchmarks at the original system's 250+ types; the
 * repository's own directory when n is 0. The caller removes a directory it was given.
 */
function schemasWithExtraTypes(n) {
  const schemas = path.join(__dirname, '..', 'schemas');
  if (n === 0) return schemas;
  const dir = mkdtempSync(path.join(tmpdir(), 'hourglass-bench-types-'));
  cpSync(schemas, dir, { recursive: true });
  const pageViewed = readFileSync(path.join(schemas, 'page_viewed/v1.avsc'), 'utf8');
  for (let i = 0; i < n; i++) {
    const name = `aa_${String(i).padStart(4, '0')}_viewed`;
    mkdirSync(path.join(dir, name));
    writeFileSync(path.join(dir, name, 'v1.avsc'), pageViewed.replace('"PageViewed"', `"Aa${i}Viewed"`));
  }
  return dir;
}

/**
 * The consumer's Stager in this process, with the default staging settings (`maxEvents` per file
 * unless given), a fresh watermark and no lease: what the in-process benchmarks stage with.
 */
function benchStager({ store, registry, clock, eventType, replicaId, incarnation, graceMs, maxEvents }) {
  const dist = (p) => require(path.join(__dirname, '..', p, 'dist/index.js'));
  const { Defaults, silentLogger } = dist('packages/common');
  const { Stager, ReplicaWatermark, createConsumerMetrics } = dist('services/consumer');
  // one object as both the type scope and the staging settings: it holds the fields of each
  const settings = {
    eventType,
    replicaId,
    incarnation,
    windowMs: 60_000,
    graceMs,
    maxEvents: maxEvents ?? Defaults.stageMaxEvents,
    maxBytes: Defaults.stageMaxBytes,
    maxAgeMs: Defaults.stageMaxAge,
    blockBytes: Defaults.avroBlockBytes,
    deflateLevel: Defaults.stageDeflateLevel,
    writeAttempts: 1,
    maxHoldMs: Defaults.maxAckExtension,
  };
  return new Stager(settings, settings, {
    store,
    registry,
    clock,
    logger: silentLogger,
    metrics: createConsumerMetrics(),
    watermark: new ReplicaWatermark({ idleAfterMs: 5000, maxPublishDelayMs: 1000 }, clock.now()),
    lastClosed: () => undefined,
    ensureLease: async () => undefined,
  });
}

/**
 * How much of its heap a benchmark's emulator touches at start (packages/emulator's preTouchMb):
 * on this VM its GC pauses otherwise grow to ~1 s as the heap grows into new pages, which a
 * benchmark would report as the pipeline's latency. BENCH_EMULATOR_PRETOUCH_MB overrides it (0: none).
 */
function emulatorPreTouchMb(fallback) {
  const set = process.env.BENCH_EMULATOR_PRETOUCH_MB;
  return set === undefined ? fallback : Number(set);
}

module.exports = {
  benchStager,
  emulatorPreTouchMb,
  cpuSeconds,
  median,
  metricsOf,
  publishBundles,
  rssMb,
  schemasWithExtraTypes,
  sumMetric,
  trackPlayed,
};

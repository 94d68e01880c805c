'use strict';
/**
 * Gateway benchmark (run after `npx tsc -b`): `node bench/gateway.js`.
 *
 * Over loopback, with a load generator in its own process sending 100-event JSON batches
 * (closed loop: BENCH_CONCURRENCY requests always in flight):
 *   1. ceiling  - a bare fastify route parsing the same bodies, publishing nothing (max rate);
 *   2. gateway  - the built gateway (dist/server.js) publishing to a Pub/Sub emulator (max rate);
 *                 1 and 2 alternate for BENCH_EFFICIENCY_ROUNDS rounds (default 3), both servers
 *                 up and one loaded at a time; the figures are the round of median efficiency's;
 *                 the gateway is warmed first by BENCH_GATEWAY_WARMUP_SECONDS (default 15) of load;
 *   3. half     - the gateway at half the rate it reached in 2 (open loop), for answer latency;
 *   4. emulator - the Pub/Sub client alone publishing the gateway's bundles at the rate of 3,
 *                 one to every topic at once as the gateway does: the latency ceiling the
 *                 emulator sets (a request spanning every type waits for the slowest).
 * Prints events/s, p50/p99 answer latency, gateway RSS, CPU per process (and the gateway's
 * request thread alone), the ratio to the ceiling, CPU per event of the gateway (every thread)
 * and of the bare route with their ratio (the efficiency, issue 18), and writes bench/results/gateway.json.
 *
 * Env: BENCH_SECONDS (default 15) per measurement, BENCH_CONCURRENCY (default 64; 1024 with
 * BENCH_EXTRA_TYPES, where light types' answers wait up to the 250 ms linger and 64 requests in
 * flight would bound the rate, not the gateway),
 * PUBSUB_EMULATOR_HOST to use a running emulator (default: start one), BENCH_CPU_PROF=1 to
 * write a --cpu-prof of the gateway to bench/results/, BENCH_GATEWAY_ENV='{"K":"V"}' for extra settings,
 * BENCH_GATEWAY_NODE_ARGS='--trace-gc ...' for extra node flags of the gateway,
 * BENCH_GATEWAY_OUTPUT=file to keep the gateway's stdout and stderr, BENCH_HALF_RATE=events/s to
 * measure answer latency at a fixed rate instead of half the measured maximum (for comparisons),
 * BENCH_EXTRA_TYPES=n for n more event types, the bodies' events spread over all of them (the
 * original system had 250+; the results then go to bench/results/gateway-many-types.json).
 */
const { spawn } = require('node:child_process');
const { cpuSeconds, rssMb, schemasWithExtraTypes, sumMetric } = require('./lib.js');
const { mkdirSync, writeFileSync, mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { createHash, randomBytes } = require('node:crypto');

const root = path.join(__dirname, '..');
const { startEmulator, freePort } = require(path.join(root, 'packages/emulator/dist/index.js'));
const { SchemaRegistry } = require(path.join(root, 'packages/schemas/dist/index.js'));
const { Defaults, GATEWAY_NODE_ARGS, resourceNames } = require(path.join(root, 'packages/common/dist/index.js'));

const seconds = Number(process.env.BENCH_SECONDS || 15);
const extraTypes = Number(process.env.BENCH_EXTRA_TYPES || 0);
const concurrency = Number(process.env.BENCH_CONCURRENCY || (extraTypes > 0 ? 1024 : 64));
const efficiencyRounds = Math.max(1, Number(process.env.BENCH_EFFICIENCY_ROUNDS || 3));
const gatewayWarmupSeconds = Number(process.env.BENCH_GATEWAY_WARMUP_SECONDS ?? 15);
const resultsDir = path.join(root, 'bench', 'results');
const prefix = `bench${randomBytes(3).toString('hex')}`;

function spawnNode(args, env) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, out, err })));
  return { child, exited, output: () => ({ out, err }) };
}

async function waitFor(url, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
}

/** Runs the load generator while sampling the server's RSS and CPU (whole process and request thread). */
async function load(label, serverPid, options, emulatorPid) {
  let maxRss = 0;
  const timer = setInterval(() => (maxRss = Math.max(maxRss, rssMb(serverPid))), 250);
  const gen = spawnNode([path.join(__dirname, 'gateway-loadgen.js'), JSON.stringify(options)]);
  // CPU over the measured span only (the generator prints a marker at its start and end): the
  // generator's start-up and warm-up, when the server idles or warms up, would dilute it.
  const sample = () => ({
    at: performance.now(),
    server: cpuSeconds(serverPid),
    main: cpuSeconds(serverPid, serverPid),
    emulator: emulatorPid ? cpuSeconds(emulatorPid) : 0,
  });
  const marks = {};
  gen.child.stdout.on('data', (chunk) => {
    const text = String(chunk);
    if (text.includes('measuring\n')) marks.from = sample();
    if (text.includes('measured\n')) marks.to = sample();
  });
  const result = await gen.exited;
  clearInterval(timer);
  if (result.code !== 0) throw new Error(`load generator failed: ${result.err}`);
  const stats = JSON.parse(result.out.trim().split('\n').pop());
  const { from, to } = marks;
  if (!from || !to) throw new Error('the load generator printed no measuring/measured markers');
  const wall = (to.at - from.at) / 1000;
  stats.cpuCores = {
    server: (to.server - from.server) / wall,
    serverRequestThread: (to.main - from.main) / wall,
    loadgen: stats.loadgenCpuCores,
    ...(emulatorPid ? { emulator: (to.emulator - from.emulator) / wall } : {}),
  };
  delete stats.loadgenCpuCores;
  stats.serverMaxRssMb = maxRss;
  const l = stats.latencyMs;
  const c = stats.cpuCores;
  console.log(
    `${label.padEnd(8)} ${Math.round(stats.acceptedPerSecond).toLocaleString('en').padStart(9)} events/s accepted` +
      ` (${Math.round(stats.eventsPerSecond).toLocaleString('en')} sent)  p50 ${l.p50.toFixed(1)} ms  p99 ${l.p99.toFixed(1)} ms` +
      `  RSS ${maxRss.toFixed(0)} MB  CPU cores: server ${c.server.toFixed(2)} (request thread ${c.serverRequestThread.toFixed(2)})` +
      `${c.emulator === undefined ? '' : ` emulator ${c.emulator.toFixed(2)}`} loadgen ${c.loadgen.toFixed(2)}` +
      `  ${JSON.stringify(stats.statuses)}${stats.errors ? ` errors ${stats.errors}` : ''}${stats.skipped ? ` skipped ${stats.skipped}` : ''}`,
  );
  return stats;
}

/**
 * CPU per event, the figure a shared machine cannot distort much: CPU seconds of every thread of
 * the process over the measured span, per event answered (accepted, for the gateway).
 */
function cpuPerEventOf(bare, gw) {
  const ceilingUs = (bare.cpuCores.server / bare.eventsPerSecond) * 1e6;
  const gatewayUs = (gw.cpuCores.server / gw.acceptedPerSecond) * 1e6;
  const gatewayRequestThreadUs = (gw.cpuCores.serverRequestThread / gw.acceptedPerSecond) * 1e6;
  return { ceilingUs, gatewayUs, gatewayRequestThreadUs, efficiency: ceilingUs / gatewayUs };
}

/** How much one metric (summed over series) grew between two scrapes. */
function metricDelta(before, after, name) {
  return sumMetric(after, name) - sumMetric(before, name);
}

/** Cumulative histogram buckets (le -> count) summed over series. */
function buckets(text, name) {
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{.*le="([^"]+)"\\} (\\S+)`).exec(line);
    if (m) out.set(m[1], (out.get(m[1]) || 0) + Number(m[2]));
  }
  return out;
}

/** Upper bucket bound holding quantile q of the observations between two snapshots. */
function quantileBound(before, after, name, q) {
  const b0 = buckets(before, name);
  const b1 = buckets(after, name);
  const total = (b1.get('+Inf') || 0) - (b0.get('+Inf') || 0);
  for (const [le, n] of b1) if (total > 0 && n - (b0.get(le) || 0) >= q * total) return le;
  return 'n/a';
}

async function main() {
  process.env.METADATA_SERVER_DETECTION = 'none';
  mkdirSync(resultsDir, { recursive: true });
  const schemasDir = schemasWithExtraTypes(extraTypes);
  const registry = SchemaRegistry.load(schemasDir);
  const types = registry.eventTypes();
  const load0 = { durationMs: seconds * 1000, warmupMs: 2000, concurrency, eventsPerRequest: 100, schemasDir };
  console.log(
    `gateway benchmark: ${seconds} s per measurement, ${concurrency} requests in flight, 100 events per request`,
  );

  // The emulator first, warmed up (its JIT needs a few seconds of traffic) before anything is measured.
  let emulator;
  if (!process.env.PUBSUB_EMULATOR_HOST) {
    emulator = await startEmulator({ heapMb: 1024, logFile: path.join(tmpdir(), 'hourglass-bench-emulator.log') });
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  }
  const emulatorPid = emulator ? emulator.pid : Number(process.env.BENCH_EMULATOR_PID || 0) || undefined;
  {
    const { PubSub } = require('@google-cloud/pubsub');
    const pubsub = new PubSub({ projectId: Defaults.projectId });
    // Topics only, no subscription: the emulator then drops messages instead of keeping them in memory.
    for (const t of types) await pubsub.createTopic(resourceNames(prefix, t).topic);
    await pubsub.close();
    const warm = spawnNode([
      path.join(__dirname, 'gateway-emulator-probe.js'),
      JSON.stringify({ prefix, types, rate: 2000, bytes: 10_000, durationMs: 1000, warmupMs: 5000 }),
    ]);
    if ((await warm.exited).code !== 0) throw new Error('emulator warm-up failed');
  }

  // 1-2. The bare route and the gateway, alternately (both servers up, one loaded at a time).
  const ceilingPort = await freePort();
  const ceiling = spawnNode([path.join(__dirname, 'gateway-ceiling.js'), String(ceilingPort)]);
  await waitFor(`http://127.0.0.1:${ceilingPort}/healthz`);
  const ceilingUrl = `http://127.0.0.1:${ceilingPort}`;

  let gateway;
  try {
    const token = randomBytes(24).toString('base64url');
    const dir = mkdtempSync(path.join(tmpdir(), 'hourglass-bench-'));
    const keysFile = path.join(dir, 'keys.json');
    const sha256 = createHash('sha256').update(token).digest('hex');
    writeFileSync(keysFile, JSON.stringify([{ name: 'bench', sha256, types: ['*'], ratePerSecond: 1e9 }]));
    const port = await freePort();
    // The gateway's own node flags first, as every start of it has them; later flags win.
    const args = [...GATEWAY_NODE_ARGS];
    if (process.env.BENCH_CPU_PROF) args.push('--cpu-prof', `--cpu-prof-dir=${resultsDir}`);
    if (process.env.BENCH_GATEWAY_NODE_ARGS) args.push(...process.env.BENCH_GATEWAY_NODE_ARGS.split(' '));
    args.push(path.join(root, 'services/gateway/dist/server.js'));
    gateway = spawnNode(args, {
      HOURGLASS_GATEWAY_HOST: '127.0.0.1',
      HOURGLASS_GATEWAY_PORT: String(port),
      HOURGLASS_PREFIX: prefix,
      HOURGLASS_API_KEYS_FILE: keysFile,
      HOURGLASS_SCHEMAS_DIR: schemasDir,
      HOURGLASS_LOG_LEVEL: 'warn',
      ...JSON.parse(process.env.BENCH_GATEWAY_ENV || '{}'),
    });
    const url = `http://127.0.0.1:${port}`;
    await waitFor(`${url}/readyz`);
    const metrics = async () => (await fetch(`${url}/metrics`)).text();

    // Each round measures the bare route, then the gateway, back to back: the efficiency is the
    // median round's, so a slow spell of this shared machine moves one round, not the figure.
    // A gateway serves for hours: its JITs (JavaScript and the WebAssembly reader's tiers) and the
    // emulator's are warmed first with unmeasured load; the first of three back-to-back rounds
    // without it ran 5-15% more CPU per event than the third.
    const warmUp =
      gatewayWarmupSeconds > 0
        ? await load('warm-up', gateway.child.pid, { ...load0, url, token, durationMs: gatewayWarmupSeconds * 1000 })
        : undefined;
    const rounds = [];
    for (let r = 1; r <= efficiencyRounds; r++) {
      const bare = await load(`ceiling${r}`, ceiling.child.pid, { ...load0, url: ceilingUrl });
      const m0 = await metrics();
      const gw = await load(`gateway${r}`, gateway.child.pid, { ...load0, url, token }, emulatorPid);
      const m1 = await metrics();
      gw.bundleAverageEvents =
        metricDelta(m0, m1, 'hourglass_gateway_bundle_events_sum') /
        metricDelta(m0, m1, 'hourglass_gateway_bundle_events_count');
      const round = { ceiling: bare, gateway: gw, ...cpuPerEventOf(bare, gw) };
      console.log(
        `  round ${r}: CPU per event gateway ${round.gatewayUs.toFixed(2)} µs, bare route ${round.ceilingUs.toFixed(2)} µs;` +
          ` efficiency ${round.efficiency.toFixed(2)}; bundles of ${gw.bundleAverageEvents.toFixed(0)} events`,
      );
      rounds.push(round);
    }
    ceiling.child.kill('SIGTERM');
    await ceiling.exited;
    const median = [...rounds].sort((a, b) => a.efficiency - b.efficiency)[(rounds.length - 1) >> 1];
    const ceilingStats = median.ceiling;
    const full = median.gateway;
    const halfRate = Number(process.env.BENCH_HALF_RATE) || Math.max(1000, Math.round(full.acceptedPerSecond / 2));
    const before = await metrics();
    const half = await load('half', gateway.child.pid, { ...load0, url, token, rate: halfRate }, emulatorPid);
    const after = await metrics();
    const bundles = metricDelta(before, after, 'hourglass_gateway_bundle_events_count');
    const bundleEvents = metricDelta(before, after, 'hourglass_gateway_bundle_events_sum');
    const bundleBytes = metricDelta(before, after, 'hourglass_gateway_bundle_bytes_sum');
    const halfWall = half.seconds + load0.warmupMs / 1000;
    half.bundles = {
      perSecond: bundles / halfWall,
      averageEvents: bundleEvents / bundles,
      averageBytes: bundleBytes / bundles,
      publishLatencyP50BoundMs: quantileBound(before, after, 'hourglass_gateway_publish_latency', 0.5),
      publishLatencyP99BoundMs: quantileBound(before, after, 'hourglass_gateway_publish_latency', 0.99),
    };
    console.log(
      `         half load: ${half.bundles.perSecond.toFixed(0)} bundles/s of ${half.bundles.averageEvents.toFixed(1)} events ` +
        `(${(half.bundles.averageBytes / 1024).toFixed(1)} KiB); publish latency p50 <= ${half.bundles.publishLatencyP50BoundMs} ms, ` +
        `p99 <= ${half.bundles.publishLatencyP99BoundMs} ms`,
    );
    gateway.child.kill('SIGTERM');
    const exit = await gateway.exited;
    if (process.env.BENCH_GATEWAY_OUTPUT) writeFileSync(process.env.BENCH_GATEWAY_OUTPUT, exit.out + exit.err);

    const probeRun = spawnNode([
      path.join(__dirname, 'gateway-emulator-probe.js'),
      JSON.stringify({
        prefix,
        types,
        rate: half.bundles.perSecond,
        bytes: half.bundles.averageBytes,
        durationMs: seconds * 1000,
        warmupMs: 2000,
      }),
    ]);
    const probeResult = await probeRun.exited;
    if (probeResult.code !== 0) throw new Error(`emulator probe failed: ${probeResult.err}`);
    const probe = JSON.parse(probeResult.out.trim().split('\n').pop());
    console.log(
      `emulator ${probe.rate.toFixed(0)} msgs/s of ${(probe.bytes / 1024).toFixed(1)} KiB straight from the Pub/Sub client: ` +
        `publish p50 ${probe.p50.toFixed(1)} ms  p99 ${probe.p99.toFixed(1)} ms; one to each of the ${probe.group.size} topics at once, ` +
        `the slowest acked: p50 ${probe.group.p50.toFixed(1)} ms  p99 ${probe.group.p99.toFixed(1)} ms (the latency ceiling)`,
    );

    const ratio = full.acceptedPerSecond / ceilingStats.eventsPerSecond;
    const { ceilingUs, gatewayUs, gatewayRequestThreadUs, efficiency } = median;
    const cpuPerEvent = {
      ceilingUs,
      gatewayUs,
      gatewayRequestThreadUs,
      efficiency,
      rounds: rounds.map((r) => ({
        ceilingUs: r.ceilingUs,
        gatewayUs: r.gatewayUs,
        efficiency: r.efficiency,
        gatewayAcceptedPerSecond: r.gateway.acceptedPerSecond,
        ceilingEventsPerSecond: r.ceiling.eventsPerSecond,
      })),
    };
    console.log(
      `CPU per event (median of ${rounds.length} rounds): gateway ${gatewayUs.toFixed(2)} µs (request thread ${gatewayRequestThreadUs.toFixed(2)}), ` +
        `bare route ${ceilingUs.toFixed(2)} µs; efficiency (bare / gateway) ${efficiency.toFixed(2)}` +
        ` (rounds: ${rounds.map((r) => r.efficiency.toFixed(2)).join(', ')})`,
    );
    // the most the gateway held in any of its loads, not only the reported round's
    const rss = Math.max(
      warmUp?.serverMaxRssMb ?? 0,
      ...rounds.map((r) => r.gateway.serverMaxRssMb),
      half.serverMaxRssMb,
    );
    const result = {
      machine: { cpus: require('node:os').cpus().length, node: process.version, loadavg: require('node:os').loadavg() },
      settings: {
        seconds,
        concurrency,
        eventsPerRequest: 100,
        eventTypes: types.length,
        prefix,
        gatewayEnv: JSON.parse(process.env.BENCH_GATEWAY_ENV || '{}'),
      },
      ceiling: ceilingStats,
      gateway: full,
      half: { targetEventsPerSecond: halfRate, ...half },
      emulatorLatencyCeiling: probe,
      gatewayMaxRssMb: rss,
      ratioToCeiling: ratio,
      cpuPerEvent,
      gatewayExit: { code: exit.code, signal: exit.signal },
      targets: {
        acceptedPerSecond: {
          target: 150_000,
          measured: full.acceptedPerSecond,
          met: full.acceptedPerSecond >= 150_000,
        },
        halfLoadP99Ms: { target: 50, measured: half.latencyMs.p99, met: half.latencyMs.p99 < 50 },
        rssMb: { target: 300, measured: rss, met: rss < 300 },
        ratio: { target: 0.5, measured: ratio, met: ratio >= 0.5 },
        cpuEfficiency: { target: 0.7, measured: cpuPerEvent.efficiency, met: cpuPerEvent.efficiency >= 0.7 },
      },
    };
    const resultFile = extraTypes === 0 ? 'gateway.json' : 'gateway-many-types.json';
    writeFileSync(path.join(resultsDir, resultFile), JSON.stringify(result, null, 2) + '\n');
    console.log(
      `ratio to ceiling ${ratio.toFixed(2)}; gateway exit code ${exit.code}; wrote bench/results/${resultFile}`,
    );
    for (const [name, t] of Object.entries(result.targets)) {
      console.log(
        `  ${t.met ? 'met ' : 'MISS'} ${name}: ${t.measured.toFixed(name === 'ratio' || name === 'cpuEfficiency' ? 2 : 1)} (target ${t.target})`,
      );
    }
  } finally {
    if (ceiling.child.exitCode === null) ceiling.child.kill('SIGKILL');
    if (gateway && gateway.child.exitCode === null) gateway.child.kill('SIGKILL');
    if (emulator) await emulator.stop();
    if (extraTypes > 0) rmSync(schemasDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

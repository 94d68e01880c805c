'use strict';
/**
 * CPU cost of tracing in the gateway: `node bench/tracing-cpu.js` after `npx tsc -b` (also part
 * of `make bench`). The whole in-process request path (fastify inject, the JSON route, validate,
 * bundler, answer) with a publisher that acks at once, run with tracing off and with tracing on
 * at HOURGLASS_TRACE_SAMPLE_RATIO's default 1%, exporting over OTLP/HTTP to a sink in the same
 * process (so the export's cost counts too). Each side is a process of its own, tracing set once
 * at its start as in a service (switching tracing on and off inside one process changed the JIT's
 * code for both sides: pairs measured that way showed +2 to +18% even at ratio 0); the processes
 * alternate off, on, on, off, ... so the machine's drift hits both alike. Two body shapes:
 * single-event requests (the worst case: spans per request, few events to share them) and
 * 100-event batches (the load generator's).
 *
 * Env: BENCH_PAIRS (default 8) pairs of processes, each measuring BENCH_ROUNDS (default 4) passes
 * of 400 requests per shape (five times as many for single-event requests) after a warm-up;
 * BENCH_TRACE_RATIO (default 0.01). Writes bench/results/tracing.json: per shape the median of the
 * pairs' CPU per request, each way, and of the pairs' overheads.
 */
const http = require('node:http');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { writeFileSync } = require('node:fs');
const { randomUUID } = require('node:crypto');
const root = path.join(__dirname, '..');
const common = require(path.join(root, 'packages/common/dist/index.js'));
const { SchemaRegistry } = require(path.join(root, 'packages/schemas/dist/index.js'));
const { EventGenerator } = require(path.join(root, 'packages/client/dist/index.js'));
const { buildGateway, defaultGatewayConfig } = require(path.join(root, 'services/gateway/dist/index.js'));
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const spans = require(path.join(root, 'services/gateway/dist/spans.js'));

const pairs = Number(process.env.BENCH_PAIRS || 8);
const rounds = Number(process.env.BENCH_ROUNDS || 4);
const ratio = Number(process.env.BENCH_TRACE_RATIO || common.Defaults.traceSampleRatio);
const REQUESTS = 400;
const CONCURRENT = 50;
const registry = SchemaRegistry.load(path.join(root, 'schemas'));
const generator = new EventGenerator(registry, { seed: 7 });

function bodies(eventsPerRequest) {
  return Array.from({ length: REQUESTS }, () =>
    JSON.stringify({
      events: generator.batch(eventsPerRequest).map((e) => ({ ...e, id: randomUUID(), client_ts: Date.now() })),
    }),
  );
}

/** A stand-in OTLP collector: counts the spans' export requests and bytes. */
function startSink() {
  const received = { requests: 0, bytes: 0 };
  const server = http.createServer((req, res) => {
    req.on('data', (c) => (received.bytes += c.length));
    req.on('end', () => {
      received.requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, received, port: server.address().port })),
  );
}

async function sendAll(gateway, texts) {
  for (let i = 0; i < texts.length; i += CONCURRENT) {
    const answers = await Promise.all(
      texts.slice(i, i + CONCURRENT).map((payload) =>
        gateway.app.inject({
          method: 'POST',
          url: '/v1/events',
          headers: { 'content-type': 'application/json' },
          payload,
        }),
      ),
    );
    for (const a of answers) if (a.statusCode !== 200) throw new Error(`answer ${a.statusCode}: ${a.body}`);
  }
}

/** CPU µs per request of `passes` passes over `texts` in this process (tracing as set at its start). */
async function measure(gateway, texts, passes) {
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < passes; i++) await sendAll(gateway, texts);
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / (passes * texts.length);
}

/**
 * The request's span path alone (spans.ts: start, validate and publish spans when sampled, end),
 * µs per request, tracing on: repeatable where the whole path's pairs are noisy.
 */
async function spanPathUs(url) {
  const tracing = common.installTracing({
    serviceName: 'bench',
    exporter: new OTLPTraceExporter({ url }),
    sampleRatio: ratio,
  });
  const req = { method: 'POST', headers: {} };
  const reply = { statusCode: 200 };
  const run = (n) => {
    for (let i = 0; i < n; i++) {
      const request = spans.startRequestSpan(req, 'POST /v1/events', 1);
      spans.inValidateSpan(request, () => ({ count: 1 }));
      const publish = spans.startPublishSpan(request, 'page_viewed');
      if (publish) spans.endPublishSpan(publish, { events: 1, bytes: 100 }, { messageId: '1' });
      spans.endRequestSpan(request, reply);
    }
  };
  run(20_000);
  const n = 300_000;
  const cpu0 = process.cpuUsage();
  run(n);
  const cpu = process.cpuUsage(cpu0);
  await tracing.shutdown();
  return (cpu.user + cpu.system) / n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One side (BENCH_TRACING_SIDE=off|on): CPU µs per request of each shape, as JSON on stdout. */
async function side(traced) {
  const sink = await startSink();
  const url = `http://127.0.0.1:${sink.port}/v1/traces`;
  const tracing = traced
    ? common.installTracing({ serviceName: 'bench', exporter: new OTLPTraceExporter({ url }), sampleRatio: ratio })
    : undefined;
  const publisher = {
    publish: () => Promise.resolve('1'),
    topicExists: () => Promise.resolve(true),
    topicName: (t) => t,
    close: () => Promise.resolve(),
  };
  const gateway = await buildGateway({
    config: defaultGatewayConfig({ auth: 'disabled', gatewayId: 'bench-gw', rateLimitPerKey: 1e9 }),
    registry,
    logger: common.silentLogger,
    publisher,
  });
  // single-event requests cost less each: more passes for a comparable measure
  const shapes = { single: [bodies(1), rounds * 5], batch100: [bodies(100), rounds] };
  const out = { sink: sink.received };
  for (const [shape, [texts, passes]] of Object.entries(shapes)) {
    await measure(gateway, texts, 2); // warm-up
    out[shape] = await measure(gateway, texts, passes);
  }
  const cpu0 = process.cpuUsage();
  await tracing?.shutdown(); // the export of what was sampled counts, spread over the requests
  const flush = process.cpuUsage(cpu0);
  out.flushUs = flush.user + flush.system;
  await gateway.close();
  sink.server.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function runSide(traced) {
  const child = spawnSync(process.execPath, [__filename], {
    env: { ...process.env, BENCH_TRACING_SIDE: traced ? 'on' : 'off' },
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (child.status !== 0) throw new Error(`tracing side ${traced ? 'on' : 'off'} failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop());
}

async function main() {
  const out = { ratio, pairs, rounds, shapes: {} };
  const runs = { off: [], on: [] };
  for (let p = 0; p < pairs; p++) {
    const order = p % 2 === 0 ? [false, true] : [true, false];
    for (const traced of order) runs[traced ? 'on' : 'off'].push(runSide(traced));
  }
  for (const shape of ['single', 'batch100']) {
    const off = runs.off.map((r) => r[shape]);
    const on = runs.on.map((r) => r[shape]);
    const overheads = off.map((o, i) => (on[i] - o) / o);
    const row = {
      eventsPerRequest: shape === 'single' ? 1 : 100,
      offUsPerRequest: median(off),
      onUsPerRequest: median(on),
      overheadMedian: median(overheads),
      overheadPairs: overheads,
    };
    out.shapes[shape] = row;
    console.log(
      `${shape.padEnd(9)} off ${row.offUsPerRequest.toFixed(1).padStart(7)} µs CPU/request  ` +
        `on@${ratio * 100}% ${row.onUsPerRequest.toFixed(1).padStart(7)}  overhead median ` +
        `${(row.overheadMedian * 100).toFixed(1)}% (pairs: ${overheads.map((x) => (x * 100).toFixed(1)).join(', ')})`,
    );
  }
  out.flushUsPerProcess = median(runs.on.map((r) => r.flushUs));
  const sink = await startSink();
  out.spanPathUsPerRequest = await spanPathUs(`http://127.0.0.1:${sink.port}/v1/traces`);
  sink.server.close();
  console.log(`span path alone (on@${ratio * 100}%): ${out.spanPathUsPerRequest.toFixed(2)} µs CPU/request`);
  // The attributed cost: the span path plus the export, spread over every request a traced process
  // served (warm-ups too), against the untraced request's CPU. Repeatable where whole-process pairs
  // on a shared host spread by tens of percent either way.
  const requestsPerProcess = REQUESTS * (2 + rounds * 5 + 2 + rounds);
  out.exportUsPerRequest = out.flushUsPerProcess / requestsPerProcess;
  const attributedUs = out.spanPathUsPerRequest + out.exportUsPerRequest;
  out.attributed = {};
  for (const [shape, row] of Object.entries(out.shapes)) {
    out.attributed[shape] = { usPerRequest: attributedUs, share: attributedUs / row.offUsPerRequest };
    console.log(
      `attributed cost ${shape.padEnd(9)} ${attributedUs.toFixed(2)} µs/request = ` +
        `${((attributedUs / row.offUsPerRequest) * 100).toFixed(2)}% of the untraced request's CPU`,
    );
  }
  out.sink = runs.on[runs.on.length - 1].sink;
  console.log(`OTLP sink of the last traced process: ${out.sink.requests} export requests, ${out.sink.bytes} bytes`);
  writeFileSync(path.join(__dirname, 'results', 'tracing.json'), JSON.stringify(out, null, 2) + '\n');
}

(process.env.BENCH_TRACING_SIDE ? side(process.env.BENCH_TRACING_SIDE === 'on') : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});

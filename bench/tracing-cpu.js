'use strict';
/**
 * CPU cost of tracing in the gateway, paired in one process: `node bench/tracing-cpu.js` after
 * `npx tsc -b` (also part of `make bench`). The whole in-process request path (fastify inject,
 * the JSON route, validate, bundler, answer) with a publisher that acks at once, run with
 * tracing off and with tracing on at HOURGLASS_TRACE_SAMPLE_RATIO's default 1%, exporting over
 * OTLP/HTTP to a sink in this process (so the export's cost counts too). Off and on alternate,
 * pair after pair, and the order flips each pair: the machine's drift hits both alike. Two body
 * shapes: single-event requests (the worst case: spans per request, few events to share them)
 * and 100-event batches (the load generator's).
 *
 * Env: BENCH_PAIRS (default 8), BENCH_ROUNDS (default 4) passes over 400 requests per measure
 * (five times as many for single-event requests),
 * BENCH_TRACE_RATIO (default 0.01). Writes bench/results/tracing.json.
 */
const http = require('node:http');
const path = require('node:path');
const { writeFileSync } = require('node:fs');
const { randomUUID } = require('node:crypto');
const root = path.join(__dirname, '..');
const common = require(path.join(root, 'packages/common/dist/index.js'));
const { SchemaRegistry } = require(path.join(root, 'packages/schemas/dist/index.js'));
const { EventGenerator } = require(path.join(root, 'packages/client/dist/index.js'));
const { buildGateway, defaultGatewayConfig } = require(path.join(root, 'services/gateway/dist/index.js'));
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');

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

/** CPU µs per request of `rounds` passes over `texts`. */
async function measure(gateway, texts, rounds) {
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < rounds; r++) await sendAll(gateway, texts);
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / (rounds * texts.length);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const sink = await startSink();
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
  const url = `http://127.0.0.1:${sink.port}/v1/traces`;
  // single-event requests cost less each: more passes for a comparable measure
  const shapes = { single: [bodies(1), rounds * 5], batch100: [bodies(100), rounds] };
  const out = { ratio, pairs, rounds, shapes: {} };
  for (const [shape, [texts, passes]] of Object.entries(shapes)) {
    const eventsPerRequest = JSON.parse(texts[0]).events.length;
    await measure(gateway, texts, passes); // warm-up, tracing off
    const off = [];
    const on = [];
    for (let p = 0; p < pairs; p++) {
      for (const traced of p % 2 === 0 ? [false, true] : [true, false]) {
        const tracing = traced
          ? common.installTracing({
              serviceName: 'bench',
              exporter: new OTLPTraceExporter({ url }),
              sampleRatio: ratio,
            })
          : undefined;
        (traced ? on : off).push(await measure(gateway, texts, passes));
        await tracing?.shutdown();
      }
    }
    const overheads = off.map((o, i) => (on[i] - o) / o);
    const row = {
      eventsPerRequest,
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
  out.sink = sink.received;
  console.log(`OTLP sink received ${sink.received.requests} export requests, ${sink.received.bytes} bytes`);
  await gateway.close();
  sink.server.close();
  writeFileSync(path.join(__dirname, 'results', 'tracing.json'), JSON.stringify(out, null, 2) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

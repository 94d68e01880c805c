'use strict';
/**
 * Latency ceiling for bench/gateway.js: publishes messages of the gateway's average bundle
 * size at the gateway's bundle rate, round-robin over the topics, straight from the
 * Pub/Sub client (same batching settings as the gateway), and prints the publish latency.
 * Whatever the gateway adds to its answer latency shows as the gap to this.
 * Usage: node bench/gateway-emulator-probe.js '{"prefix","types":[...],"rate","bytes","durationMs","warmupMs"}'
 */
const path = require('node:path');
const root = path.join(__dirname, '..');
const { Defaults, resourceNames } = require(path.join(root, 'packages/common/dist/index.js'));
const { PubSub } = require('@google-cloud/pubsub');

const opts = JSON.parse(process.argv[2]);

(async () => {
  const pubsub = new PubSub({ projectId: Defaults.projectId });
  const topics = opts.types.map((t) =>
    pubsub.topic(resourceNames(opts.prefix, t).topic, {
      batching: { maxMessages: Defaults.pubsubBatchMaxMessages, maxMilliseconds: Defaults.pubsubBatchMaxDelay },
    }),
  );
  const data = Buffer.alloc(Math.max(1, Math.round(opts.bytes)), 7);
  const intervalMs = 1000 / opts.rate;
  const start = performance.now();
  const measureFrom = start + opts.warmupMs;
  const end = measureFrom + opts.durationMs;
  const latencies = [];
  const pending = new Set();
  let due = start;
  let i = 0;
  while (due < end) {
    const now = performance.now();
    if (now < due) {
      await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
      continue;
    }
    const scheduled = due;
    const p = topics[i++ % topics.length].publishMessage({ data }).then(() => {
      if (scheduled >= measureFrom) latencies.push(performance.now() - scheduled);
      pending.delete(p);
    });
    pending.add(p);
    due += intervalMs;
  }
  await Promise.all(pending);
  await pubsub.close();
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] || 0;
  process.stdout.write(
    JSON.stringify({
      messages: latencies.length,
      rate: opts.rate,
      bytes: data.length,
      p50: q(0.5),
      p99: q(0.99),
      max: q(1),
    }) + '\n',
  );
})();

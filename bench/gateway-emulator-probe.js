'use strict';
/**
 * Latency ceiling for bench/gateway.js: publishes messages of the gateway's average bundle
 * size at the gateway's bundle rate straight from the Pub/Sub client (same batching settings
 * as the gateway), and prints the publish latency. As the gateway does, it publishes one
 * message to every topic at the same moment (a bundle per type opens with the first request
 * and flushes after the linger): a request that holds events of every type is answered
 * when the slowest of those publishes is acked, so the group's latency (its slowest
 * member) is the ceiling for the answer, and the single message's for one bundle.
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
  const start = performance.now();
  const measureFrom = start + opts.warmupMs;
  const end = measureFrom + opts.durationMs;
  const latencies = [];
  const groupLatencies = [];
  const pending = new Set();
  // One message per topic at each tick: `rate` messages per second in all.
  const groupIntervalMs = (1000 * topics.length) / opts.rate;
  let due = start;
  while (due < end) {
    const now = performance.now();
    if (now < due) {
      await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
      continue;
    }
    const scheduled = due;
    const measured = scheduled >= measureFrom;
    const group = Promise.all(
      topics.map((topic) =>
        topic.publishMessage({ data }).then(() => {
          if (measured) latencies.push(performance.now() - scheduled);
        }),
      ),
    ).then(() => {
      if (measured) groupLatencies.push(performance.now() - scheduled);
      pending.delete(group);
    });
    pending.add(group);
    due += groupIntervalMs;
  }
  await Promise.all(pending);
  await pubsub.close();
  const quantiles = (values) => {
    values.sort((a, b) => a - b);
    const q = (p) => values[Math.min(values.length - 1, Math.floor(p * values.length))] || 0;
    return { p50: q(0.5), p99: q(0.99), max: q(1) };
  };
  process.stdout.write(
    JSON.stringify({
      messages: latencies.length,
      rate: opts.rate,
      bytes: data.length,
      ...quantiles(latencies),
      group: { size: topics.length, groups: groupLatencies.length, ...quantiles(groupLatencies) },
    }) + '\n',
  );
})();

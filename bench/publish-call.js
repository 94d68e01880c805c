'use strict';
/**
 * CPU of one Publish call against the Pub/Sub emulator, three ways, one after another in one run:
 *   gapic - v1.PublisherClient.publish, as services/gateway/src/publisher.ts calls it;
 *   stub  - the same client's grpc stub, gax's retry and timeout wrappers skipped;
 *   http2 - a gRPC request built by hand over node:http2 (framing and protobuf written here),
 *           the floor for any client in Node.
 * Each round publishes one 600-byte message to each of 255 topics at once, as the gateway's
 * bundles of 255 light types go out. Prints CPU µs per call of this process (the emulator's is
 * not counted) and wall µs per call, the median of three passes in turn. Run after `npx tsc -b`:
 * node bench/publish-call.js [rounds per pass]
 */
const http2 = require('node:http2');
const path = require('node:path');
const root = path.join(__dirname, '..');
const { startEmulator } = require(path.join(root, 'packages/emulator/dist/index.js'));
const { PubSub, v1 } = require('@google-cloud/pubsub');
const { median } = require('./lib.js');

const TOPICS = 255;
const ROUNDS = Number(process.argv[2] || 20);
const WARMUP_ROUNDS = 10;
const PASSES = 3;
const data = Buffer.alloc(600, 7);
const attributes = { event_type: 'aa_viewed', count: '3' };

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Protobuf of PublishRequest { topic = 1; messages = 2 { data = 1; attributes = 2 (map) } }, gRPC-framed. */
function grpcFrame(topic) {
  const varint = (n) => {
    const out = [];
    while (n > 127) {
      out.push((n & 127) | 128);
      n >>>= 7;
    }
    out.push(n);
    return Buffer.from(out);
  };
  const field = (tag, bytes) => Buffer.concat([varint(tag), varint(bytes.length), bytes]);
  const entries = Object.entries(attributes).map(([k, v]) =>
    field(0x12, Buffer.concat([field(0x0a, Buffer.from(k)), field(0x12, Buffer.from(v))])),
  );
  const body = Buffer.concat([
    field(0x0a, Buffer.from(topic)),
    field(0x12, Buffer.concat([field(0x0a, data), ...entries])),
  ]);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

/** CPU and wall µs per call of `rounds` rounds of `publish` over every topic. */
async function measure(topics, publish, rounds) {
  const cpu0 = cpuMs();
  const wall0 = performance.now();
  for (let r = 0; r < rounds; r++) await Promise.all(topics.map(publish));
  const calls = rounds * topics.length;
  return { calls, cpuUs: ((cpuMs() - cpu0) * 1000) / calls, wallUs: ((performance.now() - wall0) * 1000) / calls };
}

/**
 * The ways take turns, PASSES times, each after its own warm-up: measured one after another, the
 * first paid the process's warm-up (run first, the generated client cost 1.45 times its stub; run
 * second, the same).
 */
async function compare(topics, ways) {
  for (const [, publish] of ways) for (let r = 0; r < WARMUP_ROUNDS; r++) await Promise.all(topics.map(publish));
  const results = new Map(ways.map(([name]) => [name, []]));
  for (let pass = 0; pass < PASSES; pass++) {
    for (const [name, publish] of ways) results.get(name).push(await measure(topics, publish, ROUNDS));
  }
  for (const [name, runs] of results) {
    const cpu = runs.map((r) => r.cpuUs);
    console.log(
      `${name.padEnd(6)} ${runs.length} × ${runs[0].calls} calls: ${median(cpu).toFixed(1)} µs CPU per call ` +
        `(passes ${cpu.map((c) => c.toFixed(1)).join(', ')}), ${median(runs.map((r) => r.wallUs)).toFixed(1)} µs wall`,
    );
  }
}

(async () => {
  const emulator = await startEmulator({});
  process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  try {
    const pubsub = new PubSub({ projectId: 'bench-publish-call' });
    const topics = [];
    for (let i = 0; i < TOPICS; i++) topics.push((await pubsub.createTopic(`call-${i}`))[0].name);
    const { port, ...rest } = await pubsub.getClientConfig();
    const client = new v1.PublisherClient({ ...rest, port: Number(port) });
    await client.initialize();
    const stub = await client.publisherStub;
    const request = (topic) => ({ topic, messages: [{ data, attributes }] });

    const session = http2.connect(`http://${emulator.host}`);
    await compare(topics, [
      ['gapic', (topic) => client.publish(request(topic), { isBundling: false, timeout: 5000 })],
      [
        'stub',
        (topic) =>
          new Promise((resolve, reject) =>
            stub.publish(request(topic), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r))),
          ),
      ],
      [
        'http2',
        (topic) =>
          new Promise((resolve, reject) => {
            const stream = session.request({
              ':method': 'POST',
              ':path': '/google.pubsub.v1.Publisher/Publish',
              'content-type': 'application/grpc',
              te: 'trailers',
            });
            stream.on('trailers', (t) => t['grpc-status'] !== '0' && reject(new Error(String(t['grpc-message']))));
            stream.on('data', () => {});
            stream.on('end', resolve);
            stream.on('error', reject);
            stream.end(grpcFrame(topic));
          }),
      ],
    ]);
    session.close();
    await client.close();
    await pubsub.close();
  } finally {
    await emulator.stop();
  }
})();

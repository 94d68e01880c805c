'use strict';
/**
 * Raw ceilings of this machine, measured in the same run as the pipeline figures:
 * avsc encode and decode rates of a realistic event, sequential disk write with fsync,
 * and the emulator's publish rate for one-event messages and for 100-event bundles.
 * Usage: node bench/ceilings.js [--json out.json]   (needs PUBSUB_EMULATOR_HOST or starts its own)
 */
const { mkdtempSync, openSync, writeSync, fsyncSync, closeSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { randomUUID } = require('node:crypto');

const { trackPlayed } = require('./lib.js');

/** Records of the same shape the consumer benchmark publishes. */
const sampleTrackPlayed = (i) => trackPlayed(i, 1_800_000_000_000 + i);

function timeIt(seconds, fn) {
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  let n = 0;
  const start = process.hrtime.bigint();
  while (process.hrtime.bigint() < end) n += fn();
  return n / (Number(process.hrtime.bigint() - start) / 1e9);
}

function avscRates(registry) {
  const type = registry.get('track_played').latest.type;
  const records = Array.from({ length: 10000 }, (_, i) => sampleTrackPlayed(i));
  const buffers = records.map((r) => type.toBuffer(r));
  let k = 0;
  const encode = timeIt(2, () => {
    for (let i = 0; i < 1000; i++) type.toBuffer(records[k++ % records.length]);
    return 1000;
  });
  const decode = timeIt(2, () => {
    for (let i = 0; i < 1000; i++) type.fromBuffer(buffers[k++ % buffers.length]);
    return 1000;
  });
  return { avscEncodePerSec: encode, avscDecodePerSec: decode, eventBytes: buffers[0].length };
}

function diskRate() {
  const dir = mkdtempSync(join(tmpdir(), 'hg-disk-'));
  const chunk = Buffer.alloc(1 << 20, 7);
  const fd = openSync(join(dir, 'f'), 'w');
  const start = process.hrtime.bigint();
  let bytes = 0;
  for (let i = 0; i < 256; i++) {
    bytes += writeSync(fd, chunk);
    if (i % 16 === 15) fsyncSync(fd);
  }
  fsyncSync(fd);
  closeSync(fd);
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  rmSync(dir, { recursive: true, force: true });
  return { diskWriteMBps: bytes / 1e6 / secs };
}

async function emulatorPublishRate(registry, seconds) {
  const { PubSub } = require('@google-cloud/pubsub');
  const { encodeRecords } = require('@hourglass/schemas');
  const pubsub = new PubSub({ projectId: 'hourglass-bench' });
  const [topic] = await pubsub.createTopic(`ceiling-${randomUUID().slice(0, 8)}`);
  const [subscription] = await topic.createSubscription(`${topic.name.split('/').pop()}-sub`); // messages are kept, as in the pipeline
  const writer = registry.get('track_played').latest;
  const results = {};
  for (const bundle of [1, 100]) {
    const t = pubsub.topic(topic.name, { batching: { maxMessages: 1000, maxMilliseconds: 5 } });
    const msg = encodeRecords(
      writer,
      Array.from({ length: bundle }, (_, i) => sampleTrackPlayed(i)),
    );
    const end = Date.now() + seconds * 1000;
    const start = Date.now();
    let events = 0;
    const inflight = new Set();
    while (Date.now() < end) {
      while (inflight.size < 2000 / Math.sqrt(bundle)) {
        const p = t.publishMessage({ data: msg.data, attributes: msg.attributes }).then(() => {
          events += bundle;
          inflight.delete(p);
        });
        inflight.add(p);
      }
      await Promise.race(inflight);
    }
    await Promise.all(inflight);
    results[bundle === 1 ? 'emulatorPublishEventsPerSecBundle1' : 'emulatorPublishEventsPerSecBundle100'] =
      events / ((Date.now() - start) / 1000);
  }
  // Drop the subscription too: a detached one keeps every message it holds, and in bench/e2e.js the
  // same emulator then carried over a gigabyte of these through the load (full GCs of 0.6-0.7 s).
  await subscription.delete().catch(() => undefined);
  await topic.delete().catch(() => undefined);
  await pubsub.close();
  return results;
}

async function measureCeilings({ seconds = 5 } = {}) {
  const { SchemaRegistry } = require('@hourglass/schemas');
  const registry = SchemaRegistry.load(join(__dirname, '..', 'schemas'));
  return { ...avscRates(registry), ...diskRate(), ...(await emulatorPublishRate(registry, seconds)) };
}

module.exports = { measureCeilings, sampleTrackPlayed };

if (require.main === module) {
  (async () => {
    process.env.METADATA_SERVER_DETECTION = 'none';
    let emulator;
    if (!process.env.PUBSUB_EMULATOR_HOST) {
      emulator = await require('@hourglass/emulator').startEmulator({ heapMb: 2048 });
      process.env.PUBSUB_EMULATOR_HOST = emulator.host;
    }
    try {
      const c = await measureCeilings();
      for (const [k, v] of Object.entries(c)) console.log(`${k.padEnd(40)} ${Math.round(v).toLocaleString('en-US')}`);
    } finally {
      await emulator?.stop();
    }
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

'use strict';
/**
 * Store operations of one consumer replica on GCS (run after `npx tsc -b`): `node bench/store-ops.js`.
 *
 * The real @google-cloud/storage client against the GCS fake (packages/gcs-fake), counting every
 * request the fake receives. One type, one-minute windows, time from a ManualClock:
 *   1. staging  - BENCH_STAGED_FILES (default 5,000) staged files in one window.
 *   2. steady   - 30 ticks of one second while the window is open: requests per tick by operation
 *                 (lease writes, lease and cursor reads, listings), and what one full listing of
 *                 `_staging/<type>/` (the closer's walk before) costs beside the delimiter walk.
 *   3. close    - the window closes: time of the publish (plan, final files, manifest, one folder
 *                 rename) and of the staging cleanup (bounded parallel deletes), with their requests.
 * Writes bench/results/store-ops.json.
 */
const path = require('node:path');
const { writeFileSync, mkdirSync } = require('node:fs');

const root = path.join(__dirname, '..');
const dist = (p) => require(path.join(root, p, 'dist/index.js'));
const { start } = dist('packages/gcs-fake');
const { SchemaRegistry } = dist('packages/schemas');
const { encodeRecords } = dist('packages/schemas');
const { Defaults, ManualClock, silentLogger } = dist('packages/common');
const { GcsStore } = dist('packages/storage');
const { TypeRuntime, createConsumerMetrics, stagingTypePrefix } = dist('services/consumer');
const { trackPlayed } = require('./lib.js');

const FILES = Number(process.env.BENCH_STAGED_FILES || 5000);
const TYPE = 'track_played';
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);

async function main() {
  const fake = await start();
  const store = new GcsStore({ bucket: 'bench', prefix: 'p', storage: { apiEndpoint: fake.url, projectId: 'bench' } });
  await store.storage.createBucket('bench').catch(() => undefined);
  const registry = SchemaRegistry.load(path.join(root, 'schemas'));
  const clock = new ManualClock(T0 + 5_000);
  let published = 0;
  const rt = new TypeRuntime(
    {
      eventType: TYPE,
      replicaId: 'bench',
      incarnation: 'i1',
      windowMs: MINUTE,
      graceMs: 10_000,
      startAt: T0 - 2 * MINUTE, // an empty window closes at once: a cursor exists, as in a running pipeline
      leaseTtlMs: 30_000,
      ackDeadlineMs: 60_000,
      maxAckExtensionMs: 600_000,
      maxPublishDelayMs: 1_000,
      idleAfterMs: 2_000,
      stageMaxEvents: 2,
      stageMaxBytes: 1 << 20,
      stageMaxAgeMs: 1_000,
      blockBytes: 64 * 1024,
      finalFileBytes: Defaults.finalFileBytes,
      stageDeflateLevel: 0,
      finalDeflateLevel: 1,
      earlySegments: 0,
      dedupHorizonMs: 0,
      closer: true,
    },
    {
      store,
      registry,
      clock,
      logger: silentLogger,
      metrics: createConsumerMetrics(),
      onFinalizeStep: (step) => {
        if (step === 'published') published = performance.now();
      },
    },
  );
  await rt.start();
  const latest = registry.get(TYPE).latest;
  const settle = { ack() {}, nack() {} };
  const t0 = performance.now();
  for (let i = 0; i < FILES; i++) {
    const records = [0, 1].map((j) => trackPlayed(i * 2 + j, T0 + 1_000 + ((i * 2 + j) % 50_000)));
    const { data, attributes } = encodeRecords(latest, records, 'null');
    rt.stager.handle({ id: `m${i}`, data, attributes, ...settle });
    if (i % 200 === 199) await rt.stager.flushAll();
  }
  await rt.stager.flushAll();
  const stagingSeconds = (performance.now() - t0) / 1000;

  // steady state: the window stays open (the clock stays before its end + grace)
  fake.requests.reset();
  const TICKS = 30;
  for (let i = 0; i < TICKS; i++) {
    clock.advance(1_000);
    await rt.tick();
    await rt.closeWindows();
  }
  const perTick = Object.fromEntries(
    Object.entries(fake.requests.byOperation()).map(([op, n]) => [op, Math.round((n / TICKS) * 100) / 100]),
  );
  fake.requests.reset();
  const listed = (await store.list(stagingTypePrefix(TYPE))).length;
  const fullListing = fake.requests.byOperation();

  // close: publish and cleanup, timed apart through the finalize steps
  fake.requests.reset();
  const closeStart = performance.now();
  clock.set(T0 + MINUTE + 10_000 + 3_000);
  await rt.tick();
  await rt.closeWindows();
  const closeEnd = performance.now();
  const closeOps = fake.requests.byOperation();
  const closed = rt.closed.find((c) => c.window.start === T0);
  const result = {
    stagedFiles: FILES,
    stagingSeconds: Math.round(stagingSeconds * 10) / 10,
    steadyRequestsPerTick: perTick,
    fullStagingListing: { objects: listed, requests: fullListing },
    close: {
      records: closed?.records,
      publishSeconds: Math.round((published - closeStart) / 10) / 100,
      cleanupSeconds: Math.round((closeEnd - published) / 10) / 100,
      requests: closeOps,
    },
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  writeFileSync(path.join(__dirname, 'results', 'store-ops.json'), `${JSON.stringify(result, null, 2)}\n`);
  await fake.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

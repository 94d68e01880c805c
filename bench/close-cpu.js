'use strict';
/**
 * Wall and CPU time of one window's close in a quiet process: F staged files of E events each,
 * staged by the consumer's Stager, then finalizeWindow (plan, part files, manifest, publish,
 * cleanup) on the local store. 60 files of 300 events is what one of 255 types brings a replica in
 * a minute at 75,000 events/s; 20 of 50,000 what bench/consumer.js closes. Run after `npx tsc -b`:
 *   node bench/close-cpu.js [events per file, default 300] [files, default 60] [rounds, default 20]
 * Env: BENCH_CLOSE_PROFILE=1 wraps the rounds after the first in a CPU profile (close.cpuprofile).
 */
const path = require('node:path');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { Session } = require('node:inspector/promises');
const { benchStager, median, trackPlayed } = require('./lib.js');

const root = path.join(__dirname, '..');
const dist = (p) => require(path.join(root, p, 'dist/index.js'));
const { SchemaRegistry, encodeRecords } = dist('packages/schemas');
const { Defaults, ManualClock, silentLogger } = dist('packages/common');
const { LocalDirectoryStore } = dist('packages/storage');
const { assignWindow } = dist('packages/bucket-format');
const { finalizeWindow } = dist('services/consumer');

const EVENTS_PER_FILE = Number(process.argv[2] || 300);
const FILES = Number(process.argv[3] || 60);
const ROUNDS = Number(process.argv[4] || 20);
const TYPE = 'track_played';
const MINUTE = 60_000;

async function stageWindow(registry, store, windowStart, round) {
  const clock = new ManualClock(windowStart + 2 * MINUTE);
  const stager = benchStager({
    store,
    registry,
    clock,
    eventType: TYPE,
    replicaId: 'close',
    incarnation: `bench${round}`,
    graceMs: 10_000,
    maxEvents: EVENTS_PER_FILE,
  });
  const writer = registry.get(TYPE).latest;
  for (let f = 0; f < FILES; f++) {
    const records = [];
    for (let j = 0; j < EVENTS_PER_FILE; j++) {
      const n = (round * FILES + f) * EVENTS_PER_FILE + j;
      records.push(trackPlayed(n, windowStart + ((f * EVENTS_PER_FILE + j) % MINUTE)));
    }
    const { data, attributes } = encodeRecords(writer, records, 'null');
    stager.handle({ id: String(f), data, attributes, ack: () => undefined, nack: () => undefined });
    await stager.flushAll();
  }
}

async function main() {
  const registry = SchemaRegistry.load(path.join(root, 'schemas'));
  const dir = mkdtempSync(path.join(tmpdir(), 'hourglass-bench-close-'));
  const store = new LocalDirectoryStore(dir);
  const ctx = {
    store,
    registry,
    eventType: TYPE,
    windowMs: MINUTE,
    graceMs: 10_000,
    format: {
      finalFileBytes: Defaults.finalFileBytes,
      blockBytes: Defaults.avroBlockBytes,
      deflateLevel: Defaults.finalDeflateLevel,
      dedupHorizonMs: Defaults.dedupHorizon,
    },
    logger: silentLogger,
    shardBytes: Defaults.finalizeShardBytes,
  };
  const base = Math.floor(Date.now() / MINUTE) * MINUTE - (ROUNDS + 10) * MINUTE;
  const session = process.env.BENCH_CLOSE_PROFILE ? new Session() : undefined;
  const walls = [];
  const cpus = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const w = assignWindow(base + round * MINUTE, MINUTE);
      await stageWindow(registry, store, w.start, round);
      if (session && round === 1) {
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      }
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const result = await finalizeWindow(ctx, w, w.end + 10_000);
      const wall = Number(process.hrtime.bigint() - t0) / 1e6;
      const cpu = process.cpuUsage(cpu0);
      if (result.manifest.counts.records !== FILES * EVENTS_PER_FILE) throw new Error('records lost');
      if (round > 0) {
        walls.push(wall);
        cpus.push((cpu.user + cpu.system) / 1000);
      }
    }
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(path.join(root, 'bench/results/close.cpuprofile'), JSON.stringify(profile));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const events = FILES * EVENTS_PER_FILE;
  console.log(
    `close of ${FILES} staged files x ${EVENTS_PER_FILE} events: median wall ${median(walls).toFixed(1)} ms, ` +
      `CPU ${median(cpus).toFixed(1)} ms (${((median(cpus) * 1000) / events).toFixed(2)} µs per event), ${walls.length} rounds`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

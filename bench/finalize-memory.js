'use strict';
/**
 * Finalize memory benchmark (run after `npx tsc -b`): `node bench/finalize-memory.js`.
 *
 * For each size in BENCH_FINALIZE_EVENTS (default 1,000,000; e.g. 1000000,5000000,20000000):
 *   1. stage  - writes the staged files of one hourly window of track_played straight into a
 *               local-directory store, as the stager does (files of stageMaxEvents events,
 *               stageDeflateLevel, stagedFileName names), with 1% of the events redelivered: a
 *               copy of them lands again in the next staged file.
 *   2. close  - a child process runs the real finalize of that window (finalizeWindow over dist/,
 *               the consumer's defaults for the final format, dedup horizon and shard size) and
 *               reports its peak RSS (VmHWM from /proc/self/status), wall and CPU time, and the
 *               bytes it read of staged files (read amplification = that ÷ bytes staged).
 *   3. check  - the manifest counts every distinct event once and every redelivered copy as a
 *               duplicate.
 * Writes bench/results/finalize-memory.json: per label, one row per size (a rerun of a size replaces its row).
 *
 * Env: BENCH_FINALIZE_EVENTS, BENCH_FINALIZE_SHARD_BYTES (default: Defaults.finalizeShardBytes),
 * BENCH_FINALIZE_LABEL (a name for the run in the results, e.g. "before"), TMPDIR (store and spill),
 * BENCH_FINALIZE_SPILL (local, the default, or none: each shard rereads staging, as on Cloud Run).
 */
const { spawnSync } = require('node:child_process');
const { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const { trackPlayed } = require('./lib.js');

const root = path.join(__dirname, '..');
const dist = (p) => require(path.join(root, p, 'dist/index.js'));
const TYPE = 'track_played';
const HOUR = 3_600_000;
const WINDOW_START = Date.UTC(2026, 0, 1, 0);
const DUPLICATE_EVERY = 100; // 1% redelivered
const resultsFile = path.join(root, 'bench', 'results', 'finalize-memory.json');

/**
 * Datums of realistic track_played records without avsc's encoder per event (20 M encodes would
 * take minutes): 1,000 encoded templates, each copied with its own event id (36 bytes, unique per
 * event) and gateway_ts (a zigzag varint of 6 bytes for every time of 2026) written in place.
 */
function datumMaker(type) {
  const run = randomBytes(4).toString('hex');
  const templates = [];
  for (let k = 0; k < 1000; k++) templates.push(type.toBuffer(trackPlayed(k, WINDOW_START)));
  return (i, gatewayTs) => {
    const datum = Buffer.from(templates[i % 1000]);
    // meta.event_id: length 36 (one varint byte), then a UUID-shaped id: run-0000-4000-8000-<i in hex>
    datum.write(`${run}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`, 1, 'latin1');
    let z = gatewayTs * 2; // zigzag of a positive long
    for (let at = 37; ; at++) {
      if (z < 128) {
        datum[at] = z;
        break;
      }
      datum[at] = (z % 128) | 128;
      z = Math.floor(z / 128);
    }
    return datum;
  };
}

/** Writes the window's staged files; returns what was staged. */
async function stage(dir, events) {
  const { SchemaRegistry } = dist('packages/schemas');
  const { Defaults } = dist('packages/common');
  const { LocalDirectoryStore } = dist('packages/storage');
  const { OcfWriter, assignWindow, schemaTextOf, stagedFileName, syncMarkerFor } = dist('packages/bucket-format');
  const registry = SchemaRegistry.load(path.join(root, 'schemas'));
  const latest = registry.get(TYPE).latest;
  const store = new LocalDirectoryStore(dir);
  const w = assignWindow(WINDOW_START, HOUR);
  const datumOf = datumMaker(latest.type);
  let seq = 0;
  let files = 0;
  let bytes = 0;
  let records = 0;
  let carried = []; // redelivered copies: staged again in the next file
  for (let i = 0; i < events;) {
    const name = stagedFileName(TYPE, w, false, 'bench', 'r0', seq++);
    const writer = new OcfWriter({
      type: latest.type,
      schema: schemaTextOf(latest),
      syncMarker: syncMarkerFor(name),
      deflateLevel: Defaults.stageDeflateLevel,
      blockBytes: Defaults.avroBlockBytes,
    });
    for (const datum of carried) writer.appendDatum(datum);
    carried = [];
    for (let n = 0; n < Defaults.stageMaxEvents && i < events; n++, i++) {
      const datum = datumOf(i, WINDOW_START + Math.floor((i / events) * HOUR));
      writer.appendDatum(datum);
      if (i % DUPLICATE_EVERY === 37) carried.push(datum);
    }
    if (i >= events && carried.length > 0) {
      for (const datum of carried) writer.appendDatum(datum); // the last file's copies in the same file
      carried = [];
    }
    const data = await writer.finish();
    await store.createIfAbsent(name, data);
    files++;
    bytes += data.length;
    records += writer.records;
  }
  return { files, bytes, records };
}

/** The child: finalizes the window in `dir` and prints one JSON line. */
async function child(dir) {
  const { SchemaRegistry } = dist('packages/schemas');
  const { Defaults, silentLogger } = dist('packages/common');
  const { LocalDirectoryStore } = dist('packages/storage');
  const { assignWindow } = dist('packages/bucket-format');
  const { finalizeWindow } = dist('services/consumer');
  const registry = SchemaRegistry.load(path.join(root, 'schemas'));
  const store = new LocalDirectoryStore(dir);
  let stagedBytesRead = 0;
  let otherBytesRead = 0;
  const get = store.get.bind(store);
  store.get = async (name) => {
    const data = await get(name);
    if (data && name.startsWith('_staging/') && name.endsWith('.avro')) stagedBytesRead += data.length;
    else if (data) otherBytesRead += data.length;
    return data;
  };
  let shards = 1; // as the committed plan says
  const create = store.createIfAbsent.bind(store);
  store.createIfAbsent = async (name, data) => {
    if (name.endsWith('/_plan.json')) shards = JSON.parse(data.toString('utf8')).shards ?? 1;
    return create(name, data);
  };
  const shardBytes = Number(process.env.BENCH_FINALIZE_SHARD_BYTES || Defaults.finalizeShardBytes || 0);
  const ctx = {
    store,
    registry,
    eventType: TYPE,
    windowMs: HOUR,
    graceMs: Defaults.grace,
    format: {
      finalFileBytes: Defaults.finalFileBytes,
      blockBytes: Defaults.avroBlockBytes,
      deflateLevel: Defaults.finalDeflateLevel,
      dedupHorizonMs: Defaults.dedupHorizon,
    },
    ...(shardBytes > 0 ? { shardBytes } : {}),
    spill: process.env.BENCH_FINALIZE_SPILL || Defaults.finalizeSpill,
    logger: silentLogger,
    sweepOrphan: async () => {
      throw new Error('no orphans expected');
    },
  };
  const w = assignWindow(WINDOW_START, HOUR);
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  const result = await finalizeWindow(ctx, w, w.end + Defaults.grace);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  process.stdout.write(
    `${JSON.stringify({
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      peakRssMb: Number(hwm[1]) / 1024,
      stagedBytesRead,
      otherBytesRead,
      shardBytes: shardBytes || null,
      spill: ctx.spill,
      shards,
      counts: result.manifest.counts,
      finalFiles: result.manifest.files.length,
      finalBytes: result.manifest.files.reduce((n, f) => n + f.bytes, 0),
    })}\n`,
  );
}

async function main() {
  const sizes = (process.env.BENCH_FINALIZE_EVENTS || '1000000').split(',').map(Number);
  const label = process.env.BENCH_FINALIZE_LABEL || 'current';
  const rows = [];
  for (const events of sizes) {
    const dir = mkdtempSync(path.join(tmpdir(), 'hourglass-bench-finalize-'));
    try {
      const t0 = Date.now();
      const staged = await stage(dir, events);
      const stageSeconds = (Date.now() - t0) / 1000;
      const run = spawnSync(process.execPath, [__filename, '--child', dir], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (run.status !== 0) throw new Error(`finalize child failed (exit ${run.status})`);
      const r = JSON.parse(run.stdout.trim().split('\n').pop());
      const duplicates = staged.records - events;
      if (r.counts.records !== events || r.counts.duplicatesDropped !== duplicates) {
        throw new Error(
          `counts wrong: ${JSON.stringify(r.counts)}, expected ${events} records, ${duplicates} duplicates`,
        );
      }
      const row = {
        label,
        events,
        stagedFiles: staged.files,
        stagedRecords: staged.records,
        stagedBytes: staged.bytes,
        duplicatesDropped: r.counts.duplicatesDropped,
        shardBytes: r.shardBytes,
        spill: r.spill,
        shards: r.shards,
        finalFiles: r.finalFiles,
        finalBytes: r.finalBytes,
        peakRssMb: Math.round(r.peakRssMb),
        seconds: Number(r.seconds.toFixed(1)),
        cpuSeconds: Number(r.cpuSeconds.toFixed(1)),
        readAmplification: Number((r.stagedBytesRead / staged.bytes).toFixed(3)),
        otherBytesRead: r.otherBytesRead,
        stageSeconds: Number(stageSeconds.toFixed(1)),
      };
      rows.push(row);
      console.log(
        `${label} ${events.toLocaleString('en')} events: peak RSS ${row.peakRssMb} MB, ${row.seconds} s ` +
          `(${row.cpuSeconds} s CPU), ${row.shards} shard(s), read amplification ${row.readAmplification}, ${row.finalFiles} final files`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  mkdirSync(path.dirname(resultsFile), { recursive: true });
  let previous = {};
  try {
    previous = JSON.parse(readFileSync(resultsFile, 'utf8'));
  } catch {
    /* first run */
  }
  // a rerun of some sizes replaces those rows of its label and keeps the others
  const kept = (previous.runs?.[label]?.rows ?? []).filter((r) => !sizes.includes(r.events));
  const merged = [...kept, ...rows].sort((a, b) => a.events - b.events);
  const runs = { ...(previous.runs ?? {}), [label]: { at: new Date().toISOString(), rows: merged } };
  writeFileSync(resultsFile, `${JSON.stringify({ runs }, null, 2)}\n`);
}

if (process.argv[2] === '--child') {
  child(process.argv[3]).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

'use strict';
/**
 * Finalize memory benchmark (run after `npx tsc -b`): `node bench/finalize-memory.js`.
 *
 * For each size in BENCH_FINALIZE_EVENTS (default 1,000,000; e.g. 1000000,5000000,20000000):
 *   1. stage  - writes the staged files of one hourly window of track_played straight into a
 *               local-directory store, as the stager does (grouped by event id hash, files of stageMaxEvents events,
 *               stageDeflateLevel, stagedFileName names), with 1% of the events redelivered: a
 *               copy of them lands again in the next staged file.
 *   2. close  - a child process runs the real finalize of that window (finalizeWindow over dist/,
 *               the consumer's defaults for the final format, dedup horizon and shard size) and
 *               reports its peak RSS (VmHWM from /proc/self/status), wall and CPU time, and the
 *               bytes it read of staged files (read amplification = that ÷ bytes staged). With
 *               BENCH_FINALIZE_REPLICAS=N (default 1), N − 1 more child processes run the window's
 *               shard jobs beside it (runOneOpenShardJob, as every replica's shard worker does);
 *               the figures add up their reads and CPU and take the highest peak RSS.
 *   3. check  - the manifest counts every distinct event once and every redelivered copy as a
 *               duplicate.
 * Writes bench/results/finalize-memory.json: per label, one row per size (a rerun of a size replaces its row).
 *
 * Env: BENCH_FINALIZE_EVENTS, BENCH_FINALIZE_SHARD_BYTES (default: Defaults.finalizeShardBytes),
 * BENCH_FINALIZE_LABEL (a name for the run in the results, e.g. "before"), TMPDIR (store and spill),
 * BENCH_FINALIZE_REPLICAS (processes sharing the shard jobs, default 1), BENCH_FINALIZE_JOBS (on,
 * the default: shard jobs; off: the closer writes every shard itself, BENCH_FINALIZE_SPILL deciding
 * how: local, the default, or none, each shard rereading staging).
 */
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
  const { GroupedOcfWriter, assignWindow, schemaTextOf, stagedFileName, syncMarkerFor } =
    dist('packages/bucket-format');
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
    const writer = new GroupedOcfWriter({
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

/** A finalize context over the store in `dir` whose staged reads are counted into `reads`. */
function benchContext(dir, reads, identity) {
  const { SchemaRegistry } = dist('packages/schemas');
  const { Defaults, silentLogger } = dist('packages/common');
  const { LocalDirectoryStore } = dist('packages/storage');
  const registry = SchemaRegistry.load(path.join(root, 'schemas'));
  const store = new LocalDirectoryStore(dir);
  for (const method of ['get', 'getRange']) {
    if (!store[method]) continue;
    const read = store[method].bind(store);
    store[method] = async (name, ...range) => {
      const data = await read(name, ...range);
      if (data && name.startsWith('_staging/') && name.endsWith('.avro')) reads.staged += data.length;
      else if (data) reads.other += data.length;
      return data;
    };
  }
  const shardBytes = Number(process.env.BENCH_FINALIZE_SHARD_BYTES || Defaults.finalizeShardBytes || 0);
  const jobs = (process.env.BENCH_FINALIZE_JOBS || 'on') === 'on';
  return {
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
    ...(jobs ? { shardJobs: { identity, now: () => Date.now(), claimMs: 30_000, pollMs: 100 } } : {}),
    logger: silentLogger,
    sweepOrphan: async () => {
      throw new Error('no orphans expected');
    },
  };
}

/** The child: finalizes the window in `dir` (role closer) or runs its open shard jobs (role worker); prints one JSON line. */
async function child(dir, role) {
  const { Defaults } = dist('packages/common');
  const { assignWindow, manifestName } = dist('packages/bucket-format');
  const { finalizeWindow, runOneOpenShardJob } = dist('services/consumer');
  const reads = { staged: 0, other: 0 };
  const ctx = benchContext(dir, reads, `${role}-${process.pid}`);
  let shards = 1; // as the committed plan says
  const create = ctx.store.createIfAbsent.bind(ctx.store);
  ctx.store.createIfAbsent = async (name, data) => {
    if (name.endsWith('/_plan.json')) shards = JSON.parse(data.toString('utf8')).shards ?? 1;
    return create(name, data);
  };
  const w = assignWindow(WINDOW_START, HOUR);
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  let result;
  let jobsRun = 0;
  if (role === 'closer') result = await finalizeWindow(ctx, w, w.end + Defaults.grace);
  else {
    while (!(await ctx.store.exists(manifestName(TYPE, w)))) {
      if (await runOneOpenShardJob(ctx, w, ctx.shardJobs)) jobsRun++;
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  process.stdout.write(
    `${JSON.stringify({
      role,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      peakRssMb: Number(hwm[1]) / 1024,
      stagedBytesRead: reads.staged,
      otherBytesRead: reads.other,
      shardBytes: ctx.shardBytes ?? null,
      spill: ctx.spill,
      jobs: ctx.shardJobs ? 'on' : 'off',
      jobsRun,
      shards,
      ...(result
        ? {
            counts: result.manifest.counts,
            finalFiles: result.manifest.files.length,
            finalBytes: result.manifest.files.reduce((n, f) => n + f.bytes, 0),
          }
        : {}),
    })}\n`,
  );
}

/** Runs the closer and N − 1 workers as child processes at once; resolves to their JSON lines. */
function finalizeInChildren(dir, replicas) {
  const { spawn } = require('node:child_process');
  const roles = ['closer', ...Array.from({ length: replicas - 1 }, () => 'worker')];
  return Promise.all(
    roles.map(
      (role) =>
        new Promise((resolve, reject) => {
          const p = spawn(process.execPath, [__filename, '--child', dir, role], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          p.stdout.on('data', (d) => (out += d));
          p.on('exit', (code) =>
            code === 0
              ? resolve(JSON.parse(out.trim().split('\n').pop()))
              : reject(new Error(`${role} child exit ${code}`)),
          );
        }),
    ),
  );
}

async function main() {
  const sizes = (process.env.BENCH_FINALIZE_EVENTS || '1000000').split(',').map(Number);
  const label = process.env.BENCH_FINALIZE_LABEL || 'current';
  const replicas = Math.max(1, Number(process.env.BENCH_FINALIZE_REPLICAS || 1));
  const rows = [];
  for (const events of sizes) {
    const dir = mkdtempSync(path.join(tmpdir(), 'hourglass-bench-finalize-'));
    try {
      const t0 = Date.now();
      const staged = await stage(dir, events);
      const stageSeconds = (Date.now() - t0) / 1000;
      const children = await finalizeInChildren(dir, replicas);
      const r = children[0];
      const sum = (k) => children.reduce((n, c) => n + c[k], 0);
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
        jobs: r.jobs,
        replicas,
        jobsRunByOthers: sum('jobsRun'),
        finalFiles: r.finalFiles,
        finalBytes: r.finalBytes,
        peakRssMb: Math.round(Math.max(...children.map((c) => c.peakRssMb))),
        seconds: Number(r.seconds.toFixed(1)),
        cpuSeconds: Number(sum('cpuSeconds').toFixed(1)),
        readAmplification: Number((sum('stagedBytesRead') / staged.bytes).toFixed(3)),
        otherBytesRead: sum('otherBytesRead'),
        stageSeconds: Number(stageSeconds.toFixed(1)),
      };
      rows.push(row);
      console.log(
        `${label} ${events.toLocaleString('en')} events: peak RSS ${row.peakRssMb} MB, ${row.seconds} s ` +
          `(${row.cpuSeconds} s CPU), ${row.shards} shard(s), ${replicas} replica(s) (${row.jobsRunByOthers} jobs by others), read amplification ${row.readAmplification}, ${row.finalFiles} final files`,
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
  const kept = (previous.runs?.[label]?.rows ?? []).filter(
    (r) => !(sizes.includes(r.events) && (r.replicas ?? 1) === replicas),
  );
  const merged = [...kept, ...rows].sort((a, b) => a.events - b.events || (a.replicas ?? 1) - (b.replicas ?? 1));
  const runs = { ...(previous.runs ?? {}), [label]: { at: new Date().toISOString(), rows: merged } };
  writeFileSync(resultsFile, `${JSON.stringify({ runs }, null, 2)}\n`);
}

if (process.argv[2] === '--child') {
  child(process.argv[3], process.argv[4] || 'closer').catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

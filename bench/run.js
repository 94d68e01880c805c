'use strict';
/**
 * `make bench`: runs the gateway, consumer and end-to-end benchmarks one after another
 * (each measures its own raw ceiling in the same run), then prints one table and writes
 * bench/results/summary.json. BENCH_ONLY=gateway,gateway-many-types,consumer,e2e,e2e-many-types,
 * tracing-cpu,finalize-memory picks a subset. gateway-many-types and e2e-many-types are bench/gateway.js
 * and bench/e2e.js (at 75,000 events/s offered) with 250 more event types, 255 in all, as the original
 * system had; tracing-cpu: off against on at 1%, paired, its 'ceiling' column is the same run with
 * tracing off; finalize-memory: a 1M-event window unless BENCH_FINALIZE_EVENTS says otherwise.
 */
const { spawnSync } = require('node:child_process');
const { readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const only = (
  process.env.BENCH_ONLY || 'gateway,gateway-many-types,consumer,e2e,e2e-many-types,tracing-cpu,finalize-memory'
).split(',');
/** Runs that are another script with settings: name -> [script, extra environment]. */
const variants = {
  'gateway-many-types': ['gateway', { BENCH_EXTRA_TYPES: '250' }],
  'e2e-many-types': ['e2e', { BENCH_EXTRA_TYPES: '250', BENCH_E2E_RATE: '75000' }],
};
const results = path.join(__dirname, 'results');
const read = (name) => {
  try {
    return JSON.parse(readFileSync(path.join(results, `${name}.json`), 'utf8'));
  } catch {
    return undefined;
  }
};

for (const name of only) {
  process.stdout.write(`\n=== bench/${name}.js ===\n`);
  const [script, env] = variants[name] ?? [name, {}];
  const run = spawnSync(process.execPath, [path.join(__dirname, `${script}.js`)], {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  if (run.status !== 0) process.stdout.write(`bench/${name}.js failed (exit ${run.status})\n`);
}

const g = read('gateway');
const gm = read('gateway-many-types');
const c = read('consumer');
const e = read('e2e');
const em = read('e2e-many-types');
const tr = read('tracing');
const fm = read('finalize-memory');
/** The largest window of the last finalize-memory run (bench/finalize-memory.js writes one run per label). */
const fmRow = (() => {
  const runs = Object.values((fm && fm.runs) || {}).sort((a, b) => (a.at < b.at ? -1 : 1));
  const rows = runs.length ? runs[runs.length - 1].rows : [];
  return rows.length ? rows[rows.length - 1] : undefined;
})();
const pick = (o, p) => p.split('.').reduce((a, k) => (a === undefined || a === null ? undefined : a[k]), o);
const rows = [
  ['figure', 'measured', 'raw ceiling (same run)', 'ratio', 'target'],
  [
    'gateway events/s accepted',
    pick(g, 'gateway.acceptedPerSecond'),
    pick(g, 'ceiling.eventsPerSecond'),
    pick(g, 'ratioToCeiling'),
    '>= 150,000, ratio >= 0.5',
  ],
  [
    'gateway p99 at half load (ms)',
    pick(g, 'half.latencyMs.p99'),
    pick(g, 'emulatorLatencyCeiling.group.p99'),
    undefined,
    '< 50',
  ],
  [
    'gateway CPU per event (µs, all threads)',
    pick(g, 'cpuPerEvent.gatewayUs'),
    pick(g, 'cpuPerEvent.ceilingUs'),
    pick(g, 'cpuPerEvent.efficiency'),
    'efficiency (bare / gateway) >= 0.7',
  ],
  ['gateway RSS (MB)', pick(g, 'gatewayMaxRssMb'), undefined, undefined, '< 300'],
  [
    'gateway events/s accepted, 255 types',
    pick(gm, 'gateway.acceptedPerSecond'),
    pick(gm, 'ceiling.eventsPerSecond'),
    pick(gm, 'ratioToCeiling'),
    'report (the publish per type and bundle dominates)',
  ],
  [
    'gateway CPU per event, 255 types (µs, all threads)',
    pick(gm, 'cpuPerEvent.gatewayUs'),
    pick(gm, 'cpuPerEvent.ceilingUs'),
    pick(gm, 'cpuPerEvent.efficiency'),
    'report',
  ],
  [
    'gateway events per bundle at half load, 255 types',
    pick(gm, 'half.bundles.averageEvents'),
    undefined,
    undefined,
    'report',
  ],
  [
    'gateway p99 at half load, 255 types (ms)',
    pick(gm, 'half.latencyMs.p99'),
    undefined,
    undefined,
    'report (up to the 250 ms linger + the publish)',
  ],
  [
    'gateway CPU/request, 1-event requests, tracing 1% (µs)',
    pick(tr, 'shapes.single.onUsPerRequest'),
    pick(tr, 'shapes.single.offUsPerRequest'),
    pick(tr, 'shapes.single.overheadMedian'),
    'overhead (paired median) small: < 0.05',
  ],
  ['gateway span path alone, tracing 1% (µs/request)', pick(tr, 'spanPathUsPerRequest'), undefined, undefined, '< 5'],
  [
    'gateway CPU/request, 100-event requests, tracing 1% (µs)',
    pick(tr, 'shapes.batch100.onUsPerRequest'),
    pick(tr, 'shapes.batch100.offUsPerRequest'),
    pick(tr, 'shapes.batch100.overheadMedian'),
    'overhead (paired median) small: < 0.05',
  ],
  [
    'consumer events/s staged',
    pick(c, 'consumer.eventsPerSecond'),
    pick(c, 'ceiling.eventsPerSecond'),
    pick(c, 'consumer.ratioToCeiling'),
    '>= 150,000, ratio >= 0.5',
  ],
  [
    'consumer CPU per event staged (µs)',
    pick(c, 'consumer.cpuPerEventUs'),
    pick(c, 'ceiling.cpuPerEventUs'),
    pick(c, 'consumer.cpuRatioToCeiling'),
    'per CPU (ceiling / consumer) >= 0.5',
  ],
  ['finalize 1M-event window (s)', pick(c, 'finalize.durationSeconds'), undefined, undefined, '< 10'],
  ['consumer RSS draining / finalizing (MB)', pick(c, 'finalize.maxRssMb'), undefined, undefined, '< 500'],
  [
    `finalize peak RSS, ${fmRow ? fmRow.events.toLocaleString('en-US') : '?'}-event window (MB)`,
    pick(fmRow, 'peakRssMb'),
    undefined,
    undefined,
    '< 600, flat in window size',
  ],
  [
    'finalize read amplification (staged bytes read / staged)',
    pick(fmRow, 'readAmplification'),
    undefined,
    undefined,
    '<= 1.2',
  ],
  [
    'e2e events/s accepted',
    pick(e, 'acceptedPerSec'),
    pick(e, 'ceilings.emulatorPublishEventsPerSecBundle100'),
    pick(e, 'ratioAcceptedToEmulatorBundledPublish'),
    '>= 150,000 for 60 s, every accepted event stored once',
  ],
  ['e2e answer p99 (ms)', pick(e, 'answerLatencyMs.p99'), undefined, undefined, '< 500'],
  ['e2e p99 receive -> staged (s)', pick(e, 'stageLatencySeconds.p99'), undefined, undefined, '< 2'],
  [
    'e2e CPU per event, whole pipeline and load generator (µs)',
    pick(e, 'cpuPerEventUs.total'),
    undefined,
    undefined,
    'report (2 cores / 150,000 events/s = 13.3)',
  ],
  [
    'e2e events/s accepted, 255 types, 75,000 offered',
    pick(em, 'acceptedPerSec'),
    undefined,
    undefined,
    'report, every accepted event stored once',
  ],
  [
    'e2e stored of accepted, 255 types',
    pick(em, 'targets.storedOfAccepted.measured'),
    pick(em, 'targets.storedOfAccepted.target'),
    undefined,
    'equal',
  ],
  [
    'e2e answer p99, 255 types (ms)',
    pick(em, 'answerLatencyMs.p99'),
    undefined,
    undefined,
    'report (up to the 250 ms linger + the publish)',
  ],
  [
    'e2e latest window close after end (s)',
    pick(e, 'maxCloseDelayAfterEndSeconds'),
    undefined,
    undefined,
    '<= grace + 10 = 20',
  ],
];
const fmt = (v) =>
  v === undefined || v === null
    ? '-'
    : typeof v === 'number'
      ? Math.abs(v) >= 100
        ? Math.round(v).toLocaleString('en-US')
        : v.toFixed(2)
      : String(v);
const table = rows.map((r) => r.map(fmt));
const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
process.stdout.write('\n' + table.map((r) => r.map((c2, i) => c2.padEnd(widths[i])).join('  ')).join('\n') + '\n');
writeFileSync(
  path.join(results, 'summary.json'),
  JSON.stringify(
    {
      at: new Date().toISOString(),
      rows: rows.slice(1).map((r) => ({
        figure: r[0],
        measured: r[1] ?? null,
        ceiling: r[2] ?? null,
        ratio: r[3] ?? null,
        target: r[4],
      })),
    },
    null,
    2,
  ) + '\n',
);

'use strict';
/**
 * Store delete benchmark (run after `npx tsc -b`): `node bench/store-delete.js`.
 *
 * Deletes BENCH_OBJECTS objects (default 5,000) from the GCS fake through GcsStore, first one
 * `delete` at a time, then with one `deleteMany` (Defaults.storeDeleteParallelism in flight),
 * with each answer held BENCH_LATENCY_MS (default "0,10": one run per value; 10 ms stands
 * for a GCS round trip). Prints the times and the requests the fake counted; writes nothing.
 */
const path = require('node:path');

process.env.METADATA_SERVER_DETECTION = 'none';
const root = path.join(__dirname, '..');
const dist = (p) => require(path.join(root, p, 'dist/index.js'));
const { start } = dist('packages/gcs-fake');
const { GcsStore } = dist('packages/storage');
const { Defaults } = dist('packages/common');

const COUNT = Number(process.env.BENCH_OBJECTS ?? 5000);
const LATENCIES = (process.env.BENCH_LATENCY_MS ?? '0,10').split(',').map(Number);

async function timed(fake, work) {
  fake.requests.reset();
  const started = process.hrtime.bigint();
  await work();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms: Math.round(ms), deletes: fake.requests.count('object.delete'), maxInFlight: fake.requests.maxInFlight };
}

async function main() {
  const fake = await start({ buckets: ['bench'] });
  try {
    for (const latency of LATENCIES) {
      fake.faults.delay(latency);
      const runs = {};
      for (const mode of ['one at a time', 'deleteMany']) {
        const prefix = `${mode.replace(/ /g, '-')}-${latency}`;
        const names = Array.from({ length: COUNT }, (_, i) => `_staging/t/part-${String(i).padStart(6, '0')}.avro`);
        for (const n of names) fake.state.putObject('bench', `${prefix}/${n}`, Buffer.from(n), {}, {});
        const store = new GcsStore({ bucket: 'bench', prefix, storage: { apiEndpoint: fake.url, projectId: 'bench' } });
        runs[mode] = await timed(fake, async () => {
          if (mode === 'deleteMany') await store.deleteMany(names);
          else for (const n of names) await store.delete(n);
        });
        if ((await store.list('')).length !== 0) throw new Error(`${mode}: objects left`);
      }
      const [one, many] = [runs['one at a time'], runs.deleteMany];
      console.log(
        `${COUNT} deletes, answer latency ${latency} ms: one at a time ${one.ms} ms (${one.deletes} requests, ` +
          `${one.maxInFlight} in flight), deleteMany ${many.ms} ms (${many.deletes} requests, ` +
          `${many.maxInFlight} in flight of ${Defaults.storeDeleteParallelism}): ${(one.ms / many.ms).toFixed(1)}x`,
      );
    }
  } finally {
    await fake.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

import avro from 'avsc';
import type { Command } from 'commander';
import { Defaults, HourglassError, sha256Hex } from '@hourglass/common';
import { createStore, type ObjectStore } from '@hourglass/storage';
import {
  assignWindow,
  leaseIdentity,
  leaseState,
  globalWatermark,
  manifestName,
  parseManifest,
  readCursor,
  readLeaseBoard,
  PUBLISH_FOLDER,
  STAGING,
  windowSizes,
  type Manifest,
} from '@hourglass/bucket-format';

/**
 * Commands that read the object store: `ls`, `cat`, `verify`, `status`. They only read,
 * so they are safe against a running pipeline. Exit codes: 0 ok, 1 not found or a check
 * failed, 2 usage, 3 the store was unreachable (see main.ts).
 */
interface StoreOption {
  store: string;
}

const storeOption = (cmd: Command): Command =>
  cmd.option(
    '-s, --store <url>',
    'object store: a directory, file:// or gs:// URL',
    process.env.HOURGLASS_STORE ?? Defaults.storeRoot,
  );

/** `ls`, `cat`, `verify`, `status` and their options: a declaration list for commander, one block per command (hence over 80 lines). */
export function registerDataCommands(program: Command): void {
  storeOption(program.command('ls').argument('<type>', 'event type'))
    .description('windows of a type: open (staging) or closed (manifest), with counts and sizes')
    .option('--json', 'one JSON object per window')
    .action(async (type: string, opts: StoreOption & { json?: boolean }) => {
      const rows = await listWindows(createStore(opts.store), type);
      if (rows.length === 0) throw new HourglassError('STORAGE_NOT_FOUND', `no windows of "${type}" in ${opts.store}`);
      if (opts.json) {
        for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      const header = ['WINDOW', 'STATUS', 'RECORDS', 'LATE', 'DUPLICATES', 'BYTES', 'FILES'];
      const table = rows.map((r) =>
        [r.window, r.status, r.records, r.late, r.duplicatesDropped, r.bytes, r.files].map(String),
      );
      printTable([header, ...table]);
    });

  storeOption(
    program
      .command('cat')
      .argument('<type>', 'event type')
      .argument('<window>', 'partition (dt=YYYY-MM-DD/hour=HH[/minute=MM]) or an ISO 8601 time inside it'),
  )
    .description('records of a closed window as JSON lines (read with the schema embedded in each file)')
    .action(async (type: string, window: string, opts: StoreOption) => {
      const store = createStore(opts.store);
      const { manifest } = await findManifest(store, type, window);
      for (const f of manifest.files) {
        const data = await mustGet(store, f.path);
        const records = await decodeContainer(data).catch((e: unknown) => {
          throw new HourglassError(
            'MANIFEST_MISMATCH',
            `${f.path}: ${unreadable(e)} (see hourglass verify ${type} ${window})`,
          );
        });
        for (const r of records) process.stdout.write(`${JSON.stringify(r, bigintSafe)}\n`);
      }
    });

  storeOption(
    program
      .command('verify')
      .argument('<type>', 'event type')
      .argument('<window>', 'partition or an ISO 8601 time inside it'),
  )
    .description('re-read the final files of a closed window and check them against its manifest')
    .action(async (type: string, window: string, opts: StoreOption) => {
      const store = createStore(opts.store);
      const { manifest, name } = await findManifest(store, type, window);
      const problems = await verifyManifest(store, manifest, (line) => process.stderr.write(`${line}\n`));
      if (problems.length > 0) {
        for (const p of problems) process.stdout.write(`MISMATCH ${p}\n`);
        throw new HourglassError('MANIFEST_MISMATCH', `${name}: ${problems.length} problem(s)`);
      }
      process.stdout.write(
        `ok ${name}: ${manifest.files.length} file(s), ${manifest.counts.records} records match the manifest\n`,
      );
    });

  storeOption(program.command('status'))
    .description('watermark, lag and last closed window per type; replicas and their leases')
    .option('-d, --dir <dir>', 'schema directory', process.env.HOURGLASS_SCHEMAS_DIR ?? Defaults.schemasDir)
    .action(async (opts: StoreOption & { dir: string }) => {
      const { SchemaRegistry } = await import('@hourglass/schemas');
      const store = createStore(opts.store);
      const now = Date.now();
      const rows: string[][] = [['TYPE', 'WATERMARK', 'LAG', 'LAST CLOSED', 'REPLICAS (state, watermark)']];
      const board = await readLeaseBoard(store); // every type's leases from one listing
      for (const type of SchemaRegistry.load(opts.dir).eventTypes()) {
        const leases = board.ofType(type);
        const cursor = await readCursor(store, type);
        const wm = globalWatermark(leases, now);
        rows.push([
          type,
          wm === undefined || !Number.isFinite(wm) ? '-' : new Date(wm).toISOString(),
          wm === undefined || !Number.isFinite(wm) ? '-' : `${Math.round((now - wm) / 1000)}s`,
          cursor ? new Date(cursor.lastClosed.start).toISOString() : '-',
          leases
            .map(
              (l) =>
                `${leaseIdentity(l)} (${leaseState(l, now)}, ${Number.isFinite(l.watermark) ? new Date(l.watermark).toISOString().slice(11, 19) : '-'})`,
            )
            .join(', ') || '-',
        ]);
      }
      printTable(rows);
    });
}

export interface WindowRow {
  window: string;
  status: 'open' | 'finalizing' | 'closed';
  records: number | string;
  late: number | string;
  duplicatesDropped: number | string;
  bytes: number;
  files: number;
}

export async function listWindows(store: ObjectStore, type: string): Promise<WindowRow[]> {
  const byWindow = new Map<string, WindowRow>();
  const row = (window: string): WindowRow => {
    let r = byWindow.get(window);
    if (!r) {
      r = { window, status: 'open', records: '?', late: '?', duplicatesDropped: '?', bytes: 0, files: 0 };
      byWindow.set(window, r);
    }
    return r;
  };
  for (const o of await store.list(`${type}/`)) {
    const slash = o.name.lastIndexOf('/');
    const r = row(o.name.slice(type.length + 1, slash));
    if (o.name.endsWith('/_SUCCESS')) {
      const m = parseManifest(await mustGet(store, o.name), o.name);
      Object.assign(r, {
        status: 'closed',
        records: m.counts.records,
        late: m.counts.late,
        duplicatesDropped: m.counts.duplicatesDropped,
      });
    } else {
      if (r.status === 'open') r.status = 'finalizing';
      r.bytes += o.size;
      r.files++;
    }
  }
  for (const o of await store.list(`${STAGING}/${type}/`)) {
    const rest = o.name.slice(`${STAGING}/${type}/`.length);
    // final files not yet published (early segments, or a close under way) wait in `_publish/`
    const unpublished = rest.indexOf(`/${PUBLISH_FOLDER}`);
    const window = unpublished >= 0 ? rest.slice(0, unpublished) : rest.slice(0, rest.lastIndexOf('/'));
    const r = byWindow.get(window) ?? row(window);
    if (unpublished < 0 || r.status === 'closed' || !o.name.endsWith('.avro')) continue;
    r.status = 'finalizing';
    r.bytes += o.size;
    r.files++;
  }
  return [...byWindow.values()].sort((a, b) => (a.window < b.window ? -1 : 1));
}

const PARTITION = /^dt=\d{4}-\d{2}-\d{2}\/hour=\d{2}(\/minute=\d{2})?$/;
/** An ISO 8601 date or date-time, as Date.parse reads it (no offset: local time). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

async function findManifest(
  store: ObjectStore,
  type: string,
  window: string,
): Promise<{ manifest: Manifest; name: string }> {
  let partition = window.replace(/^\/+|\/+$/g, '');
  if (!PARTITION.test(partition)) {
    // Date.parse alone also takes "dt=2026-01-01", "hour=00" or "12" as some (local) time.
    const t = ISO_TIME.test(window) ? Date.parse(window) : NaN;
    if (Number.isNaN(t))
      throw new HourglassError(
        'CONFIG_INVALID',
        `window "${window}" is neither dt=YYYY-MM-DD/hour=HH[/minute=MM] nor a time (YYYY-MM-DD[THH:MM[:SS[.sss]][Z|±HH:MM]])`,
      );
    // One manifest name per allowed window size (36 at most), not a listing of the whole type.
    const found = await (async () => {
      for (const name of new Set(windowSizes().map((size) => manifestName(type, assignWindow(t, size))))) {
        const data = await store.get(name);
        if (!data) continue;
        const m = parseManifest(data, name);
        if (m.window.startMs <= t && t < m.window.endMs) return m.partition.slice(type.length + 1);
      }
      return undefined;
    })();
    if (!found)
      throw new HourglassError(
        'STORAGE_NOT_FOUND',
        `no closed window of "${type}" contains ${new Date(t).toISOString()}`,
      );
    partition = found;
  }
  const name = `${type}/${partition}/_SUCCESS`;
  const data = await store.get(name);
  if (!data)
    throw new HourglassError(
      'STORAGE_NOT_FOUND',
      `${name} does not exist: the window is not closed (see hourglass ls ${type})`,
    );
  return { manifest: parseManifest(data, name), name };
}

export async function verifyManifest(
  store: ObjectStore,
  m: Manifest,
  progress: (line: string) => void = () => undefined,
): Promise<string[]> {
  const problems: string[] = [];
  let records = 0;
  let late = 0;
  for (const [i, f] of m.files.entries()) {
    progress(`verify: file ${i + 1}/${m.files.length} ${f.path}`);
    const data = await store.get(f.path);
    if (!data) {
      problems.push(`${f.path}: missing`);
      continue;
    }
    if (data.length !== f.bytes) problems.push(`${f.path}: ${data.length} bytes, manifest says ${f.bytes}`);
    const sha = sha256Hex(data);
    if (sha !== f.sha256) problems.push(`${f.path}: sha256 ${sha}, manifest says ${f.sha256}`);
    let rows: { meta: { gateway_ts: number } }[];
    try {
      rows = (await decodeContainer(data)) as typeof rows;
    } catch (e) {
      problems.push(`${f.path}: ${unreadable(e)}`);
      continue;
    }
    if (rows.length !== f.records) problems.push(`${f.path}: ${rows.length} records, manifest says ${f.records}`);
    for (const r of rows) {
      const ts = Number(r.meta.gateway_ts);
      if (ts < f.minGatewayTs || ts > f.maxGatewayTs) {
        problems.push(`${f.path}: gateway_ts ${ts} outside the manifest's [${f.minGatewayTs}, ${f.maxGatewayTs}]`);
        break;
      }
      if (!f.late && (ts < m.window.startMs || ts >= m.window.endMs)) {
        problems.push(`${f.path}: on-time record with gateway_ts ${ts} outside the window`);
        break;
      }
    }
    records += rows.length;
    if (f.late) late += rows.length;
  }
  if (records !== m.counts.records) problems.push(`files hold ${records} records, manifest counts ${m.counts.records}`);
  if (late !== m.counts.late) problems.push(`late files hold ${late} records, manifest counts ${m.counts.late}`);
  return problems;
}

const unreadable = (e: unknown): string =>
  `not a readable Avro container file (${e instanceof Error ? e.message : String(e)})`;

/** Any Avro object container file, read with only the schema embedded in it. */
export function decodeContainer(buf: Buffer): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const out: unknown[] = [];
    const decoder = new avro.streams.BlockDecoder();
    decoder.on('data', (r: unknown) => out.push(r));
    decoder.on('end', () => resolve(out));
    decoder.on('error', reject);
    decoder.end(buf);
  });
}

async function mustGet(store: ObjectStore, name: string): Promise<Buffer> {
  const data = await store.get(name);
  if (!data) throw new HourglassError('STORAGE_NOT_FOUND', `${name} does not exist`);
  return data;
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
}

import { cpSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeContainer } from '@hourglass/cli';
import { type Manifest, OcfWriter, schemaTextOf, syncMarkerFor } from '@hourglass/bucket-format';
import {
  type CliRun,
  CliPool,
  type Fixture,
  type Group,
  type WindowTruth,
  STACK_FRAME,
  BUILT_CLI,
  buildFixture,
  cliEnv,
  lines,
  registry,
  tempDir,
} from './support';

/**
 * `hourglass ls | cat | verify | status` as an operator runs them: the built CLI in a child
 * process, against a local store whose windows the consumer's own code wrote (staged container
 * files, then finalizeWindow). Every CLI run starts in beforeAll, three at a time; each test
 * awaits its own. It builds nothing itself: run `npx tsc -b` first (make test does).
 */

const pool = new CliPool(3);
const runs = new Map<string, Promise<CliRun>>();
const dirs: string[] = [];
let fx: Fixture;

/** A CLI run, started now; `store` goes in HOURGLASS_STORE unless the args name one. */
function start(key: string, args: string[], store: string | undefined): void {
  if (runs.has(key)) throw new Error(`duplicate run ${key}`);
  const run = pool.run(args, cliEnv(store === undefined ? {} : { HOURGLASS_STORE: store }));
  run.catch(() => undefined); // awaited by its test
  runs.set(key, run);
}

async function result(key: string): Promise<CliRun> {
  const run = runs.get(key);
  if (!run) throw new Error(`no run ${key}`);
  return run;
}

/** The stderr of a failed run: exactly one line, no stack trace. */
function oneLine(run: CliRun): string {
  expect(run.stderr).not.toMatch(STACK_FRAME);
  const err = lines(run.stderr);
  expect(err).toHaveLength(1);
  return err[0]!;
}

type GroupName = 'minute' | 'hour' | 'quarter' | 'day';
const win = (f: Fixture, type: GroupName, i: number): WindowTruth => f[type].windows[i]!;
const manifestOf = (w: WindowTruth): Manifest => {
  if (!w.manifest) throw new Error(`${w.partition} is open`);
  return w.manifest;
};

// ------------------------------------------------------------------------------------------------
// Cases. Windows (2026-01-01, UTC): track_played (1 minute) A = 00:00 closed, B = 00:01 closed
// with a late file, C = 00:02 open; page_viewed (1 hour) H0 = 00:00 closed and empty,
// H1 = 01:00 closed, H2 = 02:00 finalizing; search_performed (15 minutes) 00:15 closed;
// ab_exposure (1 day) closed.

type Found = { type: GroupName; window: number };
type CatCase = [name: string, type: string, window: string, expected: Found | { code: 1 | 2; stderr: RegExp }];

const NOT_CLOSED = (type: string, iso: string): RegExp =>
  new RegExp(`^STORAGE_NOT_FOUND: no closed window of "${type}" contains ${iso.replace(/\./g, '\\.')}$`);

const catCases: CatCase[] = [
  ['partition A', 'track_played', 'dt=2026-01-01/hour=00/minute=00', { type: 'minute', window: 0 }],
  ['partition B (late file)', 'track_played', 'dt=2026-01-01/hour=00/minute=01', { type: 'minute', window: 1 }],
  ['partition with slashes', 'track_played', '/dt=2026-01-01/hour=00/minute=01/', { type: 'minute', window: 1 }],
  ['1m: time at the start of A', 'track_played', '2026-01-01T00:00:00Z', { type: 'minute', window: 0 }],
  ['1m: time inside A', 'track_played', '2026-01-01T00:00:30.5Z', { type: 'minute', window: 0 }],
  ['1m: last ms of A', 'track_played', '2026-01-01T00:00:59.999Z', { type: 'minute', window: 0 }],
  ['1m: end of A = start of B', 'track_played', '2026-01-01T00:01:00Z', { type: 'minute', window: 1 }],
  ['1m: time with an offset', 'track_played', '2026-01-01T01:01:42+01:00', { type: 'minute', window: 1 }],
  ['1m: time with a space and no seconds', 'track_played', '2026-01-01 00:01Z', { type: 'minute', window: 1 }],
  // no offset: the CLI's local time (TZ=Asia/Kolkata, +05:30, in every run here)
  ['1m: time without an offset', 'track_played', '2026-01-01T05:30:59', { type: 'minute', window: 0 }],
  ['1h: a date alone (UTC midnight)', 'page_viewed', '2026-01-01', { type: 'hour', window: 0 }],
  ['1h: partition H1', 'page_viewed', 'dt=2026-01-01/hour=01', { type: 'hour', window: 1 }],
  ['1h: empty window by partition', 'page_viewed', 'dt=2026-01-01/hour=00', { type: 'hour', window: 0 }],
  ['1h: empty window by time', 'page_viewed', '2026-01-01T00:59:59.999Z', { type: 'hour', window: 0 }],
  ['1h: start of H1', 'page_viewed', '2026-01-01T01:00:00.000Z', { type: 'hour', window: 1 }],
  ['1h: inside H1', 'page_viewed', '2026-01-01T01:37:00Z', { type: 'hour', window: 1 }],
  ['1h: last ms of H1', 'page_viewed', '2026-01-01T01:59:59.999Z', { type: 'hour', window: 1 }],
  // other window sizes: the manifest of a 15-minute window (1-minute name minute=29 absent), and of
  // a day (its name dt=…/hour=00 is also the 1-hour name of 00:00; the 1-hour name hour=13 is absent)
  ['15m: last ms of 00:15-00:30', 'search_performed', '2026-01-01T00:29:59.999Z', { type: 'quarter', window: 0 }],
  ['1d: afternoon of the day', 'ab_exposure', '2026-01-01T13:00:00Z', { type: 'day', window: 0 }],
  [
    '15m: time in no closed window',
    'search_performed',
    '2026-01-01T00:14:59.999Z',
    { code: 1, stderr: NOT_CLOSED('search_performed', '2026-01-01T00:14:59.999Z') },
  ],
  [
    '1m: time in the open window',
    'track_played',
    '2026-01-01T00:02:30Z',
    { code: 1, stderr: NOT_CLOSED('track_played', '2026-01-01T00:02:30.000Z') },
  ],
  [
    '1m: time before every window',
    'track_played',
    '2025-12-31T23:59:59.999Z',
    { code: 1, stderr: NOT_CLOSED('track_played', '2025-12-31T23:59:59.999Z') },
  ],
  [
    '1h: time in the finalizing window',
    'page_viewed',
    '2026-01-01T02:00:00Z',
    { code: 1, stderr: NOT_CLOSED('page_viewed', '2026-01-01T02:00:00.000Z') },
  ],
  [
    '1h: partition of the finalizing window',
    'page_viewed',
    'dt=2026-01-01/hour=02',
    { code: 1, stderr: /^STORAGE_NOT_FOUND: page_viewed\/dt=2026-01-01\/hour=02\/_SUCCESS does not exist/ },
  ],
  [
    '1h: a minute partition of an hourly type',
    'page_viewed',
    'dt=2026-01-01/hour=01/minute=00',
    { code: 1, stderr: /^STORAGE_NOT_FOUND: page_viewed\/dt=2026-01-01\/hour=01\/minute=00\/_SUCCESS does not exist/ },
  ],
  [
    'partition of the open window',
    'track_played',
    'dt=2026-01-01/hour=00/minute=02',
    {
      code: 1,
      stderr:
        /^STORAGE_NOT_FOUND: track_played\/dt=2026-01-01\/hour=00\/minute=02\/_SUCCESS does not exist: the window is not closed \(see hourglass ls track_played\)$/,
    },
  ],
  [
    'unknown type',
    'no_such_type',
    '2026-01-01T00:00:30Z',
    { code: 1, stderr: NOT_CLOSED('no_such_type', '2026-01-01T00:00:30.000Z') },
  ],
  ...['yesterday', 'dt=2026-01-01', 'dt=2026-01-01/hour=0', 'hour=00', '12'].map((w): CatCase => [
    `malformed window ${JSON.stringify(w)}`,
    'track_played',
    w,
    {
      code: 2,
      stderr: new RegExp(
        `^CONFIG_INVALID: window "${w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" is neither dt=YYYY-MM-DD/hour=HH\\[/minute=MM\\] nor a time`,
      ),
    },
  ]),
];

const corruptions = [
  'flip a schema byte',
  'flip a sync marker byte',
  'truncate',
  'delete',
  'one record fewer',
] as const;
type Corruption = (typeof corruptions)[number];
const corruptStores = new Map<Corruption, { root: string; path: string; manifest: Manifest }>();

const usageCases: [name: string, args: string[], stderr: RegExp][] = [
  ['no command', [], /^Usage: hourglass/],
  ['unknown command', ['frobnicate'], /^error: unknown command 'frobnicate'/],
  ['ls without a type', ['ls'], /^error: missing required argument 'type'/],
  ['cat without a window', ['cat', 'track_played'], /^error: missing required argument 'window'/],
  ['verify without arguments', ['verify'], /^error: missing required argument 'type'/],
  ['cat with an extra argument', ['cat', 'track_played', 'dt=2026-01-01/hour=00', 'x'], /^error: too many arguments/],
  ['unknown option', ['ls', 'track_played', '--bogus'], /^error: unknown option '--bogus'/],
  [
    'store flag without a value',
    ['ls', 'track_played', '--store'],
    /^error: option '-s, --store <url>' argument missing/,
  ],
  [
    'unsupported store URL',
    ['ls', 'track_played', '--store', 'ftp://host/x'],
    /^CONFIG_INVALID: store URL "ftp:\/\/host\/x"/,
  ],
  [
    'bad bucket name',
    ['cat', 'track_played', '2026-01-01T00:00:30Z', '-s', 'gs://Bad_Bucket/x'],
    /^CONFIG_INVALID: store URL/,
  ],
];

beforeAll(async () => {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run \`npx tsc -b\` first (make test does)`);
  const root = tempDir('store');
  dirs.push(root);
  fx = await buildFixture(root);

  start('ls minute table', ['ls', 'track_played'], root);
  start('ls minute json', ['ls', 'track_played', '--json'], root);
  // the flag wins over HOURGLASS_STORE
  const empty = tempDir('empty');
  dirs.push(empty);
  start('ls hour json', ['ls', 'page_viewed', '--json', '--store', root], empty);
  start('ls unknown type', ['ls', 'no_such_type'], root);
  start('ls empty store', ['ls', 'track_played', '-s', `file://${empty}`], undefined);
  for (const [name, type, window] of catCases) start(`cat ${name}`, ['cat', type, window], root);
  start('verify A by partition', ['verify', 'track_played', win(fx, 'minute', 0).partition], root);
  start('verify B by time', ['verify', 'track_played', '2026-01-01T00:01:59Z'], root);
  start('verify H0 (empty)', ['verify', 'page_viewed', '2026-01-01T00:10:00Z'], root);
  start('verify H1', ['verify', 'page_viewed', 'dt=2026-01-01/hour=01', '--store', root], undefined);
  start('verify open window', ['verify', 'track_played', 'dt=2026-01-01/hour=00/minute=02'], root);
  start('status', ['status'], root);
  start('status of an empty store', ['status', '--store', empty], undefined);
  for (const [name, args] of usageCases) start(`usage ${name}`, args, root);

  // verify on copies of the store, each with one final file damaged
  const A = manifestOf(win(fx, 'minute', 0));
  const B = manifestOf(win(fx, 'minute', 1));
  for (const c of corruptions) {
    const copy = tempDir('corrupt');
    dirs.push(copy);
    cpSync(root, copy, { recursive: true });
    const target = {
      'flip a schema byte': { manifest: A, file: A.files[0]! },
      'flip a sync marker byte': { manifest: A, file: A.files[0]! },
      truncate: { manifest: B, file: B.files.find((f) => !f.late)! },
      delete: { manifest: B, file: B.files.find((f) => f.late)! },
      'one record fewer': { manifest: A, file: A.files[A.files.length - 1]! },
    }[c];
    const file = join(copy, ...target.file.path.split('/'));
    const data = readFileSync(file);
    if (c === 'flip a schema byte' || c === 'flip a sync marker byte') {
      // a letter of a doc string in the embedded schema: the file still decodes to the same
      // records; the last byte (the last block's sync marker): the file no longer decodes
      const at = c === 'flip a schema byte' ? data.indexOf('Gateway receive time') : data.length - 1;
      if (at <= 0) throw new Error(`${target.file.path}: no schema doc to change`);
      data[at] = data[at]! ^ 0x20;
      writeFileSync(file, data);
    } else if (c === 'truncate') truncateSync(file, data.length - 100);
    else if (c === 'delete') rmSync(file);
    else {
      // a valid container of the same schema that holds one record fewer
      const records = await decodeContainer(data);
      const latest = registry.get('track_played').latest;
      const writer = new OcfWriter({
        type: latest.type,
        schema: schemaTextOf(latest),
        syncMarker: syncMarkerFor(target.file.path),
        deflateLevel: 6,
        blockBytes: 2048,
      });
      for (const r of records.slice(1)) writer.appendRecord(r);
      writeFileSync(file, await writer.finish());
    }
    corruptStores.set(c, { root: copy, path: target.file.path, manifest: target.manifest });
    start(`verify ${c}`, ['verify', 'track_played', target.manifest.partition.slice('track_played/'.length)], copy);
  }
  start(
    'cat unreadable file',
    ['cat', 'track_played', '2026-01-01T00:00:10Z'],
    corruptStores.get('flip a sync marker byte')!.root,
  );
});

afterAll(async () => {
  await Promise.allSettled(runs.values());
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('the fixture: the consumer wrote the manifests the cases expect', () => {
  for (const group of [fx.minute, fx.hour, fx.quarter, fx.day]) {
    for (const w of group.windows) {
      if (w.status !== 'closed') {
        expect(existsSync(join(fx.root, group.type, ...w.partition.split('/'), '_SUCCESS'))).toBe(false);
        expect(existsSync(join(fx.root, '_staging', group.type, ...w.partition.split('/')))).toBe(true);
        if (w.status === 'finalizing') expect(w.final?.files).toBe(1);
        continue;
      }
      const m = manifestOf(w);
      expect({ partition: m.partition, ...m.counts }).toMatchObject({
        partition: `${group.type}/${w.partition}`,
        ...w.counts,
      });
      expect(m.counts.records).toBe(w.ids.size);
    }
  }
  // the windows that the cases rely on: several final files, a late file, an empty window
  expect(manifestOf(win(fx, 'minute', 0)).files.length).toBeGreaterThan(1);
  expect(manifestOf(win(fx, 'minute', 1)).files.filter((f) => f.late)).toHaveLength(1);
  expect(manifestOf(win(fx, 'hour', 0)).files).toEqual([]);
});

describe('hourglass ls', () => {
  /** The rows `ls --json` must print for a group: counts and sizes from the manifests. */
  function expectedRows(group: Group): unknown[] {
    return group.windows.map((w) =>
      w.status !== 'closed'
        ? {
            window: w.partition,
            status: w.status,
            records: '?',
            late: '?',
            duplicatesDropped: '?',
            ...(w.final ?? { bytes: 0, files: 0 }),
          }
        : {
            window: w.partition,
            status: 'closed',
            records: w.counts!.records,
            late: w.counts!.late,
            duplicatesDropped: w.counts!.duplicatesDropped,
            bytes: manifestOf(w).files.reduce((n, f) => n + f.bytes, 0),
            files: manifestOf(w).files.length,
          },
    );
  }

  test.each([
    ['ls minute json', 'minute'],
    ['ls hour json', 'hour'],
  ] as const)('%s: one JSON row per window, with status and the manifest counts', async (key, group) => {
    const run = await result(key);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(lines(run.stdout).map((l) => JSON.parse(l) as unknown)).toEqual(expectedRows(fx[group]));
  });

  test('the table: a header and one row per window, in window order', async () => {
    const run = await result('ls minute table');
    expect(run.code).toBe(0);
    const rows = lines(run.stdout).map((l) => l.split(/\s+/));
    expect(rows[0]).toEqual(['WINDOW', 'STATUS', 'RECORDS', 'LATE', 'DUPLICATES', 'BYTES', 'FILES']);
    expect(rows.slice(1)).toEqual(
      expectedRows(fx.minute).map((r) => {
        const o = r as Record<string, unknown>;
        return [o.window, o.status, o.records, o.late, o.duplicatesDropped, o.bytes, o.files].map(String);
      }),
    );
  });

  test.each([
    ['ls unknown type', /^STORAGE_NOT_FOUND: no windows of "no_such_type" in \//],
    ['ls empty store', /^STORAGE_NOT_FOUND: no windows of "track_played" in file:\/\//],
  ])('%s: exit 1 with one line', async (key, stderr) => {
    const run = await result(key);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(oneLine(run)).toMatch(stderr);
  });
});

describe('hourglass cat', () => {
  test.each(catCases)('%s (%s %s)', async (name, _type, _window, expected) => {
    const run = await result(`cat ${name}`);
    if ('code' in expected) {
      expect(run.stdout).toBe('');
      expect(oneLine(run)).toMatch(expected.stderr);
      expect(run.code).toBe(expected.code);
      return;
    }
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const w = win(fx, expected.type, expected.window);
    const m = manifestOf(w);
    const records = lines(run.stdout).map((l) => JSON.parse(l) as { meta: { event_id: string; gateway_ts: number } });
    const ids = records.map((r) => r.meta.event_id);
    expect(ids).toHaveLength(w.ids.size); // no duplicate comes out
    expect(new Set(ids)).toEqual(w.ids);
    // late records (older gateway_ts) come out too, and only those are outside the window
    const outside = records.filter((r) => r.meta.gateway_ts < m.window.startMs || r.meta.gateway_ts >= m.window.endMs);
    expect(outside).toHaveLength(m.counts.late);
  });
});

test('cat of a closed window whose file does not decode: exit 1 naming the file', async () => {
  const run = await result('cat unreadable file');
  const { path } = corruptStores.get('flip a sync marker byte')!;
  expect(run.stdout).toBe(''); // the damaged file is the window's first
  expect(oneLine(run)).toBe(
    `MANIFEST_MISMATCH: ${path}: not a readable Avro container file (invalid sync marker) (see hourglass verify track_played 2026-01-01T00:00:10Z)`,
  );
  expect(run.code).toBe(1);
});

describe('hourglass verify', () => {
  test.each([
    ['verify A by partition', 'minute', 0],
    ['verify B by time', 'minute', 1],
    ['verify H0 (empty)', 'hour', 0],
    ['verify H1', 'hour', 1],
  ] as const)('%s: exit 0, every file re-read', async (key, group, i) => {
    const run = await result(key);
    const m = manifestOf(win(fx, group, i));
    expect(run.code).toBe(0);
    expect(lines(run.stdout)).toEqual([
      `ok ${m.partition}/_SUCCESS: ${m.files.length} file(s), ${m.counts.records} records match the manifest`,
    ]);
    expect(lines(run.stderr)).toEqual(m.files.map((f, n) => `verify: file ${n + 1}/${m.files.length} ${f.path}`));
  });

  test('an open window: exit 1, nothing to verify', async () => {
    const run = await result('verify open window');
    expect(run.code).toBe(1);
    expect(oneLine(run)).toMatch(/^STORAGE_NOT_FOUND: .*minute=02\/_SUCCESS does not exist: the window is not closed/);
  });

  test.each(corruptions)('%s in one final file: exit 1, the file and the problem named', async (c) => {
    const run = await result(`verify ${c}`);
    const { path, manifest: m } = corruptStores.get(c)!;
    const f = m.files.find((x) => x.path === path)!;
    const mismatches = lines(run.stdout);
    const sha = new RegExp(`^MISMATCH ${path}: sha256 [0-9a-f]{64}, manifest says ${f.sha256}$`);
    const totals = (held: RegExp | number): RegExp =>
      new RegExp(
        `^MISMATCH files hold ${typeof held === 'number' ? held : held.source} records, manifest counts ${m.counts.records}$`,
      );
    const expected: (string | RegExp)[] = {
      delete: [
        `MISMATCH ${path}: missing`,
        `MISMATCH files hold ${m.counts.records - f.records} records, manifest counts ${m.counts.records}`,
        `MISMATCH late files hold 0 records, manifest counts ${m.counts.late}`,
      ],
      // avsc reads a truncated file as far as its last whole block: fewer records, no error
      truncate: [
        `MISMATCH ${path}: ${f.bytes - 100} bytes, manifest says ${f.bytes}`,
        sha,
        new RegExp(`^MISMATCH ${path}: \\d+ records, manifest says ${f.records}$`),
        totals(/\d+/),
      ],
      'flip a schema byte': [sha],
      'flip a sync marker byte': [
        sha,
        `MISMATCH ${path}: not a readable Avro container file (invalid sync marker)`,
        totals(m.counts.records - f.records),
      ],
      'one record fewer': [
        new RegExp(`^MISMATCH ${path}: \\d+ bytes, manifest says ${f.bytes}$`),
        sha,
        `MISMATCH ${path}: ${f.records - 1} records, manifest says ${f.records}`,
        totals(m.counts.records - 1),
      ],
    }[c];
    expect(mismatches).toHaveLength(expected.length);
    mismatches.forEach((line, i) => {
      const want = expected[i]!;
      if (typeof want === 'string') expect(line).toBe(want);
      else expect(line).toMatch(want);
    });
    const err = lines(run.stderr);
    expect(err.filter((l) => l.startsWith('verify: file '))).toHaveLength(m.files.length);
    expect(err.filter((l) => !l.startsWith('verify: file '))).toEqual([
      `MANIFEST_MISMATCH: ${m.partition}/_SUCCESS: ${expected.length} problem(s)`,
    ]);
    expect(run.stderr).not.toMatch(STACK_FRAME);
    expect(run.code).toBe(1);
  });
});

describe('hourglass status', () => {
  test('names every type, and for track_played its watermark, last closed window and each lease', async () => {
    const run = await result('status');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const rows = lines(run.stdout).map((l) => l.split(/ {2,}/));
    expect(rows[0]).toEqual(['TYPE', 'WATERMARK', 'LAG', 'LAST CLOSED', 'REPLICAS (state, watermark)']);
    const byType = new Map(rows.slice(1).map((r) => [r[0]!, r.slice(1)]));
    expect([...byType.keys()].sort()).toEqual(registry.eventTypes().slice().sort());
    const [watermark, lag, lastClosed, replicas] = byType.get('track_played')!;
    expect(watermark).toBe(new Date(fx.leases.globalWatermark).toISOString()); // the stale lease still counts
    const lagSeconds = Number(/^(\d+)s$/.exec(lag!)?.[1]);
    expect(Math.abs(lagSeconds - (Date.now() - fx.leases.globalWatermark) / 1000)).toBeLessThan(120);
    expect(lastClosed).toBe('2026-01-01T00:01:00.000Z');
    expect(replicas).toBe(
      `${fx.leases.expired}.i1 (expired, 00:00:00), ${fx.leases.live}.i1 (live, 00:02:30), ${fx.leases.stale}.i1 (stale, 00:02:10)`,
    );
    expect(byType.get('page_viewed')).toEqual(['-', '-', '-', '-']);
  });

  test('an empty store: every type with nothing known, exit 0', async () => {
    const run = await result('status of an empty store');
    expect(run.code).toBe(0);
    const rows = lines(run.stdout)
      .slice(1)
      .map((l) => l.split(/ {2,}/));
    expect(rows.map((r) => r[0]).sort()).toEqual(registry.eventTypes().slice().sort());
    for (const r of rows) expect(r.slice(1)).toEqual(['-', '-', '-', '-']);
  });
});

describe('usage errors exit 2', () => {
  test.each(usageCases)('%s', async (name, _args, stderr) => {
    const run = await result(`usage ${name}`);
    expect(run.stdout).toBe('');
    expect(run.stderr).not.toMatch(STACK_FRAME);
    expect(lines(run.stderr)[0]).toMatch(stderr);
    expect(run.code).toBe(2);
  });
});

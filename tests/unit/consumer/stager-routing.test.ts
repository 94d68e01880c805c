import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ManualClock, silentLogger } from '@hourglass/common';
import { type EventRecord, SchemaRegistry, type SchemaVersion, encodeRecords } from '@hourglass/schemas';
import { LocalDirectoryStore } from '@hourglass/storage';
import {
  type IntervalWindow,
  LATE_PREFIX,
  eventIdOf,
  parseStagedName,
  routeEvent,
  scanContainer,
  stagingTypePrefix,
} from '@hourglass/bucket-format';
import { Stager } from '@hourglass/consumer/stage/stager';
import { ReplicaWatermark } from '@hourglass/consumer/watermark/replica-watermark';
import { createConsumerMetrics } from '@hourglass/consumer/metrics';

/**
 * Stager.handle routes each event of a message with routeEvent, reusing the last route for the
 * next events of the same own window. Whatever the order of the events (runs of one window, jumps
 * back and forth, late ones among on-time ones, window edges), every event must land once, in the
 * staged file of the window and late flag routeEvent gives it with the watermark and cursor the
 * stager saw; on both decode paths (datums of the newest schema scanned, an older one decoded).
 */
const TYPE = 'track_played';
const BASE = Date.UTC(2026, 0, 15, 12, 0, 0);
const registry = SchemaRegistry.load(path.join(__dirname, '../../../schemas'));
const versions = registry.get(TYPE).versions;
const latest = registry.get(TYPE).latest;
const roots: string[] = [];
afterAll(() => {
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  /** Window index relative to BASE. */
  k: number;
  offsets: number[];
}
interface Msg {
  /** Watermark raised to BASE + this before the message (null: left as it is, -Infinity at first). */
  wmOffset: number | null;
  /** Index of the last closed window, relative to BASE (null: none closed). */
  lastClosedK: number | null;
  /** Index into the type's schema versions the bundle is written with. */
  writer: number;
  runs: Run[];
}
interface Scenario {
  windowMs: number;
  graceMs: number;
  maxEvents: number;
  messages: Msg[];
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    windowMs: fc.constantFrom(60_000, 300_000),
    graceMs: fc.constantFrom(0, 2_000, 45_000),
    maxEvents: fc.constantFrom(5, 100_000),
  })
  .chain(({ windowMs, graceMs, maxEvents }) => {
    const offset = fc.oneof(fc.constantFrom(0, 1, windowMs - 1), fc.integer({ min: 0, max: windowMs - 1 }));
    // windows -3..6 around BASE, each run a step from the last (often to the next or previous window, so a run
    // may start on the first ms right after the last one ended); a small pool, so runs revisit windows (A, B, A, C)
    const step = fc.oneof(fc.constantFrom(1, -1, 0), fc.integer({ min: 0, max: 9 }));
    const runs = fc
      .array(fc.record({ step, fromStart: fc.boolean(), offsets: fc.array(offset, { minLength: 1, maxLength: 12 }) }), {
        minLength: 1,
        maxLength: 40,
        size: 'medium',
      })
      .map((steps): Run[] => {
        let k = 0;
        return steps.map(({ step, fromStart, offsets }) => {
          k = ((((k + 3 + step) % 10) + 10) % 10) - 3;
          return { k, offsets: fromStart ? [0, ...offsets] : offsets };
        });
      });
    // the watermark lands anywhere in windows 0..4, often exactly on a closability edge (end + grace ± 1)
    const wm = fc.tuple(
      fc.integer({ min: 0, max: 4 }),
      fc.oneof(fc.constantFrom(-1, 0, 1), fc.integer({ min: 0, max: windowMs - 1 })),
    );
    const msg: fc.Arbitrary<Msg> = fc.record({
      wmOffset: fc.option(
        wm.map(([j, d]) => j * windowMs + graceMs + d),
        { nil: null },
      ),
      lastClosedK: fc.option(fc.integer({ min: -4, max: 5 }), { nil: null }),
      writer: fc.integer({ min: 0, max: versions.length - 1 }),
      runs,
    });
    return fc.record({
      windowMs: fc.constant(windowMs),
      graceMs: fc.constant(graceMs),
      maxEvents: fc.constant(maxEvents),
      messages: fc.array(msg, { minLength: 1, maxLength: 3 }),
    });
  });

/** A lower-case UUID (the decoder requires one) that numbers the event. */
const eventId = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

const PAYLOAD = { user_id: 'user-1', track_id: 'spotify:track:1', ms_played: 1000, shuffle: false, country: 'SE' };
const ENUMS = { reason_start: 'TRACK_DONE', reason_end: 'TRACK_DONE', platform: 'ANDROID' };
const V2 = { offline: false, context_uri: null };

function record(writer: SchemaVersion, n: number, gatewayTs: number): EventRecord {
  const meta = { event_id: eventId(n), gateway_ts: gatewayTs, client_ts: null, gateway_id: 'routing-test' };
  return { meta, ...PAYLOAD, ...ENUMS, ...(writer.version >= 2 ? V2 : {}) };
}

type Placed = { start: number; late: boolean; gatewayTs: number };

/** Every staged event, by event id: the window and late flag of its file (duplicates fail). */
async function stagedEvents(store: LocalDirectoryStore, windowMs: number): Promise<Map<string, Placed>> {
  const placed = new Map<string, Placed>();
  for (const { name } of await store.list(stagingTypePrefix(TYPE))) {
    const parsed = parseStagedName(TYPE, name, windowMs);
    if (!parsed) throw new Error(`not a staged file name: ${name}`);
    const late = parsed.file.startsWith(LATE_PREFIX);
    const data = await store.get(name);
    if (!data) throw new Error(`${name} listed but absent`);
    await scanContainer(data, name, latest, (datum) => {
      const id = eventIdOf(datum);
      if (placed.has(id)) throw new Error(`${id} staged twice (again in ${name})`);
      placed.set(id, { start: parsed.window.start, late, gatewayTs: datum.gatewayTs });
    });
  }
  return placed;
}

async function check(s: Scenario): Promise<void> {
  const { windowMs, graceMs, maxEvents } = s;
  const dir = mkdtempSync(path.join(tmpdir(), 'hourglass-stager-routing-'));
  roots.push(dir);
  const store = new LocalDirectoryStore(dir);
  const clock = new ManualClock(BASE + 30 * 60_000);
  const watermark = new ReplicaWatermark({ idleAfterMs: 5000, maxPublishDelayMs: 1000 }, clock.now());
  let lastClosed: IntervalWindow | undefined;
  const scope = { eventType: TYPE, replicaId: 'routing', incarnation: 'test', windowMs, graceMs };
  const stage = { maxEvents, maxBytes: 1 << 26, maxAgeMs: 60_000, blockBytes: 4096, deflateLevel: 0 };
  const stager = new Stager(
    scope,
    { ...stage, writeAttempts: 1, maxHoldMs: 600_000 },
    {
      store,
      registry,
      clock,
      logger: silentLogger,
      metrics: createConsumerMetrics(),
      watermark,
      lastClosed: () => lastClosed,
      ensureLease: async () => undefined,
    },
  );

  const expected = new Map<string, { ts: number; window: IntervalWindow; late: boolean }>();
  let expectedLate = 0;
  let n = 0;
  let acked = 0;
  let nacked = 0;
  for (const [m, msg] of s.messages.entries()) {
    if (msg.wmOffset !== null) watermark.raiseTo(BASE + msg.wmOffset);
    lastClosed =
      msg.lastClosedK === null
        ? undefined
        : { start: BASE + msg.lastClosedK * windowMs, end: BASE + (msg.lastClosedK + 1) * windowMs };
    const writer = versions[msg.writer]!;
    const records: EventRecord[] = [];
    for (const run of msg.runs) {
      for (const offset of run.offsets) {
        if (records.length < 200) records.push(record(writer, n++, BASE + run.k * windowMs + offset));
      }
    }
    const { data, attributes } = encodeRecords(writer, records, 'null');
    stager.handle({ id: String(m), data, attributes, ack: () => acked++, nack: () => nacked++ });
    // handle's observe() never moves the value: this is the very watermark routeEvent was given
    const wm = watermark.value;
    for (const r of records) {
      const route = routeEvent(r.meta.gateway_ts, wm, windowMs, graceMs, lastClosed);
      expected.set(r.meta.event_id, { ts: r.meta.gateway_ts, ...route });
      if (route.late) expectedLate++;
    }
  }
  await stager.flushAll();

  const placed = await stagedEvents(store, windowMs);
  expect(placed.size).toBe(expected.size);
  for (const [id, want] of expected) {
    const got = placed.get(id);
    // the id and gateway_ts on both sides, so a failure names the event
    expect({ id, ts: got?.gatewayTs, start: got?.start, late: got?.late }).toEqual({
      id,
      ts: want.ts,
      start: want.window.start,
      late: want.late,
    });
  }
  expect(stager.stats.events).toBe(expected.size);
  expect(stager.stats.staged).toBe(expected.size);
  expect(stager.stats.late).toBe(expectedLate);
  expect([acked, nacked, stager.stats.deadLettered]).toEqual([s.messages.length, 0, 0]);
  rmSync(dir, { recursive: true, force: true });
}

describe('Stager routing', () => {
  test('every event is staged once, in the window and late buffer routeEvent gives it', async () => {
    await fc.assert(fc.asyncProperty(scenario, check), { seed: 42, numRuns: 30 });
  });

  test('a message jumping between on-time and late windows (A, B, A, late, C, A)', async () => {
    const W = 60_000;
    const run = (k: number, ...offsets: number[]): Run => ({ k, offsets });
    await check({
      windowMs: W,
      graceMs: 2_000,
      maxEvents: 100_000,
      messages: [
        {
          // windows ..1 closable, 2 and up open; window 3 on its last ms then 4 on its first
          wmOffset: 2 * W + 2_000,
          lastClosedK: null,
          writer: versions.length - 1,
          runs: [
            run(2, 0, 5),
            run(3, W - 1),
            run(2, 7),
            run(-1, 3, 4),
            run(2, 8),
            run(3, 0),
            run(4, 0),
            run(2, W - 1),
            run(0, 1),
            run(1, W - 1),
            run(2, 0, 2),
          ],
        },
        {
          // the cursor is ahead of this replica's watermark: window 3 is closed too (late, to 4)
          wmOffset: null,
          lastClosedK: 3,
          writer: 0,
          runs: [run(3, 1), run(5, 0), run(3, 2), run(2, 9), run(5, W - 1), run(4, 3)],
        },
      ],
    });
  });
});

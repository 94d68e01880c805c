import { Defaults, type Duration, ManualClock } from '@hourglass/common';
import { LocalDirectoryStore } from '@hourglass/storage';
import { type FinalizeStep } from '@hourglass/consumer';
import type { EventRecord } from '@hourglass/schemas';
import {
  assignWindow,
  earlyPlanName,
  type IntervalWindow,
  manifestName,
  publishDir,
  readLeases,
  stagingDir,
} from '@hourglass/bucket-format';
import { MINUTE, T0, auditType, countAgainst, publishedOf, tempDir } from './support';
import { type FakeMessageLog, GRACE, TYPE, bundle, records, registry, runtime } from './runtime-support';

/** A started runtime whose early segments before a window's end wait for 64 KiB of staged data. */
async function minBytesRuntime(name: string) {
  const store = new LocalDirectoryStore(tempDir(name));
  const clock = new ManualClock(T0 + 15_000);
  const rt = runtime(store, clock, 'r1', undefined, 600_000, TYPE, { earlySegmentMinBytes: 64 * 1024 });
  await rt.start();
  return { store, clock, rt, log: { acked: 0, nacked: 0 }, w: assignWindow(T0, MINUTE) };
}

/** One event staged at the window's last second, then the clock past the grace: the window closes. */
async function stragglerThenClose(
  rt: ReturnType<typeof runtime>,
  clock: ManualClock,
  log: FakeMessageLog,
  w: IntervalWindow,
): Promise<EventRecord[]> {
  const straggler = records(1, w.start + 59_000, 1);
  rt.stager.handle(bundle(log, straggler));
  await rt.stager.flushAll();
  clock.set(w.end + GRACE + 3_000);
  await rt.tick();
  await rt.closeWindows();
  expect(rt.closed.map((c) => c.window.start)).toEqual([w.start]);
  return straggler;
}

/** Closing through the type runtime: late events, cursors, early segments, leases and replicas. */
describe('closing through the type runtime', () => {
  test('late events go to the earliest open window; late copies of closed events are dropped', async () => {
    const store = new LocalDirectoryStore(tempDir('late'));
    const clock = new ManualClock(T0 + 3 * MINUTE);
    const rt = runtime(store, clock);
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    const first = [...records(50, T0, MINUTE), ...records(50, T0 + MINUTE, MINUTE)];
    rt.stager.handle(bundle(log, first));
    await rt.stager.flushAll();
    // idle: the watermark follows the clock (now - 1 s) and windows 0 and 1 close
    clock.advance(3_000);
    await rt.tick();
    await rt.closeWindows();
    expect(rt.closed.map((c) => c.window.start)).toEqual([T0, T0 + MINUTE]);
    expect(rt.lastClosed()).toEqual({ start: T0 + MINUTE, end: T0 + 2 * MINUTE });

    // window 0 and 1 are closed: new old events are late, and copies of closed events are duplicates
    const lateNew = records(10, T0 + 1000, 1000);
    const lateCopies = first.slice(0, 5).concat(first.slice(60, 65));
    rt.stager.handle(bundle(log, [...lateNew, ...lateCopies]));
    const onTime = records(10, T0 + 3 * MINUTE, 1000);
    rt.stager.handle(bundle(log, onTime));
    await rt.stager.flushAll();
    expect(rt.stager.stats.late).toBe(20);
    clock.advance(2 * MINUTE);
    await rt.tick();
    await rt.closeWindows();

    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    expect(audit.windows.map((w) => w.manifest.window.startMs)).toEqual([0, 1, 2, 3].map((i) => T0 + i * MINUTE));
    const w2 = audit.windows[2]!.manifest; // earliest open window when the late events came
    expect(w2.counts).toMatchObject({ onTime: 0, late: 10, duplicatesDropped: 10, duplicatesOfClosedWindows: 10 });
    expect(audit.windows[3]!.manifest.counts).toMatchObject({ onTime: 10, late: 0 });
    const published = publishedOf([...first, ...lateNew, ...onTime]);
    expect(countAgainst(audit, published)).toEqual({
      expected: 120,
      present: 120,
      lost: 0,
      duplicated: 0,
      unexpected: 0,
    });
    expect(log).toEqual({ acked: 3, nacked: 0 });
  });

  test('a type without a cursor starts at its first staged window, or at HOURGLASS_START: empty windows after it close too', async () => {
    // The first data lands in window 2; the consumer has been up since window 0.
    const closedStarts = async (startAt: number | undefined): Promise<number[]> => {
      const store = new LocalDirectoryStore(tempDir('start-at'));
      const clock = new ManualClock(T0 + 2 * MINUTE + 5_000);
      const rt = runtime(store, clock, 'r1', undefined, 600_000, TYPE, { startAt });
      await rt.start();
      rt.stager.handle(bundle({ acked: 0, nacked: 0 }, records(10, T0 + 2 * MINUTE, 1000)));
      await rt.stager.flushAll();
      clock.set(T0 + 4 * MINUTE + GRACE + 2_000); // idle: windows 2 and 3 are past their grace
      await rt.tick();
      await rt.closeWindows();
      const audit = await auditType(store, TYPE, MINUTE);
      expect(audit.problems).toEqual([]);
      return audit.windows.map((w) => (w.manifest.window.startMs - T0) / MINUTE);
    };
    expect(await closedStarts(undefined)).toEqual([2, 3]);
    expect(await closedStarts(T0 + 30_000)).toEqual([0, 1, 2, 3]);
  });

  test('the closer finalizes a window in early segments as the watermark crosses each third and its end, unseen by readers', async () => {
    const store = new LocalDirectoryStore(tempDir('early-runtime'));
    const clock = new ManualClock(T0 + 15_000);
    const rt = runtime(store, clock);
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    const w = assignWindow(T0, MINUTE);
    // early parts wait in the unpublished folder; a reader listing the type's prefix sees none
    const partsNow = async (): Promise<string[]> => {
      expect(await store.list(`${TYPE}/`)).toEqual([]);
      return (await store.list(publishDir(TYPE, w))).map((o) => o.name.split('/').pop() ?? '');
    };
    const firstThird = records(20, T0, 10_000);
    rt.stager.handle(bundle(log, firstThird));
    await rt.stager.flushAll();
    // idle watermark = now - 1 s
    clock.set(T0 + 19_000); // 18 s: short of the first third
    await rt.tick();
    await rt.closeWindows();
    expect(await partsNow()).toEqual([]);
    clock.set(T0 + 25_000); // past the first third
    await rt.tick();
    await rt.closeWindows();
    expect(await partsNow()).toEqual(['part-00000.avro']);
    const rest = records(20, T0 + 30_000, 20_000);
    rt.stager.handle(bundle(log, rest));
    await rt.stager.flushAll();
    clock.set(w.end + 3_000); // past the end: the last early segment, no close yet
    await rt.tick();
    await rt.closeWindows();
    expect(rt.closed).toEqual([]);
    expect(await store.exists(manifestName(TYPE, w))).toBe(false);
    expect(await partsNow()).toEqual(['part-00000.avro', 'part-00001.avro']);
    // a straggler within the grace, then the close
    const straggler = await stragglerThenClose(rt, clock, log, w);
    expect(await store.list(publishDir(TYPE, w))).toEqual([]);
    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    expect(audit.windows[0]!.manifest.files.map((f) => [f.path.split('/').pop(), f.records])).toEqual([
      ['part-00000.avro', 20],
      ['part-00001.avro', 20],
      ['part-00002.avro', 1],
    ]);
    const published = publishedOf([...firstThird, ...rest, ...straggler]);
    expect(countAgainst(audit, published)).toMatchObject({ present: 41, lost: 0, duplicated: 0, unexpected: 0 });
  });

  test('an early segment before the window end waits for HOURGLASS_EARLY_SEGMENT_MIN_BYTES of staged data', async () => {
    const { store, clock, rt, log, w } = await minBytesRuntime('early-min-bytes');
    const stagedBytes = async (): Promise<number> =>
      (await store.list(stagingDir(TYPE, w))).reduce((n, o) => n + o.size, 0);
    const firstThird = records(20, T0, 10_000);
    rt.stager.handle(bundle(log, firstThird));
    await rt.stager.flushAll();
    expect(await stagedBytes()).toBeLessThan(64 * 1024);
    clock.set(T0 + 25_000); // past the first third, with too little staged: no segment
    await rt.tick();
    await rt.closeWindows();
    expect(await store.exists(earlyPlanName(TYPE, w, 0))).toBe(false);
    const rest = records(3000, T0 + 30_000, 20_000);
    for (let i = 0; i < rest.length; i += 100) rt.stager.handle(bundle(log, rest.slice(i, i + 100)));
    await rt.stager.flushAll();
    expect(await stagedBytes()).toBeGreaterThanOrEqual(64 * 1024);
    const stagedFiles = (await store.list(stagingDir(TYPE, w))).length;
    clock.set(T0 + 45_000); // past the second third: one segment of both thirds' files
    await rt.tick();
    await rt.closeWindows();
    const segment = JSON.parse((await store.get(earlyPlanName(TYPE, w, 0)))!.toString()) as { files: unknown[] };
    expect(segment.files.length).toBe(stagedFiles);
    // a straggler within the grace, far below the minimum: the close writes it
    clock.set(w.end + 3_000);
    await rt.tick();
    await rt.closeWindows();
    const straggler = await stragglerThenClose(rt, clock, log, w);
    expect(await store.exists(earlyPlanName(TYPE, w, 1))).toBe(false); // the end segment found nothing new
    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    expect(audit.windows[0]!.manifest.files.map((f) => f.records).reduce((a, b) => a + b, 0)).toBe(3021);
    const published = publishedOf([...firstThird, ...rest, ...straggler]);
    expect(countAgainst(audit, published)).toMatchObject({ present: 3021, lost: 0, duplicated: 0, unexpected: 0 });
  });

  test('a window smaller than the minimum gets one early segment, at its end', async () => {
    const { store, clock, rt, log, w } = await minBytesRuntime('early-none');
    const events = records(60, T0, MINUTE - 1_000);
    for (let i = 0; i < events.length; i += 20) rt.stager.handle(bundle(log, events.slice(i, i + 20)));
    await rt.stager.flushAll();
    for (const at of [T0 + 25_000, T0 + 45_000]) {
      clock.set(at);
      await rt.tick();
      await rt.closeWindows();
    }
    expect(await store.exists(earlyPlanName(TYPE, w, 0))).toBe(false);
    const stagedFiles = (await store.list(stagingDir(TYPE, w))).length;
    clock.set(w.end + 3_000);
    await rt.tick();
    await rt.closeWindows();
    const segment = JSON.parse((await store.get(earlyPlanName(TYPE, w, 0)))!.toString()) as { files: unknown[] };
    expect(segment.files.length).toBe(stagedFiles);
    expect(await store.exists(earlyPlanName(TYPE, w, 1))).toBe(false);
    clock.set(w.end + GRACE + 3_000);
    await rt.tick();
    await rt.closeWindows();
    expect(rt.closed.map((c) => c.window.start)).toEqual([T0]);
    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    expect(countAgainst(audit, publishedOf(events))).toMatchObject({
      present: 60,
      lost: 0,
      duplicated: 0,
      unexpected: 0,
    });
  });

  test('the finalize work of different types runs one job at a time, so staging keeps its turns', async () => {
    const store = new LocalDirectoryStore(tempDir('one-at-a-time'));
    const clock = new ManualClock(T0 + 2 * MINUTE);
    const steps: string[] = [];
    const onStep = async (step: FinalizeStep, detail: string): Promise<void> => {
      const parts = detail.split('/'); // <type>/... or _staging/<type>/...
      steps.push(`${parts[0] === '_staging' ? parts[1] : parts[0]} ${step}`);
      await new Promise((r) => setTimeout(r, 5)); // a slow store: other jobs would slip in here
    };
    const types = [TYPE, 'page_viewed'];
    const runtimes = types.map((type) => runtime(store, clock, 'r1', onStep, 600_000, type));
    const log = { acked: 0, nacked: 0 };
    for (const [i, rt] of runtimes.entries()) {
      await rt.start();
      const version = registry.get(types[i]!).latest;
      rt.stager.handle(bundle(log, records(30, T0, MINUTE, version), version));
      await rt.stager.flushAll();
    }
    clock.advance(3_000); // idle: window 0 closes for both types
    await Promise.all(runtimes.map((rt) => rt.tick()));
    await Promise.all(runtimes.map((rt) => rt.closeWindows()));
    expect(runtimes.map((rt) => rt.closed.map((c) => c.window.start))).toEqual([[T0], [T0]]);
    // every finalize step of one type's close comes before the other's first (the staging cleanup
    // after a publish runs outside the queue on purpose: it is only deletes)
    const order = steps.filter((s) => !s.endsWith(' staging-deleted')).map((s) => s.split(' ')[0]!);
    expect(order.length).toBeGreaterThan(4);
    expect(order.filter((t, i) => i > 0 && t !== order[i - 1])).toHaveLength(1);
  });

  test("a restart under the same replica id holds the global watermark until the old incarnation's messages are back", async () => {
    const store = new LocalDirectoryStore(tempDir('restart'));
    const clock = new ManualClock(T0 + 3 * MINUTE);
    const first = runtime(store, clock, 'same');
    await first.start();
    first.stager.handle(bundle({ acked: 0, nacked: 0 }, records(5, T0 + MINUTE, 1000))); // held, never staged
    clock.advance(100);
    await first.tick();
    expect(first.watermarks().published).toBe(T0 + MINUTE);
    // the process dies; a new one starts with the same id and soon goes idle
    const second = runtime(store, clock, 'same');
    await second.start();
    clock.advance(3_000);
    await second.tick();
    await second.closeWindows();
    expect(second.watermarks().global).toBe(T0 + MINUTE);
    expect(second.closed).toEqual([]);
    // the old lease has expired (ttl 5 s + ack deadline 10 s): the watermark follows the clock
    clock.advance(12_001);
    await second.tick();
    await second.closeWindows();
    expect(second.watermarks().local).toBe(clock.now() - 1_000);
    expect(second.watermarks().global).toBe(clock.now() - 1_000);
  });

  test('two live processes under one explicit replica id keep two leases: neither closes a window the other holds', async () => {
    const store = new LocalDirectoryStore(tempDir('same-id'));
    const clock = new ManualClock(T0 + 3 * MINUTE);
    const holdLong = { stageMaxAge: (10 * MINUTE) as Duration };
    const a = runtime(store, clock, 'same', undefined, 600_000, TYPE, holdLong);
    const b = runtime(store, clock, 'same', undefined, 600_000, TYPE, holdLong);
    await a.start();
    await b.start();
    a.stager.handle(bundle({ acked: 0, nacked: 0 }, records(5, T0 + MINUTE, 1000))); // held by a, unstaged
    // both renew for far longer than ttl + ack deadline (15 s), b idle
    for (let i = 0; i < 40; i++) {
      clock.advance(1_000);
      await a.tick();
      await b.tick();
      await a.closeWindows();
      await b.closeWindows();
    }
    expect((await readLeases(store, TYPE)).filter((l) => l.replicaId === 'same')).toHaveLength(2);
    const closedStarts = [...a.closed, ...b.closed].map((c) => c.window.start);
    expect(closedStarts.every((start) => start < T0 + MINUTE)).toBe(true);
    expect(b.watermarks().global).toBe(T0 + MINUTE);
  });

  test('a staged file that lands in a closed window is moved, as late data, to an open window', async () => {
    const store = new LocalDirectoryStore(tempDir('orphan'));
    const clock = new ManualClock(T0 + 3 * MINUTE);
    const closer = runtime(store, clock, 'a-closer');
    await closer.start();
    const log = { acked: 0, nacked: 0 };
    const early = records(20, T0, MINUTE);
    closer.stager.handle(bundle(log, early));
    await closer.stager.flushAll();
    clock.advance(3_000);
    await closer.tick();
    await closer.closeWindows();
    expect(closer.lastClosed()?.start).toBe(T0 + MINUTE);
    // a replica whose lease did not count (the race leases make rare) stages into closed window 0
    const straggler = runtime(store, clock, 'z-straggler');
    const orphanEvents = records(5, T0 + 10, 100);
    straggler.stager.handle(bundle(log, [...orphanEvents, early[0]!]));
    await straggler.stager.flushAll();
    expect(await store.list(stagingDir(TYPE, assignWindow(T0, MINUTE)))).toHaveLength(1);
    await closer.closeWindows(); // the staged windows were walked a moment ago: not seen yet
    expect(await store.list(stagingDir(TYPE, assignWindow(T0, MINUTE)))).toHaveLength(1);
    clock.advance(Defaults.stagingScanInterval);
    await closer.tick();
    await closer.closeWindows(); // walks staging again and sweeps the orphan
    expect(await store.list(stagingDir(TYPE, assignWindow(T0, MINUTE)))).toEqual([]);
    clock.advance(2 * MINUTE);
    await closer.tick();
    await straggler.tick();
    await closer.closeWindows();
    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    const published = publishedOf([...early, ...orphanEvents]);
    expect(countAgainst(audit, published)).toEqual({
      expected: 25,
      present: 25,
      lost: 0,
      duplicated: 0,
      unexpected: 0,
    });
    expect(audit.late).toBe(5);
  });

  test('a reader listing the type prefix after every finalize step never sees a file of a window without its _SUCCESS', async () => {
    const store = new LocalDirectoryStore(tempDir('reader'));
    const clock = new ManualClock(T0 + 15_000);
    const unclosedSeen: string[] = [];
    let listings = 0;
    const reader = async (): Promise<void> => {
      listings++;
      const names = (await store.list(`${TYPE}/`)).map((o) => o.name);
      const closed = new Set(names.filter((n) => n.endsWith('/_SUCCESS')).map((n) => n.slice(0, -'_SUCCESS'.length)));
      for (const n of names) {
        if (n.endsWith('.avro') && !closed.has(n.slice(0, n.lastIndexOf('/') + 1))) unclosedSeen.push(n);
      }
    };
    const rt = runtime(store, clock, 'r1', reader);
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    const sent = [...records(30, T0, MINUTE), ...records(30, T0 + MINUTE, MINUTE)];
    // staged in four slices as time passes: early segments of both windows, then the closes
    for (let i = 0; i < 4; i++) {
      const slice = sent.filter((r) => {
        const ts = (r.meta as { gateway_ts: number }).gateway_ts;
        return ts >= T0 + i * 30_000 && ts < T0 + (i + 1) * 30_000;
      });
      rt.stager.handle(bundle(log, slice));
      await rt.stager.flushAll();
      clock.set(T0 + (i + 1) * 30_000 + 2_000);
      await rt.tick();
      await rt.closeWindows();
      await reader();
    }
    clock.set(T0 + 2 * MINUTE + GRACE + 3_000);
    await rt.tick();
    await rt.closeWindows();
    await reader();
    expect(rt.closed.map((c) => c.window.start)).toEqual([T0, T0 + MINUTE]);
    expect(listings).toBeGreaterThan(10);
    expect(unclosedSeen).toEqual([]);
    const audit = await auditType(store, TYPE, MINUTE);
    expect(countAgainst(audit, publishedOf(sent))).toMatchObject({ present: 60, lost: 0, duplicated: 0 });
  });
});

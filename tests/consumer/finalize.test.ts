import { cpSync, readdirSync } from 'node:fs';
import { ManualClock, silentLogger, sha256Hex } from '@hourglass/common';
import { type EventRecord } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import { type FinalizeContext, type FinalizeStep, finalizeEarly, finalizeWindow } from '@hourglass/consumer';
import {
  assignWindow,
  manifestName,
  parseManifest,
  partitionPath,
  publishDir,
  stagingDir,
} from '@hourglass/bucket-format';
import {
  MINUTE,
  T0,
  auditType,
  countAgainst,
  decodeWithEmbeddedSchema,
  makeRecord,
  publishedOf,
  tempDir,
} from './support';
import { GRACE, TYPE, bundle, records, registry, runtime, v2 } from './runtime-support';

/** Finalize on the real filesystem: plans, dedup, final files, the manifest and publishing, crash-safe. */
describe('finalize', () => {
  /** Stages `n` events (with duplicates) into window 0 and returns the distinct ids. */
  async function stageWindow(store: ObjectStore, clock: ManualClock, n: number): Promise<Set<string>> {
    const rt = runtime(store, clock);
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    const rs = records(n, T0, MINUTE);
    const ids = new Set(rs.map((r) => r.meta.event_id));
    for (let i = 0; i < rs.length; i += 7) rt.stager.handle(bundle(log, rs.slice(i, i + 7)));
    rt.stager.handle(bundle(log, rs.slice(0, 20))); // 20 duplicates, in other part files
    await rt.stager.flushAll();
    expect(log.acked).toBe(Math.ceil(n / 7) + 1);
    return ids;
  }

  function context(store: ObjectStore, onStep?: FinalizeContext['onStep']): FinalizeContext {
    return {
      store,
      registry,
      eventType: TYPE,
      windowMs: MINUTE,
      graceMs: GRACE,
      format: { finalFileBytes: 8 * 1024, blockBytes: 4096, deflateLevel: 6 },
      logger: silentLogger,
      ...(onStep ? { onStep } : {}),
      sweepOrphan: async () => {
        throw new Error('no orphans expected here');
      },
    };
  }

  async function finalBytes(store: ObjectStore): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const o of await store.list(`${TYPE}/`)) out.set(o.name, sha256Hex((await store.get(o.name))!));
    return out;
  }

  test('dedups by event_id, rolls files at the target size, writes a manifest that matches', async () => {
    const root = tempDir('fin');
    const store = new LocalDirectoryStore(root);
    const ids = await stageWindow(store, new ManualClock(T0 + 2 * MINUTE), 300);
    const w = assignWindow(T0, MINUTE);
    const result = await finalizeWindow(context(store), w, w.end + GRACE);
    expect(result.created).toBe(true);
    const m = result.manifest;
    expect(m.counts).toMatchObject({ records: 300, onTime: 300, late: 0, duplicatesDropped: 20, stagedRecords: 320 });
    expect(m.files.length).toBeGreaterThan(1); // 8 KiB of records per file
    expect(m.files.map((f) => f.path)).toEqual(
      m.files.map((_, i) => `${TYPE}/dt=2026-01-01/hour=00/minute=00/part-${String(i).padStart(5, '0')}.avro`),
    );
    expect(await store.list(stagingDir(TYPE, w))).toEqual([]);
    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    expect(
      countAgainst(
        audit,
        [...ids].map((id) => ({ id, ts: 0 })),
      ),
    ).toMatchObject({
      lost: 0,
      duplicated: 0,
      unexpected: 0,
    });
    // a second run stops at the manifest
    const again = await finalizeWindow(context(store), w, w.end + GRACE + 999);
    expect(again.created).toBe(false);
    expect(again.manifest).toEqual(m);
  });

  test.each<FinalizeStep>(['plan-written', 'part-written', 'manifest-written', 'published', 'staging-deleted'])(
    'a crash after %s: the rerun produces the same final bytes as an uninterrupted run',
    async (crashStep) => {
      const root = tempDir('crash');
      const store = new LocalDirectoryStore(root);
      await stageWindow(store, new ManualClock(T0 + 2 * MINUTE), 200);
      const referenceRoot = tempDir('ref');
      cpSync(root, referenceRoot, { recursive: true });
      const reference = new LocalDirectoryStore(referenceRoot);
      const w = assignWindow(T0, MINUTE);
      await finalizeWindow(context(reference), w, w.end + GRACE);

      const crash = new Error('simulated crash');
      await expect(
        finalizeWindow(
          context(store, (step) => {
            if (step === crashStep) throw crash;
          }),
          w,
          w.end + GRACE,
        ),
      ).rejects.toBe(crash);
      // a later staged file (an orphan-to-be) must not change the output of the rerun
      if (crashStep === 'plan-written' || crashStep === 'part-written') {
        const late = records(1, T0 + 5, 1);
        const rt = runtime(store, new ManualClock(T0 + 2 * MINUTE), 'r2');
        await rt.start();
        rt.stager.handle(bundle({ acked: 0, nacked: 0 }, late));
        await rt.stager.flushAll();
        const ctx = context(store);
        const moved: string[] = [];
        ctx.sweepOrphan = async (name) => {
          moved.push(name);
          await store.delete(name);
        };
        await finalizeWindow(ctx, w, w.end + GRACE + 5_000);
        expect(moved).toHaveLength(1);
      } else {
        await finalizeWindow(context(store), w, w.end + GRACE + 5_000);
      }
      expect(await finalBytes(store)).toEqual(await finalBytes(reference));
      expect(readdirSync(root)).toContain('_staging');
      expect(await store.list('_staging/')).toEqual([]);
    },
  );

  /** Stages stragglers into window 0 after the early segment: `fresh` new events plus copies of `copies`. */
  let stragglerReplicas = 0;
  async function stageStragglers(store: ObjectStore, fresh: number, copiesOf: string[]): Promise<Set<string>> {
    // a replica of its own each time: staged file names count per replica incarnation
    const rt = runtime(store, new ManualClock(T0 + 2 * MINUTE), `straggler-${++stragglerReplicas}`);
    await rt.start();
    const rs = records(fresh, T0 + 30_000, 20_000);
    const copies = copiesOf.map((id, i) => makeRecord(v2, id, T0 + 100 + i, i));
    rt.stager.handle(bundle({ acked: 0, nacked: 0 }, [...rs, ...copies]));
    await rt.stager.flushAll();
    return new Set(rs.map((r) => r.meta.event_id));
  }

  test('early finalize: on-time files become part files during the grace; the close adds only stragglers', async () => {
    const root = tempDir('early');
    const store = new LocalDirectoryStore(root);
    const ids = await stageWindow(store, new ManualClock(T0 + 2 * MINUTE), 200);
    const w = assignWindow(T0, MINUTE);
    const segment = await finalizeEarly(context(store), w, undefined);
    expect(segment?.segments.map((files) => files.length > 1)).toEqual([true]);
    const earlyParts = (await store.list(publishDir(TYPE, w))).map((o) => o.name);
    expect(earlyParts.length).toBeGreaterThan(1);
    expect(await store.list(`${TYPE}/`)).toEqual([]); // nothing is presented yet
    // stragglers: 30 new events and 10 copies of events already in early part files
    const fresh = await stageStragglers(store, 30, [...ids].slice(0, 10));
    const beforeClose = tempDir('early-rerun');
    cpSync(root, beforeClose, { recursive: true });

    const { manifest } = await finalizeWindow(context(store), w, w.end + GRACE, segment);
    expect(manifest.counts).toMatchObject({ records: 230, onTime: 230, duplicatesDropped: 30, stagedRecords: 260 });
    const published = earlyParts.map((name) => name.replace(publishDir(TYPE, w), `${partitionPath(TYPE, w)}/`));
    expect(manifest.files.slice(0, earlyParts.length).map((f) => f.path)).toEqual(published); // untouched, first
    expect(manifest.files.length).toBeGreaterThan(earlyParts.length);
    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    const expected = [...ids, ...fresh].map((id) => ({ id, ts: 0 }));
    expect(countAgainst(audit, expected)).toMatchObject({ expected: 230, lost: 0, duplicated: 0, unexpected: 0 });
    expect(await store.list('_staging/')).toEqual([]); // early plan, plan and staged files gone

    // another replica (no segment in memory) closing from the same state writes the same bytes
    const other = new LocalDirectoryStore(beforeClose);
    await finalizeWindow(context(other), w, w.end + GRACE);
    expect(await finalBytes(other)).toEqual(await finalBytes(store));
  });

  test('an upgrade mid-window: early parts an older version left in the partition are published with the rest, same bytes', async () => {
    const root = tempDir('upgrade');
    const store = new LocalDirectoryStore(root);
    const ids = await stageWindow(store, new ManualClock(T0 + 2 * MINUTE), 200);
    const w = assignWindow(T0, MINUTE);
    const reference = tempDir('upgrade-ref');
    cpSync(root, reference, { recursive: true });
    await finalizeEarly(context(store), w, undefined);
    // the older layout: early part files written straight into the partition
    for (const o of await store.list(publishDir(TYPE, w))) {
      await store.createIfAbsent(
        o.name.replace(publishDir(TYPE, w), `${partitionPath(TYPE, w)}/`),
        (await store.get(o.name))!,
      );
      await store.delete(o.name);
    }
    const { manifest, created } = await finalizeWindow(context(store), w, w.end + GRACE);
    expect(created).toBe(true);
    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    expect(
      countAgainst(
        audit,
        [...ids].map((id) => ({ id, ts: 0 })),
      ),
    ).toMatchObject({ present: 200, lost: 0, duplicated: 0 });
    expect(manifest.files.length).toBeGreaterThan(1);
    expect(await store.list('_staging/')).toEqual([]);
    // the same bytes as a window finalized early under the new layout
    const fresh = new LocalDirectoryStore(reference);
    await finalizeEarly(context(fresh), w, undefined);
    await finalizeWindow(context(fresh), w, w.end + GRACE);
    expect(await finalBytes(store)).toEqual(await finalBytes(fresh));
  });

  test('early segments while the window is open: each ends its part files; the close reuses them', async () => {
    const root = tempDir('segments');
    const store = new LocalDirectoryStore(root);
    const w = assignWindow(T0, MINUTE);
    const first = await stageStragglers(store, 100, []);
    const ctx = context(store);
    const one = await finalizeEarly(ctx, w, undefined);
    expect(one?.segments).toHaveLength(1);
    expect(await finalizeEarly(ctx, w, one)).toBe(one); // nothing staged since
    const second = await stageStragglers(store, 100, [...first].slice(0, 10)); // 10 copies of segment 0
    const two = await finalizeEarly(ctx, w, one);
    expect(two?.segments).toHaveLength(2);
    expect(two?.writer).toBe(one?.writer); // segment 0 was not redone
    const third = await stageStragglers(store, 50, [...second].slice(0, 5));
    const beforeClose = tempDir('segments-rerun');
    cpSync(root, beforeClose, { recursive: true });

    const { manifest } = await finalizeWindow(ctx, w, w.end + GRACE, two);
    expect(manifest.counts).toMatchObject({ records: 250, duplicatesDropped: 15, stagedRecords: 265 });
    const audit = await auditType(store, TYPE, MINUTE);
    expect(audit.problems).toEqual([]);
    const expected = [...first, ...second, ...third].map((id) => ({ id, ts: 0 }));
    expect(countAgainst(audit, expected)).toMatchObject({ expected: 250, lost: 0, duplicated: 0, unexpected: 0 });
    expect(await store.list('_staging/')).toEqual([]);
    // a replica without the segments in memory writes the same bytes
    const other = new LocalDirectoryStore(beforeClose);
    await finalizeWindow(context(other), w, w.end + GRACE);
    expect(await finalBytes(other)).toEqual(await finalBytes(store));
  });

  test.each<FinalizeStep>(['early-plan-written', 'part-written'])(
    'a crash during early finalize (after %s): the close writes the same bytes as an uninterrupted run',
    async (crashStep) => {
      const root = tempDir('early-crash');
      const store = new LocalDirectoryStore(root);
      await stageWindow(store, new ManualClock(T0 + 2 * MINUTE), 200);
      const referenceRoot = tempDir('early-ref');
      cpSync(root, referenceRoot, { recursive: true });
      const reference = new LocalDirectoryStore(referenceRoot);
      const w = assignWindow(T0, MINUTE);
      const segment = await finalizeEarly(context(reference), w, undefined);
      await finalizeWindow(context(reference), w, w.end + GRACE, segment);

      const crash = new Error('simulated crash');
      const crashing = context(store, (step) => {
        if (step === crashStep) throw crash;
      });
      await expect(finalizeEarly(crashing, w, undefined)).rejects.toBe(crash);
      await finalizeWindow(context(store), w, w.end + GRACE);
      expect(await finalBytes(store)).toEqual(await finalBytes(reference));
      expect(await store.list('_staging/')).toEqual([]);
    },
  );

  test('an early finalize after the close sealed or finished the window adds nothing', async () => {
    const store = new LocalDirectoryStore(tempDir('sealed'));
    await stageWindow(store, new ManualClock(T0 + 2 * MINUTE), 100);
    const w = assignWindow(T0, MINUTE);
    // the close committed its plan (sealing the early plan) and stopped
    const crash = new Error('simulated crash');
    await expect(
      finalizeWindow(
        context(store, (step) => {
          if (step === 'plan-written') throw crash;
        }),
        w,
        w.end + GRACE,
      ),
    ).rejects.toBe(crash);
    expect(await finalizeEarly(context(store), w, undefined)).toBeUndefined();
    expect(await store.list(`${TYPE}/`)).toEqual([]); // no part file written early
    const { manifest } = await finalizeWindow(context(store), w, w.end + GRACE);
    const closedBytes = await finalBytes(store);
    // closed and cleaned up (the seal deleted): an early finalize now stops at the manifest
    expect(await finalizeEarly(context(store), w, undefined)).toBeUndefined();
    expect(await finalBytes(store)).toEqual(closedBytes);
    expect(await store.list('_staging/')).toEqual([]);
    expect(manifest.counts.records).toBe(100);
  });

  describe('across windows: a re-send stamped into the next window', () => {
    const HORIZON = 30_000;
    const withHorizon = (store: ObjectStore): FinalizeContext => {
      const ctx = context(store);
      return { ...ctx, format: { ...ctx.format, dedupHorizonMs: HORIZON } };
    };
    const idsIn = async (store: ObjectStore, paths: string[]): Promise<string[]> => {
      const out: string[] = [];
      for (const path of paths) {
        const { records: rs } = await decodeWithEmbeddedSchema((await store.get(path))!);
        out.push(...rs.map((r) => r.meta.event_id));
      }
      return out;
    };

    test('a copy within the horizon is dropped, from memory or read back alike; beyond it, kept', async () => {
      const root = tempDir('resend');
      const store = new LocalDirectoryStore(root);
      const w0 = assignWindow(T0, MINUTE);
      const w1 = assignWindow(T0 + MINUTE, MINUTE);
      const first = records(100, T0, MINUTE);
      const tail = first.filter((r) => r.meta.gateway_ts >= w0.end - HORIZON);
      const head = first.filter((r) => r.meta.gateway_ts < w0.end - HORIZON);
      // the gateway stamps each re-send anew: early in window 1, or later than the horizon
      const resend = (rs: EventRecord[], at: number): EventRecord[] =>
        rs.map((r, i) => makeRecord(v2, r.meta.event_id, at + i, i));
      const caught = resend(tail.slice(0, 20), w1.start + 1_000);
      const tooFarApart = resend(head.slice(0, 10), w1.start + 2_000); // originals > 30 s before
      const tooLate = resend(tail.slice(20, 30), w1.start + HORIZON + 5_000);
      const fresh = records(50, w1.start, MINUTE);
      const rt = runtime(store, new ManualClock(T0 + 2 * MINUTE));
      await rt.start();
      const log = { acked: 0, nacked: 0 };
      rt.stager.handle(bundle(log, first));
      rt.stager.handle(bundle(log, [...fresh, ...caught, ...tooFarApart, ...tooLate]));
      await rt.stager.flushAll();

      const closed0 = await finalizeWindow(withHorizon(store), w0, w0.end + GRACE);
      expect(closed0.tail?.ids.marked).toBe(tail.length);
      const copyRoot = tempDir('resend-copy');
      cpSync(root, copyRoot, { recursive: true });
      const readBack = new LocalDirectoryStore(copyRoot);

      const { manifest } = await finalizeWindow(withHorizon(store), w1, w1.end + GRACE, undefined, closed0.tail);
      expect(manifest.counts).toMatchObject({
        onTime: 50 + 10 + 10,
        duplicatesDropped: 20,
        duplicatesOfClosedWindows: 20,
        stagedRecords: 90,
      });
      const stored = await idsIn(
        store,
        manifest.files.map((f) => f.path),
      );
      expect(stored.filter((id) => caught.some((r) => r.meta.event_id === id))).toEqual([]);
      expect(new Set(stored)).toEqual(new Set([...fresh, ...tooFarApart, ...tooLate].map((r) => r.meta.event_id)));
      // a replica without window 0's tail in memory reads it back and writes the same bytes
      await finalizeWindow(withHorizon(readBack), w1, w1.end + GRACE);
      expect(await finalBytes(readBack)).toEqual(await finalBytes(store));
    });

    test('through the closer, with early segments: the next window and late copies both drop the re-sends', async () => {
      const store = new LocalDirectoryStore(tempDir('resend-runtime'));
      const clock = new ManualClock(T0 + MINUTE + 5_000);
      const rt = runtime(store, clock); // the default horizon: one minute
      await rt.start();
      const log = { acked: 0, nacked: 0 };
      const first = records(60, T0, MINUTE);
      rt.stager.handle(bundle(log, first));
      await rt.stager.flushAll();
      clock.set(T0 + MINUTE + GRACE + 3_000); // idle: window 0 closes
      await rt.tick();
      await rt.closeWindows();
      expect(rt.closed.map((c) => c.window.start)).toEqual([T0]);
      // re-sends of window 0's events, stamped in window 1, arrive beside window 1's own
      const resent = first.slice(0, 30).map((r, i) => makeRecord(v2, r.meta.event_id, T0 + MINUTE + 14_000 + i, i));
      const fresh = records(30, T0 + MINUTE + 14_000, 40_000);
      rt.stager.handle(bundle(log, [...resent.slice(0, 15), ...fresh.slice(0, 15)]));
      await rt.stager.flushAll();
      for (const at of [25_000, 45_000, MINUTE + 2_000, MINUTE + GRACE + 3_000]) {
        clock.set(T0 + MINUTE + at);
        await rt.tick();
        await rt.closeWindows();
        if (at === 25_000) {
          // after the first early segment
          rt.stager.handle(bundle(log, [...resent.slice(15), ...fresh.slice(15)]));
          await rt.stager.flushAll();
        }
      }
      expect(rt.closed.map((c) => c.window.start)).toEqual([T0, T0 + MINUTE]);
      // windows 0 and 1 closed: copies stamped in window 1 of events stored in window 0 are late now
      const lateCopies = first.slice(30, 40).map((r, i) => makeRecord(v2, r.meta.event_id, T0 + MINUTE + 1_000 + i, i));
      rt.stager.handle(bundle(log, lateCopies));
      await rt.stager.flushAll();
      clock.set(T0 + 4 * MINUTE);
      await rt.tick();
      await rt.closeWindows();

      const audit = await auditType(store, TYPE, MINUTE);
      expect(audit.problems).toEqual([]);
      const [m0, m1, m2] = audit.windows.map((w) => w.manifest);
      expect(m0!.counts).toMatchObject({ onTime: 60 });
      expect(m1!.counts).toMatchObject({ onTime: 30, duplicatesOfClosedWindows: 30 });
      expect(m1!.files.length).toBeGreaterThan(1); // written in early segments
      expect(m2!.counts).toMatchObject({ late: 0, duplicatesOfClosedWindows: 10 });
      const published = publishedOf([...first, ...fresh]);
      expect(countAgainst(audit, published)).toEqual({
        expected: 90,
        present: 90,
        lost: 0,
        duplicated: 0,
        unexpected: 0,
      });
      expect(log).toEqual({ acked: 4, nacked: 0 });
    });
  });

  test('an empty window gets a manifest with zero records and no files', async () => {
    const store = new LocalDirectoryStore(tempDir('empty'));
    const w = assignWindow(T0 + 7 * MINUTE, MINUTE);
    const { manifest } = await finalizeWindow(context(store), w, w.end + GRACE);
    expect(manifest.files).toEqual([]);
    expect(manifest.counts.records).toBe(0);
    expect(manifest.gatewayTs).toEqual({ min: null, max: null });
    expect(parseManifest((await store.get(manifestName(TYPE, w)))!, 'm')).toEqual(manifest);
  });
});

import avro from 'avsc';
import { cpSync, readdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Defaults, ManualClock, silentLogger } from '@hourglass/common';
import { SchemaRegistry, encodeRecords, type EventRecord } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import {
  type FinalizeContext,
  type FinalizeStep,
  type InboundMessage,
  TypeRuntime,
  type TypeRuntimeOptions,
  assignWindow,
  createConsumerMetrics,
  finalizeEarly,
  finalizeWindow,
  manifestName,
  parseManifest,
  sha256,
  stagingDir,
} from '@hourglass/consumer';
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

/**
 * Staging and finalize on the real filesystem, without Pub/Sub: messages are handed to the
 * type runtime directly and time is a ManualClock. Counts every event, checks every byte.
 */
const registry = SchemaRegistry.load('schemas');
const TYPE = 'track_played';
const v1 = registry.get(TYPE).versions[0]!;
const v2 = registry.get(TYPE).latest;
const GRACE = 10_000;

interface FakeMessageLog {
  acked: number;
  nacked: number;
}

function message(log: FakeMessageLog, data: Buffer, attributes: Record<string, string>): InboundMessage {
  let settled = false;
  return {
    id: randomUUID(),
    data,
    attributes,
    ack: () => {
      if (settled) throw new Error('settled twice');
      settled = true;
      log.acked++;
    },
    nack: () => {
      if (settled) throw new Error('settled twice');
      settled = true;
      log.nacked++;
    },
  };
}

function bundle(log: FakeMessageLog, records: EventRecord[], writer = v2): InboundMessage {
  const { data, attributes } = encodeRecords(writer, records, 'deflate');
  return message(log, data, attributes);
}

function runtime(
  store: ObjectStore,
  clock: ManualClock,
  replicaId = 'r1',
  onStep?: FinalizeContext['onStep'],
  maxAckExtensionMs = 600_000,
  eventType = TYPE,
  overrides: Partial<TypeRuntimeOptions> = {},
) {
  return new TypeRuntime(
    {
      eventType,
      replicaId,
      incarnation: 'test',
      windowMs: MINUTE,
      graceMs: GRACE,
      startAt: undefined,
      leaseTtlMs: 5_000,
      ackDeadlineMs: 10_000,
      maxAckExtensionMs,
      maxPublishDelayMs: 1_000,
      idleAfterMs: 2_000,
      stageMaxEvents: 40,
      stageMaxBytes: 1 << 20,
      stageMaxAgeMs: 1_000,
      blockBytes: 4096,
      finalFileBytes: 8 * 1024,
      stageDeflateLevel: 1, // the default stages uncompressed: cover the deflate path here
      finalDeflateLevel: Defaults.finalDeflateLevel,
      earlySegments: 3,
      dedupHorizonMs: Defaults.dedupHorizon,
      closer: true,
      ...overrides,
    },
    {
      store,
      registry,
      clock,
      logger: silentLogger,
      metrics: createConsumerMetrics(),
      ...(onStep ? { onFinalizeStep: onStep } : {}),
    },
  );
}

function records(n: number, start: number, span: number, writer = v2): EventRecord[] {
  return Array.from({ length: n }, (_, i) => makeRecord(writer, randomUUID(), start + Math.floor((i * span) / n), i));
}

describe('staging', () => {
  test('a message is acked only once every part file holding its events is durable', async () => {
    const store = new LocalDirectoryStore(tempDir('stage'));
    const clock = new ManualClock(T0 + 2 * MINUTE);
    const rt = runtime(store, clock);
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    // one bundle across two windows (out of order), one from an older writer
    rt.stager.handle(bundle(log, [...records(5, T0 + MINUTE, 1000), ...records(5, T0, 1000)]));
    rt.stager.handle(bundle(log, records(3, T0, 1000, v1), v1));
    expect(log).toEqual({ acked: 0, nacked: 0 });
    expect(rt.stager.heldEvents()).toBe(13);
    expect(await store.list('_staging/')).toEqual([]);
    // held events pin the watermark at the oldest of them
    clock.advance(500);
    await rt.tick();
    expect(rt.watermarks().published).toBeLessThanOrEqual(T0);
    clock.advance(600); // past stageMaxAge
    await rt.tick();
    await rt.stager.flushAll();
    expect(log).toEqual({ acked: 2, nacked: 0 });
    const staged = await store.list('_staging/');
    expect(staged.map((o) => o.name.split('/').slice(2, 5).join('/')).sort()).toEqual([
      'dt=2026-01-01/hour=00/minute=00',
      'dt=2026-01-01/hour=00/minute=01',
    ]);
    // staged files are standard container files in the newest schema
    let total = 0;
    for (const o of staged) {
      const { records: rs, schema } = await decodeWithEmbeddedSchema((await store.get(o.name))!);
      expect((schema as { fields: { name: string }[] }).fields.map((f) => f.name)).toContain('context_uri');
      total += rs.length;
    }
    expect(total).toBe(13);
  });

  test('newest-schema datums are copied as bytes; one the skipper refuses goes the decoding path, as before', async () => {
    const store = new LocalDirectoryStore(tempDir('stage-copy'));
    const rt = runtime(store, new ManualClock(T0 + 2 * MINUTE));
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    const copied = records(20, T0, 1000);
    rt.stager.handle(bundle(log, copied));
    // a long of 2^52: canonical, but beyond what the skipper reads exactly, so it is decoded and re-encoded
    const odd = records(3, T0 + 2000, 1000).map((r, i) => (i === 1 ? { ...r, ms_played: 2 ** 52 } : r));
    rt.stager.handle(bundle(log, odd));
    // invalid UTF-8 in one string: avsc would decode it to U+FFFD, so the message is dead-lettered (#14.2)
    const encoded = encodeRecords(v2, records(3, T0 + 3000, 1000));
    encoded.data[encoded.data.indexOf('user-1')] = 0xff;
    rt.stager.handle(message(log, encoded.data, encoded.attributes));
    await rt.stager.flushAll();
    expect(log).toEqual({ acked: 3, nacked: 0 });
    expect(rt.stager.stats.deadLettered).toBe(1);
    // the staged datums, as bytes: what decoding and encoding each record gives
    const datums: Buffer[] = [];
    for (const o of await store.list('_staging/')) {
      const decoder = new avro.streams.BlockDecoder({ noDecode: true });
      decoder.on('data', (d: Buffer) => datums.push(d));
      const done = new Promise((r) => decoder.on('end', r));
      decoder.end((await store.get(o.name))!);
      await done;
    }
    const expected = [...copied, ...odd];
    expect(datums.map((d) => d.toString('hex'))).toEqual(expected.map((r) => v2.type.toBuffer(r).toString('hex')));
  });

  test('a message held beyond the max lease extension is still acked, and counted loudly', async () => {
    const store = new LocalDirectoryStore(tempDir('overheld'));
    const clock = new ManualClock(T0 + 2 * MINUTE);
    const rt = runtime(store, clock, 'r1', undefined, 10_000);
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    rt.stager.handle(bundle(log, records(3, T0, 1000)));
    clock.advance(10_001); // e.g. the store hung this long
    await rt.stager.flushAll();
    expect(log).toEqual({ acked: 1, nacked: 0 });
    expect(rt.stager.stats.overheld).toBe(1);
  });

  test('undecodable messages go to _deadletter with raw bytes, attributes and reason, and are acked', async () => {
    const store = new LocalDirectoryStore(tempDir('dead'));
    const rt = runtime(store, new ManualClock(T0));
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    const good = encodeRecords(v2, records(2, T0, 10));
    rt.stager.handle(message(log, Buffer.from('not avro at all'), { ...good.attributes, count: '3' }));
    rt.stager.handle(message(log, good.data, { ...good.attributes, schema_fingerprint: 'f'.repeat(64) }));
    rt.stager.handle(message(log, good.data, { ...good.attributes, event_type: 'page_viewed' }));
    await rt.stager.flushAll();
    expect(log).toEqual({ acked: 3, nacked: 0 });
    const dead = await store.list('_deadletter/track_played/');
    expect(dead).toHaveLength(3);
    const bodies = await Promise.all(dead.map(async (o) => JSON.parse((await store.get(o.name))!.toString())));
    const reasons = bodies.map((b: { reason: { code: string } }) => b.reason.code).sort();
    expect(reasons).toEqual(['MESSAGE_CORRUPT', 'MESSAGE_CORRUPT', 'SCHEMA_UNKNOWN_FINGERPRINT']);
    const raw = bodies.find(
      (b: { dataBase64: string }) => Buffer.from(b.dataBase64, 'base64').toString() === 'not avro at all',
    );
    expect(raw.attributes.count).toBe('3');
    expect(rt.stager.stats.deadLettered).toBe(3);
    expect(await store.list('_staging/')).toEqual([]);
  });
});

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
    for (const o of await store.list(`${TYPE}/`)) out.set(o.name, sha256((await store.get(o.name))!));
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

  test.each<FinalizeStep>(['plan-written', 'part-written', 'manifest-written', 'staging-deleted'])(
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
    const earlyParts = (await store.list(`${TYPE}/`)).map((o) => o.name);
    expect(earlyParts.length).toBeGreaterThan(1);
    expect(await store.exists(manifestName(TYPE, w))).toBe(false); // nothing is presented yet
    // stragglers: 30 new events and 10 copies of events already in early part files
    const fresh = await stageStragglers(store, 30, [...ids].slice(0, 10));
    const beforeClose = tempDir('early-rerun');
    cpSync(root, beforeClose, { recursive: true });

    const { manifest } = await finalizeWindow(context(store), w, w.end + GRACE, segment);
    expect(manifest.counts).toMatchObject({ records: 230, onTime: 230, duplicatesDropped: 30, stagedRecords: 260 });
    expect(manifest.files.slice(0, earlyParts.length).map((f) => f.path)).toEqual(earlyParts); // untouched, first
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

  test('the closer finalizes a window in early segments as the watermark crosses each third and its end', async () => {
    const store = new LocalDirectoryStore(tempDir('early-runtime'));
    const clock = new ManualClock(T0 + 15_000);
    const rt = runtime(store, clock);
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    const w = assignWindow(T0, MINUTE);
    const partsNow = async (): Promise<string[]> =>
      (await store.list(`${TYPE}/`)).map((o) => o.name.split('/').pop() ?? '');
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
    const straggler = records(1, T0 + 59_000, 1);
    rt.stager.handle(bundle(log, straggler));
    await rt.stager.flushAll();
    clock.set(w.end + GRACE + 3_000);
    await rt.tick();
    await rt.closeWindows();
    expect(rt.closed.map((c) => c.window.start)).toEqual([T0]);
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
    // every step of one type's close comes before the other's first
    const order = steps.map((s) => s.split(' ')[0]!);
    expect(order.length).toBeGreaterThan(4);
    expect(order.filter((t, i) => i > 0 && t !== order[i - 1])).toHaveLength(1);
  });

  test("a restart under the same replica id holds the watermark until the old incarnation's messages are back", async () => {
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
    expect(second.watermarks().local).toBe(T0 + MINUTE);
    expect(second.closed).toEqual([]);
    // the old lease would have expired (ttl 5 s + ack deadline 10 s): the watermark follows the clock
    clock.advance(12_001);
    await second.tick();
    expect(second.watermarks().local).toBe(clock.now() - 1_000);
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
    await closer.closeWindows(); // sweeps the orphan
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
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ManualClock, silentLogger } from '@hourglass/common';
import { SchemaRegistry, encodeRecords } from '@hourglass/schemas';
import { LocalDirectoryStore } from '@hourglass/storage';
import { OcfWriter, scanContainer } from '@hourglass/bucket-format';
import { FinalizePacer, type PacerTime } from '@hourglass/consumer/close/finalize-pacer';
import { Stager } from '@hourglass/consumer/stage/stager';
import { ReplicaWatermark } from '@hourglass/consumer/watermark/replica-watermark';
import { createConsumerMetrics } from '@hourglass/consumer/metrics';
import { makeRecord } from '../../consumer/support';

/** Time moved by hand: a sleep advances it by its length, a turn by nothing. */
class HandTime implements PacerTime {
  at = 1_000;
  sleeps: number[] = [];
  turns = 0;
  now(): number {
    return this.at;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.at += ms;
  }
  async turn(): Promise<void> {
    this.turns++;
  }
}

/** sliceMs 0: every pause yields (the slice has its own tests). */
const OPTIONS = { lagMs: 500, share: 0.25, holdMs: 2_000, maxPauseMs: 200, sliceMs: 0 };

function pacerWith(options = OPTIONS): { pacer: FinalizePacer; time: HandTime } {
  const time = new HandTime();
  return { pacer: new FinalizePacer(options, time), time };
}

/** Chunks of `ran` ms of work, each followed by a pause: the work done and the time slept. */
async function workThrough(
  pacer: FinalizePacer,
  time: HandTime,
  ran: number[],
): Promise<{ work: number; slept: number }> {
  let work = 0;
  for (const ms of ran) {
    time.at += ms;
    work += ms;
    await pacer.pause();
  }
  return { work, slept: time.sleeps.reduce((a, b) => a + b, 0) };
}

describe('FinalizePacer', () => {
  test('without a late message, a pause is one loop turn, however long the chunk ran', async () => {
    const { pacer, time } = pacerWith();
    pacer.observe(500); // at the threshold, not above it
    time.at += 150;
    await pacer.pause();
    expect([time.sleeps, time.turns, pacer.pausedMs, pacer.lagging]).toEqual([[], 1, 0, false]);
  });

  test('after a late message, a pause keeps finalize to its share of the time', async () => {
    const { pacer, time } = pacerWith();
    await pacer.pause(); // a chunk starts now
    pacer.observe(501);
    time.at += 30; // the chunk ran 30 ms
    await pacer.pause();
    // 25%: 30 ms of work, then 90 ms of sleep
    expect(time.sleeps).toEqual([90]);
    expect(pacer.pausedMs).toBe(90);
    time.at += 100; // a long chunk: the pause is capped
    await pacer.pause();
    expect(time.sleeps).toEqual([90, 200]);
  });

  test('a late message slows finalize for holdMs only', async () => {
    const { pacer, time } = pacerWith();
    pacer.observe(10_000);
    time.at += 1_999;
    expect(pacer.lagging).toBe(true);
    time.at += 1;
    expect(pacer.lagging).toBe(false);
    await pacer.pause();
    expect(time.sleeps).toEqual([]);
  });

  test('lagMs 0 turns it off', async () => {
    const { pacer, time } = pacerWith({ ...OPTIONS, lagMs: 0 });
    pacer.observe(60_000);
    time.at += 50;
    await pacer.pause();
    expect([time.sleeps, pacer.lagging]).toEqual([[], false]);
  });

  test('pauses within a slice of work do not yield; the first after it turns once', async () => {
    const { pacer, time } = pacerWith({ ...OPTIONS, sliceMs: 5 });
    for (let i = 0; i < 4; i++) {
      time.at += 1; // a 1 ms block
      await pacer.pause();
    }
    expect(time.turns).toBe(0);
    time.at += 1; // 5 ms since the last yield
    await pacer.pause();
    expect(time.turns).toBe(1);
    time.at += 4;
    await pacer.pause();
    expect(time.turns).toBe(1); // a new slice started at the turn
  });

  test('while staging lags, blocks shorter than the slice keep finalize to its share, slept a slice at a time', async () => {
    const blocks = fc.array(fc.double({ min: 0.01, max: 3, noNaN: true }), { minLength: 1, maxLength: 400 });
    await fc.assert(
      fc.asyncProperty(blocks, async (ran) => {
        const { pacer, time } = pacerWith({ ...OPTIONS, sliceMs: 5, holdMs: 1e9 });
        pacer.observe(1_000);
        const { work, slept } = await workThrough(pacer, time, ran);
        // every sleep follows at least a slice of work; only the last unfinished slice is unslept
        expect(time.sleeps.every((ms) => ms >= 5 * 3 - 1e-9)).toBe(true);
        expect(slept).toBeLessThanOrEqual(work * 3 + 1e-6);
        expect(slept).toBeGreaterThanOrEqual((work - 5) * 3 - 1e-6);
      }),
      { seed: 20261205, numRuns: 100 },
    );
  });

  test("jobs running at once share one share: a job reaching a pause during another's waits for its end", async () => {
    // sleeps end only when the test moves the time
    const sleepers: { until: number; wake: () => void }[] = [];
    const time: PacerTime & { at: number } = {
      at: 1_000,
      now() {
        return this.at;
      },
      sleep(ms) {
        return new Promise((wake) => sleepers.push({ until: this.at + ms, wake }));
      },
      async turn() {},
    };
    const advance = (ms: number): void => {
      time.at += ms;
      for (const s of sleepers.splice(0))
        if (s.until <= time.at) s.wake();
        else sleepers.push(s);
    };
    const pacer = new FinalizePacer({ ...OPTIONS, sliceMs: 5, holdMs: 1e9 }, time);
    pacer.observe(1_000);
    time.at += 30; // job A ran 30 ms
    let aResumed = false;
    let bResumed = false;
    void pacer.pause().then(() => (aResumed = true)); // A sleeps 90 ms
    advance(10);
    void pacer.pause().then(() => (bResumed = true)); // B reaches a pause 10 ms into A's
    await Promise.resolve();
    advance(79);
    await new Promise((r) => setImmediate(r));
    expect([aResumed, bResumed]).toEqual([false, false]);
    advance(1);
    await new Promise((r) => setImmediate(r));
    expect([aResumed, bResumed]).toEqual([true, true]);
    expect(pacer.pausedMs).toBe(90); // B's wait is A's pause, counted once
  });

  test('a share outside (0, 1] is refused', () => {
    expect(() => new FinalizePacer({ ...OPTIONS, share: 0 })).toThrow(/share 0/);
    expect(() => new FinalizePacer({ ...OPTIONS, share: 1.5 })).toThrow(/share 1.5/);
  });

  test('while staging lags, finalize keeps its share of the time, never less unless a chunk outlasts the cap', async () => {
    const chunks = fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 60 });
    const share = fc.constantFrom(0.1, 0.25, 0.5, 1);
    await fc.assert(
      fc.asyncProperty(chunks, share, async (ran, s) => {
        const { pacer, time } = pacerWith({ ...OPTIONS, share: s, holdMs: 1e9 });
        await pacer.pause();
        pacer.observe(1_000);
        const { work, slept } = await workThrough(pacer, time, ran);
        const uncapped = ran.reduce((a, ms) => a + (ms * (1 - s)) / s, 0);
        // each pause is min(cap, chunk × (1 − s) / s): the share is exact without the cap, higher with it
        expect(slept).toBeCloseTo(
          ran.reduce((a, ms) => a + Math.min(OPTIONS.maxPauseMs, (ms * (1 - s)) / s), 0),
          6,
        );
        expect(work / (work + slept)).toBeGreaterThanOrEqual(s - 1e-9);
        if (slept === uncapped) expect(work / (work + slept)).toBeCloseTo(s, 9);
      }),
      { seed: 18, numRuns: 100 },
    );
  });
});

/** A lower-case UUID numbered `n`: the event's id. */
const idOf = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('finalize pacing, wired', () => {
  const registry = SchemaRegistry.load(path.join(__dirname, '../../../schemas'));
  const latest = registry.get('track_played').latest;
  const roots: string[] = [];
  afterAll(() => {
    for (const dir of roots) rmSync(dir, { recursive: true, force: true });
  });

  test('a scan awaits its pause after every block', async () => {
    const writer = new OcfWriter({
      type: latest.type,
      syncMarker: Buffer.alloc(16, 7),
      blockBytes: 1024,
      deflateLevel: 0,
    });
    const records = Array.from({ length: 200 }, (_, i) => makeRecord(latest, idOf(i), 1_000 + i, i));
    for (const r of records) writer.appendRecord(r);
    const file = await writer.finish();
    let blocks = 0;
    let seen = 0;
    const visited: number[] = [];
    const count = await scanContainer(
      file,
      'paced.avro',
      latest,
      () => {
        seen++;
      },
      async () => {
        blocks++;
        visited.push(seen);
      },
    );
    expect(count).toBe(200);
    expect(blocks).toBeGreaterThan(5); // 1 KiB blocks of ~100-byte datums
    expect(visited[visited.length - 1]).toBe(200);
    // a pause after each block, each after more datums than the last
    expect(visited.every((n, i) => i === 0 || n > visited[i - 1]!)).toBe(true);
  });

  test("the stager tells the pacer each message's receive lag: arrival minus its oldest gateway_ts, less the type's steady gateway wait", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hourglass-pacer-'));
    roots.push(dir);
    const now = Date.UTC(2026, 0, 15, 12, 0, 30);
    const clock = new ManualClock(now);
    const lags: number[] = [];
    const stager = new Stager(
      { eventType: 'track_played', replicaId: 'pacer', incarnation: 'test', windowMs: 60_000, graceMs: 10_000 },
      {
        maxEvents: 1000,
        maxBytes: 1 << 20,
        maxAgeMs: 60_000,
        blockBytes: 4096,
        deflateLevel: 0,
        writeAttempts: 1,
        maxHoldMs: 600_000,
      },
      {
        store: new LocalDirectoryStore(dir),
        registry,
        clock,
        logger: silentLogger,
        metrics: createConsumerMetrics(),
        watermark: new ReplicaWatermark({ idleAfterMs: 5000, maxPublishDelayMs: 1000 }, now),
        lastClosed: () => undefined,
        ensureLease: async () => undefined,
        pacer: { observe: (lagMs) => lags.push(lagMs) },
      },
    );
    const { data, attributes } = encodeRecords(
      latest,
      [
        makeRecord(latest, idOf(1), now - 300),
        makeRecord(latest, idOf(2), now - 1_700),
        makeRecord(latest, idOf(3), now - 50),
      ],
      'null',
    );
    stager.handle({ id: '1', data, attributes, ack: () => undefined, nack: () => undefined });
    // the same events after 1.5 s in a gateway's bundle, the least wait seen: the lag is what came after
    const published = new Date(now - 200);
    stager.handle({ id: '2', data, attributes, publishTime: published, ack: () => undefined, nack: () => undefined });
    expect(lags).toEqual([1_700, 200]);
  });
});

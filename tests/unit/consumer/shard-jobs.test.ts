import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock } from '@hourglass/common';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import {
  SHARD_JOBS,
  manifestName,
  nextWindow,
  parseManifest,
  planName,
  shardClaimName,
  stagingDir,
} from '@hourglass/bucket-format';
import { finalizeWindow } from '@hourglass/consumer/finalize/publish';
import { finalizeEarly } from '@hourglass/consumer/finalize/early';
import type { FinalizeContext } from '@hourglass/consumer/finalize/context';
import { parsePlan } from '@hourglass/consumer/finalize/plan';
import { type ShardJobOptions, runOneOpenShardJob } from '@hourglass/consumer/finalize/shard-jobs';
import {
  HORIZON,
  MINUTE,
  type Rec,
  TYPE,
  context,
  copyOf,
  finalBytes,
  finalizeW1,
  removeTempDirs,
  scenario,
  stage,
  stored,
  tempDir,
  w1,
} from '../../support/sharded-scenario';

/**
 * Shard jobs (finalize/shard-jobs.ts): a sharded window's shards run by any replica, on the real
 * filesystem. Against the one-pass finalize of the same staged files: the same records and
 * counts; against one replica running every job: the same bytes when two share them, and when a
 * replica dies mid-shard and its claim is taken over.
 */
afterAll(removeTempDirs);

const SHARD_BYTES = 32 * 1024;
const CLAIM_MS = 30_000;

function jobs(identity: string, clock: ManualClock): ShardJobOptions {
  return { identity, now: () => clock.now(), claimMs: CLAIM_MS, pollMs: 5 };
}

function withJobs(store: ObjectStore, identity: string, clock: ManualClock, onStep?: FinalizeContext['onStep']) {
  return { ...context(store, SHARD_BYTES, onStep), shardJobs: jobs(identity, clock) };
}

/** Runs open shard jobs of w1 as another replica until `done()`, polling; counts them into `ran.jobs`. */
async function worker(ctx: FinalizeContext, done: () => boolean, ran: { jobs: number }): Promise<void> {
  while (!done()) {
    if (await runOneOpenShardJob(ctx, w1, ctx.shardJobs!)) ran.jobs++;
    else await sleep(2);
  }
}

const SCENARIO = { seed: 17, events: 3000, files: 9, duplicateShare: 0.05, resends: 15, late: 40 };

describe('shard jobs', () => {
  test('one replica runs every job: the records and counts of the one-pass finalize, files named per shard', async () => {
    const { dir } = await scenario(SCENARIO);
    const one = copyOf(new LocalDirectoryStore(dir), dir);
    const jobbed = copyOf(new LocalDirectoryStore(dir), dir);
    await finalizeW1(context(one.store));
    const { shards } = await finalizeW1(withJobs(jobbed.store, 'r1', new ManualClock(w1.end)));
    expect(shards).toBeGreaterThanOrEqual(5);
    const a = await stored(one.store, w1);
    const b = await stored(jobbed.store, w1);
    expect(b.m.counts).toEqual(a.m.counts);
    expect(b.m.counts.late).toBeGreaterThan(0);
    expect(b.m.counts.duplicatesOfClosedWindows).toBeGreaterThanOrEqual(15);
    expect(b.onTime).toEqual(a.onTime);
    expect(b.late).toEqual(a.late);
    // on-time files of every shard in shard order, then late ones; each shard's series numbered from 0
    const names = b.m.files.map((f) => f.path.slice(f.path.lastIndexOf('/') + 1));
    expect(names.every((n) => /^(part|late)-s\d{5}-\d{5}\.avro$/.test(n))).toBe(true);
    expect(names).toEqual([...names.filter((n) => n.startsWith('part')), ...names.filter((n) => n.startsWith('late'))]);
    expect(new Set(names.filter((n) => n.startsWith('part')).map((n) => n.slice(5, 11))).size).toBe(shards);
    expect(await jobbed.store.list('_staging/')).toEqual([]);
    expect(await jobbed.store.list(`${SHARD_JOBS}/`)).toEqual([]);
  });

  test('two replicas share the jobs: the bytes of one replica running all of them', async () => {
    const { dir, tail } = await scenario(SCENARIO);
    const alone = copyOf(new LocalDirectoryStore(dir), dir);
    const shared = copyOf(new LocalDirectoryStore(dir), dir);
    const clock = new ManualClock(w1.end);
    await finalizeW1(withJobs(alone.store, 'r1', clock), tail);
    let closed = false;
    const helperRan = { jobs: 0 };
    // the closer's first shard waits until the other replica has run one, so both surely work
    const closer = withJobs(shared.store, 'r1', clock, async (step) => {
      if (step === 'shard-written') while (helperRan.jobs === 0 && !closed) await sleep(2);
    });
    const helper = worker(withJobs(shared.store, 'r2', clock), () => closed, helperRan);
    const { shards } = await finalizeW1(closer, tail).finally(() => {
      closed = true;
    });
    await helper;
    const ranByHelper = helperRan.jobs;
    expect(ranByHelper).toBeGreaterThanOrEqual(1);
    expect(ranByHelper).toBeLessThan(shards);
    expect(await finalBytes(shared.store)).toEqual(await finalBytes(alone.store));
    expect(await shared.store.list('_staging/')).toEqual([]);
  });

  test('a replica dies mid-shard: the closer waits for its claim to expire, takes the shard over, same bytes', async () => {
    const { dir } = await scenario(SCENARIO);
    const alone = copyOf(new LocalDirectoryStore(dir), dir);
    const crashed = copyOf(new LocalDirectoryStore(dir), dir);
    const clock = new ManualClock(w1.end);
    await finalizeW1(withJobs(alone.store, 'r1', clock));
    // replica r1 closes, claims shard 0, writes one of its files and dies
    const crash = new Error('simulated crash');
    await expect(
      finalizeW1(
        withJobs(crashed.store, 'r1', clock, (step) => {
          if (step === 'part-written') throw crash;
        }),
      ),
    ).rejects.toBe(crash);
    const plan = parsePlan((await crashed.store.get(planName(TYPE, w1)))!, 'plan');
    expect(await crashed.store.exists(shardClaimName(TYPE, w1, 0))).toBe(true);
    // r2 takes the close over: it runs every other shard, then waits on r1's live claim
    let finished = false;
    const takeover = finalizeW1(withJobs(crashed.store, 'r2', clock)).finally(() => {
      finished = true;
    });
    const resultOf = (shard: number): string => `${stagingDir(TYPE, w1)}_shard-${String(shard).padStart(5, '0')}.json`;
    const others = Array.from({ length: plan.shards! - 1 }, (_, i) => resultOf(i + 1));
    const staged = async (): Promise<Set<string>> =>
      new Set((await crashed.store.list(stagingDir(TYPE, w1))).map((o) => o.name));
    for (let found = await staged(); !others.every((n) => found.has(n)); found = await staged()) await sleep(5);
    await sleep(100);
    expect(finished).toBe(false);
    expect((await staged()).has(resultOf(0))).toBe(false);
    clock.advance(CLAIM_MS + 1);
    await takeover;
    expect(await finalBytes(crashed.store)).toEqual(await finalBytes(alone.store));
    expect(await crashed.store.list('_staging/')).toEqual([]);
  });

  test("the next window's jobs read only the closed window's files of jobs whose hash groups meet theirs", async () => {
    const store = new LocalDirectoryStore(tempDir());
    const clock = new ManualClock(w1.end);
    const w2 = nextWindow(w1);
    const events = (w: typeof w1, n: number, tag: string): Rec[] =>
      Array.from({ length: n }, (_, i) => ({ id: `${tag}-${i}`, ts: w.start + Math.floor((i / n) * MINUTE), copy: i }));
    const first = events(w1, 3000, 'a');
    for (let f = 0; f < 6; f++) await stage(store, w1, false, first.slice(f * 500, (f + 1) * 500));
    await finalizeW1(withJobs(store, 'r1', clock));
    const closed = parseManifest((await store.get(manifestName(TYPE, w1)))!, 'w1');
    expect(closed.shards).toBeGreaterThanOrEqual(5);
    // window 2: its own events and re-sends of window 1's tail stamped into its head
    const resent = first.filter((r) => r.ts >= w1.end - HORIZON).slice(0, 40);
    const second = [...events(w2, 3000, 'b'), ...resent.map((r, i) => ({ ...r, ts: w2.start + i * 100, copy: 9 }))];
    for (let f = 0; f < 6; f++) await stage(store, w2, false, second.slice(f * 507, (f + 1) * 507));
    let closedBytesRead = 0;
    const counting = Object.create(store) as ObjectStore;
    counting.get = async (name) => {
      const data = await store.get(name);
      if (data && name.startsWith(`${TYPE}/`) && name.endsWith('.avro')) closedBytesRead += data.length;
      return data;
    };
    // no tail in memory (another replica closed window 1): every job reads its reference back
    const result = await finalizeWindow(withJobs(counting, 'r2', clock), w2, w2.end + 10_000);
    expect(result.manifest.shards).toBe(closed.shards);
    expect(result.manifest.counts.duplicatesOfClosedWindows).toBe(resent.length);
    expect(result.manifest.counts.records).toBe(3000);
    const closedBytes = closed.files.reduce((n, f) => n + f.bytes, 0);
    // each closed file is read by the one job of the same groups (not by all of them)
    expect(closedBytesRead).toBeLessThanOrEqual(closedBytes);
    expect(closedBytesRead).toBeGreaterThan(0);
  });

  test('early segments, then shard jobs shared by two replicas: the records and counts of the one-pass finalize', async () => {
    const dir = tempDir();
    const store = new LocalDirectoryStore(dir);
    const clock = new ManualClock(w1.end);
    const recs = (from: number, n: number, copy = 0): Rec[] =>
      Array.from({ length: n }, (_, i) => ({
        id: `e-${from + i}`,
        ts: w1.start + ((from + i) % MINUTE),
        copy: copy + i,
      }));
    await stage(store, w1, false, recs(0, 300));
    const segments = await finalizeEarly(withJobs(store, 'r1', clock), w1, undefined);
    expect(segments?.segments).toHaveLength(1);
    // more than a shard's bytes, with copies of the early segment's events and among themselves
    await stage(store, w1, false, [...recs(250, 800, 10_000), ...recs(900, 100, 20_000)]);
    await stage(store, w1, false, recs(1000, 800, 30_000));
    const one = copyOf(store, dir);
    let closed = false;
    const helperRan = { jobs: 0 };
    // r2 has no early segments in memory: it rewrites them byte for byte before its jobs
    const helper = worker(withJobs(store, 'r2', clock), () => closed, helperRan);
    const closer = withJobs(store, 'r1', clock, async (step) => {
      if (step === 'shard-written') while (helperRan.jobs === 0 && !closed) await sleep(2);
    });
    const result = await finalizeWindow(closer, w1, w1.end + 10_000, segments).finally(() => {
      closed = true;
    });
    await helper;
    await finalizeW1(context(one.store));
    expect(helperRan.jobs).toBeGreaterThanOrEqual(1);
    expect(result.manifest.shards).toBeGreaterThan(1);
    const a = await stored(one.store, w1);
    const b = await stored(store, w1);
    expect(b.m.counts).toEqual(a.m.counts);
    // copies: 250–299 of the early segment, 900–999 and 1000–1049 of the second file
    expect(b.m.counts).toMatchObject({ records: 1800, duplicatesDropped: 200 });
    expect(b.onTime).toEqual(a.onTime);
    expect(b.m.files[0]).toEqual(a.m.files[0]); // the early segment's part file
  });
});

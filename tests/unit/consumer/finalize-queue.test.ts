import fc from 'fast-check';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { FinalizeQueue } from '@hourglass/consumer/close/finalize-queue';

/** A job as the property test runs it: some turns of work, a size reported after `weighAfter` of them. */
interface JobSpec {
  turns: number;
  weighAfter: number;
  bytes: number;
  alone: boolean;
}

const SHARED = 100;

describe('FinalizeQueue', () => {
  test('one at a time by default, in the order queued, a failed job included', async () => {
    const queue = new FinalizeQueue();
    const events: string[] = [];
    const job = (name: string, fail = false) =>
      queue.run(async () => {
        events.push(`${name}+`);
        await nextTurn();
        events.push(`${name}-`);
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([job('a'), job('b', true), job('c')]);
    expect(events).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  test('a job that weighs more than the shared size waits for the running ones; later jobs wait for it', async () => {
    const queue = new FinalizeQueue({ concurrency: 3, sharedBytes: SHARED });
    const events: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const small = queue.run(async () => {
      events.push('small+');
      await held;
      events.push('small-');
    });
    const big = queue.run(async (job) => {
      events.push('big+');
      await job.weigh(SHARED + 1);
      events.push('big alone');
      await nextTurn();
      events.push('big-');
    });
    await nextTurn();
    const later = queue.run(async () => {
      events.push('later+');
    });
    await nextTurn();
    expect(events).toEqual(['small+', 'big+']);
    release();
    await Promise.all([small, big, later]);
    expect(events).toEqual(['small+', 'big+', 'small-', 'big alone', 'big-', 'later+']);
  });

  test('never more than `concurrency` jobs; a job that runs alone runs with no other; every job ends', async () => {
    const spec = fc.record({
      turns: fc.integer({ min: 0, max: 4 }),
      weighAfter: fc.integer({ min: 0, max: 4 }),
      bytes: fc.integer({ min: 0, max: 2 * SHARED }),
      alone: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(spec, { maxLength: 25 }),
        async (concurrency, specs) => {
          const queue = new FinalizeQueue({ concurrency, sharedBytes: SHARED });
          const running = new Set<number>();
          const alone = new Set<number>();
          let most = 0;
          const check = (): void => {
            most = Math.max(most, running.size);
            expect(running.size).toBeLessThanOrEqual(concurrency);
            if (alone.size > 0) expect(running.size).toBe(1);
          };
          const run = (s: JobSpec, i: number): Promise<number> =>
            queue.run(
              async (job) => {
                running.add(i);
                if (s.alone) alone.add(i);
                check();
                for (let t = 0; t < s.turns; t++) {
                  if (t === s.weighAfter) {
                    running.delete(i); // it gives up its place while it waits
                    await job.weigh(s.bytes);
                    running.add(i);
                    if (s.bytes > SHARED) alone.add(i);
                    check();
                  }
                  await nextTurn();
                  check();
                }
                running.delete(i);
                alone.delete(i);
                return i;
              },
              { alone: s.alone },
            );
          const done = await Promise.all(specs.map(run));
          expect(done).toEqual(specs.map((_, i) => i));
          if (specs.every((s) => !s.alone && s.bytes <= SHARED && s.turns > 0) && specs.length >= concurrency) {
            expect(most).toBe(concurrency);
          }
        },
      ),
      { seed: 20261205, numRuns: 200 },
    );
  });

  test('a concurrency below 1 is refused', () => {
    expect(() => new FinalizeQueue({ concurrency: 0, sharedBytes: SHARED })).toThrow(/concurrency 0/);
  });
});

import fc from 'fast-check';
import { StagedReads } from '@hourglass/consumer/finalize/read-ahead';

/** A store whose reads end when the test says, so what is in flight can be counted. */
class SlowStore {
  readonly pending = new Map<string, { resolve: (b: Buffer | undefined) => void; reject: (e: Error) => void }>();
  readonly started: string[] = [];
  get(name: string): Promise<Buffer | undefined> {
    this.started.push(name);
    return new Promise((resolve, reject) => this.pending.set(name, { resolve, reject }));
  }
  /** Ends the read of `name` with its name as bytes, or as missing. */
  finish(name: string, missing = false): void {
    this.pending.get(name)!.resolve(missing ? undefined : Buffer.from(name));
    this.pending.delete(name);
  }
}

const files = (sizes: number[]) => sizes.map((size, i) => ({ name: `f${i}`, size }));

describe('StagedReads', () => {
  test('reads ahead up to the file and byte limits, in plan order, and hands each file its own bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 120 }),
        async (sizes, maxFiles, maxBytes) => {
          const store = new SlowStore();
          const plan = files(sizes);
          const reads = new StagedReads(store, plan, { files: maxFiles, bytes: maxBytes });
          for (const [i, file] of plan.entries()) {
            const read = reads.take(file);
            // started in plan order; ahead of this one: within both limits, or just the next one
            expect(store.started).toEqual(plan.slice(0, store.started.length).map((f) => f.name));
            const ahead = plan.slice(i + 1, store.started.length);
            if (ahead.length > 1) {
              expect(ahead.length).toBeLessThanOrEqual(maxFiles);
              expect(ahead.reduce((n, f) => n + f.size, 0)).toBeLessThanOrEqual(maxBytes);
            }
            if (i + 1 < plan.length) expect(ahead.length).toBeGreaterThanOrEqual(1);
            store.finish(file.name);
            expect((await read)?.toString()).toBe(file.name);
          }
          expect(store.started.length).toBe(plan.length);
        },
      ),
      { seed: 20261205, numRuns: 200 },
    );
  });

  test('a file larger than the byte limit is still read; a missing one reads as undefined', async () => {
    const store = new SlowStore();
    const plan = files([500, 10]);
    const reads = new StagedReads(store, plan, { files: 4, bytes: 100 });
    const first = reads.take(plan[0]!);
    store.finish('f0');
    store.finish('f1', true);
    expect((await first)?.toString()).toBe('f0');
    expect(await reads.take(plan[1]!)).toBeUndefined();
  });

  test('files taken out of plan order are refused; a failed read never taken is no unhandled rejection', async () => {
    const store = new SlowStore();
    const plan = files([1, 1, 1]);
    const reads = new StagedReads(store, plan, { files: 4, bytes: 100 });
    expect(() => reads.take(plan[1]!)).toThrow(/out of plan order at f1/);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const first = reads.take(plan[0]!);
      store.pending.get('f2')!.reject(new Error('read failed'));
      store.finish('f0');
      await first; // the scan of f0 then fails: f1 and f2 are never taken
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

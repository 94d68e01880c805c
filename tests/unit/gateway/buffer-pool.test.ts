import fc from 'fast-check';
import { ms } from '@hourglass/common';
import { Attr } from '@hourglass/schemas';
import { BatchAnswer } from '@hourglass/gateway';
import { BufferPool } from '@hourglass/gateway/buffer-pool';
import { RequestTrace } from '@hourglass/gateway/traceparent';
import { registry } from '../../gateway/support';
import { bundlerOver } from './bundler-support';

const SEED = 20261206;

describe('BufferPool', () => {
  test('a buffer given back is taken again, and only for a size it can hold without waste', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(10_000);
    expect(a.length).toBe(10_000);
    pool.give(a);
    expect(pool.keptBytes).toBe(10_000);
    expect(pool.take(20_000)).not.toBe(a); // too small
    expect(pool.take(1_000)).not.toBe(a); // over four times the size asked for
    expect(pool.take(9_000)).toBe(a);
    expect(pool.keptBytes).toBe(0);
    expect(pool.take(9_000)).not.toBe(a); // taken once only
  });

  test('views, detached buffers and buffers past the bound are not kept', () => {
    const pool = new BufferPool(64 * 1024);
    pool.give(Buffer.allocUnsafeSlow(8192).subarray(0, 4096)); // a view of part of a buffer
    pool.give(Buffer.allocUnsafeSlow(8192).subarray(16)); // a view at an offset
    pool.give(Buffer.from('small')); // a slice of Node's shared pool
    const moved = Buffer.allocUnsafeSlow(4096);
    structuredClone(moved.buffer, { transfer: [moved.buffer] }); // as the publish worker takes it
    pool.give(moved);
    expect(pool.keptBytes).toBe(0);
    pool.give(Buffer.allocUnsafeSlow(40 * 1024));
    pool.give(Buffer.allocUnsafeSlow(40 * 1024)); // past 64 KiB kept
    expect(pool.keptBytes).toBe(40 * 1024);
  });
});

/**
 * The bundler hands a bundle's buffer to the next bundles only once its publish has settled:
 * until then the client reads the message's data, a view of it. Publishes here settle in a
 * generated order, while more events arrive, and every message must still hold, when it
 * settles, the bytes it was published with; every event is in exactly one message.
 */
describe('Bundler buffer reuse', () => {
  const writers = [registry.get('page_viewed').latest, registry.get('track_played').latest];

  test('a bundle buffer is never written while its publish is in flight (fast-check, seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ type: fc.nat(1), size: fc.integer({ min: 40, max: 3000 }), settle: fc.nat(3) }), {
          minLength: 1,
          maxLength: 120,
        }),
        fc.boolean(),
        async (steps, failSome) => {
          const pending: { data: Buffer; copy: Buffer; settle: (ok: boolean) => void }[] = [];
          const settled: Buffer[] = [];
          const bundler = bundlerOver(
            (_eventType, message) =>
              new Promise<string>((resolve, reject) => {
                const data = message.data;
                expect(Number(message.attributes[Attr.count])).toBeGreaterThan(0);
                const entry = {
                  data,
                  copy: Buffer.from(data),
                  settle: (ok: boolean) => {
                    // what the client would serialize (again, on a retry) up to this moment
                    expect(data.equals(entry.copy)).toBe(true);
                    settled.push(entry.copy);
                    if (ok) resolve('id');
                    else reject(new Error('unavailable'));
                  },
                };
                pending.push(entry);
              }),
            {
              maxEvents: 4,
              maxBytes: 6000,
              linger: ms(60_000),
              maxLinger: ms(60_000),
              lingerTargetEvents: 4,
              publishTimeout: ms(60_000),
            },
          );
          const trace = new RequestTrace(undefined, undefined);
          const sent: Buffer[] = [];
          for (let i = 0; i < steps.length; i++) {
            const { type, size, settle } = steps[i]!;
            // each event's bytes its own: its index in every byte pair, so a byte out of place shows
            const datum = Buffer.alloc(size);
            for (let b = 0; b + 1 < size; b += 2) datum.writeUInt16BE(i, b);
            sent.push(datum);
            const answer = new BatchAnswer(1);
            answer.expectDatum(0, datum);
            bundler.add(writers[type]!, datum, Date.now(), trace, answer, 0);
            // settle some publishes in flight, oldest or newest first, while events keep coming
            for (let s = 0; s < settle && pending.length > 0; s++) {
              const entry = s % 2 === 0 ? pending.shift()! : pending.pop()!;
              entry.settle(!(failSome && s === 1));
              await Promise.resolve();
              await Promise.resolve();
            }
          }
          bundler.drain();
          while (pending.length > 0) {
            pending.shift()!.settle(true);
            await Promise.resolve();
          }
          await bundler.idle();
          // every event's bytes in some message, and the messages' bytes add up to the events': each exactly once
          const all = Buffer.concat(settled);
          expect(all.length).toBe(sent.reduce((n, d) => n + d.length, 0));
          for (const datum of sent) expect(all.indexOf(datum)).toBeGreaterThanOrEqual(0);
        },
      ),
      { seed: SEED, numRuns: 150 },
    );
  });
});

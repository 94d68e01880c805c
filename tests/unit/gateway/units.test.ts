import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { ManualClock, isHourglassError, sha256Hex } from '@hourglass/common';
import { BatchAnswer, KeyRing } from '@hourglass/gateway';
import { RateLimiter } from '@hourglass/gateway/rate-limiter';
import { canonicalUuid } from '@hourglass/gateway/prepare';
import { traceparentFor } from '@hourglass/gateway/traceparent';
import { DatumArena } from '@hourglass/gateway/datum-arena';
import { compiledWriterOf } from '@hourglass/schemas';
import { errorBody, classify } from '@hourglass/gateway/http-errors';
import { decodeContent } from '@hourglass/gateway/body';
import { OutstandingBudget } from '@hourglass/gateway/outstanding';
import { INVALID_SPAN_CONTEXT } from '@opentelemetry/api';
import { registry, samplePayloads } from '../../gateway/support';

describe('rate limiter', () => {
  test('a bucket holds one second of events and refills with the clock', () => {
    const clock = new ManualClock(1_000_000);
    const limiter = new RateLimiter(clock);
    expect(limiter.take('k', 100, 60)).toEqual({ ok: true });
    expect(limiter.take('k', 100, 60)).toEqual({ ok: false, retryAfterSeconds: 1 });
    clock.advance(200); // +20 tokens: 60 available
    expect(limiter.take('k', 100, 60)).toEqual({ ok: true });
    expect(limiter.take('other', 100, 100)).toEqual({ ok: true });
  });

  test('a batch larger than the bucket passes on a full bucket and leaves a debt', () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter(clock);
    expect(limiter.take('k', 10, 50)).toEqual({ ok: true });
    // 40 events of debt + 10 for the next full batch: five seconds.
    expect(limiter.take('k', 10, 50)).toEqual({ ok: false, retryAfterSeconds: 5 });
    clock.advance(4000);
    expect(limiter.take('k', 10, 50).ok).toBe(false);
    clock.advance(1000);
    expect(limiter.take('k', 10, 50).ok).toBe(true);
  });
});

describe('batch answer', () => {
  test('status codes follow the contract', () => {
    const make = (outcomes: ('a' | 'r' | 'f' | 't')[]) => {
      const answer = new BatchAnswer(outcomes.length);
      outcomes.forEach((o, i) => {
        if (o === 'r') answer.rejectEvent(i, { code: 'EVENT_INVALID', path: 'payload.x', reason: 'bad' });
        else if (o === 'f') answer.rejectEvent(i, { code: 'HTTP_FORBIDDEN', path: 'type', reason: 'no' });
        else {
          answer.expect(i, `00000000-0000-4000-8000-00000000000${i}`);
          answer.settle(i, o === 'a' ? undefined : { code: 'PUBLISH_TIMEOUT', reason: 'slow' });
        }
      });
      return answer.statusCode();
    };
    expect(make(['a', 'a'])).toBe(200);
    expect(make(['r', 'r'])).toBe(400);
    expect(make(['r', 'f'])).toBe(400);
    expect(make(['f', 'f'])).toBe(403);
    expect(make(['t', 't'])).toBe(503);
    expect(make(['a', 'r'])).toBe(207);
    expect(make(['a', 't'])).toBe(207);
    expect(make(['r', 't'])).toBe(207);
  });

  test('the JSON lists every event by index and resolves once all settled', async () => {
    const answer = new BatchAnswer(3);
    answer.expect(0, '00000000-0000-4000-8000-000000000000');
    answer.rejectEvent(1, { code: 'EVENT_INVALID', path: 'payload."x"', reason: 'has "quotes"' });
    answer.expect(2, '00000000-0000-4000-8000-000000000002');
    let settled = false;
    const done = answer.settled().then(() => (settled = true));
    answer.settle(0, undefined);
    await Promise.resolve();
    expect(settled).toBe(false);
    answer.settle(2, { code: 'PUBLISH_FAILED', reason: 'down' });
    await done;
    expect(JSON.parse(answer.toBody().toString('utf8'))).toEqual({
      accepted: 1,
      rejected: 1,
      retry: 1,
      results: [
        { status: 'accepted', id: '00000000-0000-4000-8000-000000000000' },
        { status: 'rejected', code: 'EVENT_INVALID', path: 'payload."x"', reason: 'has "quotes"' },
        { status: 'retry', id: '00000000-0000-4000-8000-000000000002', code: 'PUBLISH_FAILED', reason: 'down' },
      ],
    });
  });

  test('the body is exactly the JSON: all accepted, and rejections with non-ASCII paths', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    const all = new BatchAnswer(ids.length);
    ids.forEach((id, i) => all.expect(i, id));
    ids.forEach((_, i) => all.settle(i, undefined));
    await all.settled();
    expect(JSON.parse(all.toBody().toString('utf8'))).toEqual({
      accepted: 100,
      rejected: 0,
      retry: 0,
      results: ids.map((id) => ({ status: 'accepted', id })),
    });

    const mixed = new BatchAnswer(3);
    mixed.rejectEvent(0, { code: 'EVENT_INVALID', path: 'naïve→✓', reason: 'is not an event field (ü)' });
    mixed.expect(1, ids[1]!);
    mixed.settle(1, undefined);
    mixed.rejectEvent(2, { code: 'EVENT_INVALID', path: '😀', reason: 'é' });
    const body = mixed.toBody();
    expect(JSON.parse(body.toString('utf8')).results).toEqual([
      { status: 'rejected', code: 'EVENT_INVALID', path: 'naïve→✓', reason: 'is not an event field (ü)' },
      { status: 'accepted', id: ids[1] },
      { status: 'rejected', code: 'EVENT_INVALID', path: '😀', reason: 'é' },
    ]);
    expect(body[body.length - 1]).toBe(0x7d);
  });
  test('the body is JSON.stringify of the answer, byte for byte, for any mix of outcomes (seeded)', () => {
    const problem = fc.record({
      code: fc.constantFrom('EVENT_INVALID' as const, 'HTTP_FORBIDDEN' as const, 'PUBLISH_FAILED' as const),
      path: fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
      reason: fc.string({ unit: 'binary' }),
    });
    const outcome = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({ kind: fc.constant('accepted' as const), viaDatum: fc.boolean(), id: fc.uuid() }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('rejected' as const), problem }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('retry' as const), id: fc.uuid(), problem }) },
    );
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 1200 }), (outcomes) => {
        const answer = new BatchAnswer(outcomes.length);
        const results: object[] = [];
        outcomes.forEach((o, i) => {
          if (o.kind === 'rejected') {
            answer.rejectEvent(i, o.problem);
            const { path, ...rest } = o.problem;
            results.push({
              status: 'rejected',
              code: rest.code,
              ...(path !== undefined ? { path } : {}),
              reason: rest.reason,
            });
            return;
          }
          if (o.kind === 'accepted' && o.viaDatum) {
            const datum = Buffer.concat([Buffer.from([72]), Buffer.from(o.id, 'latin1'), Buffer.from([2, 4])]);
            answer.expectDatum(i, Buffer.concat([Buffer.alloc(i % 7), datum]), i % 7);
          } else {
            answer.expect(i, o.id);
          }
          if (o.kind === 'accepted') {
            answer.settle(i, undefined);
            results.push({ status: 'accepted', id: o.id });
          } else {
            answer.settle(i, o.problem);
            results.push({ status: 'retry', id: o.id, code: o.problem.code, reason: o.problem.reason });
          }
        });
        const count = (k: string) => outcomes.filter((o) => o.kind === k).length;
        const expected: Record<string, unknown> = {
          accepted: count('accepted'),
          rejected: count('rejected'),
          retry: count('retry'),
        };
        const firstRetry = outcomes.find((o) => o.kind === 'retry');
        if (count('accepted') === 0 && count('rejected') < outcomes.length && firstRetry?.kind === 'retry') {
          expected.error = { code: firstRetry.problem.code, message: firstRetry.problem.reason };
        }
        expected.results = results;
        expect(answer.toBody().toString('utf8')).toBe(JSON.stringify(expected));
      }),
      { seed: 20261206, numRuns: 300 },
    );
  });
});

describe('API keys', () => {
  const ring = new KeyRing([{ name: 'a', sha256: sha256Hex('tok-a'), types: undefined, ratePerSecond: 1 }]);
  test.each([
    ['Bearer tok-a', 'a'],
    ['bearer tok-a', 'a'],
    ['Bearer  tok-a ', 'a'],
    ['Bearer tok-b', undefined],
    ['tok-a', undefined],
    ['Basic tok-a', undefined],
    [undefined, undefined],
  ])('%j -> %s', (header, name) => {
    expect(ring.authenticate(header)?.name).toBe(name);
  });
});

describe('small pieces', () => {
  test('UUIDs are checked and canonicalised', () => {
    expect(canonicalUuid('0AF76519-16CD-43DD-8448-EB211C80319C')).toBe('0af76519-16cd-43dd-8448-eb211c80319c');
    expect(canonicalUuid('0af76519-16cd-43dd-8448-eb211c80319c')).toBe('0af76519-16cd-43dd-8448-eb211c80319c');
    for (const bad of [
      '',
      'x',
      '0af7651916cd43dd8448eb211c80319c',
      '0af76519-16cd-43dd-8448-eb211c80319g',
      '0af76519-16cd-43dd-8448_eb211c80319c',
    ]) {
      expect(canonicalUuid(bad)).toBeUndefined();
    }
  });

  test('traceparent: continues a caller trace, else starts one', () => {
    const caller = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(traceparentFor(INVALID_SPAN_CONTEXT, caller)).toMatch(
      /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/,
    );
    expect(traceparentFor(INVALID_SPAN_CONTEXT, caller)).not.toBe(caller);
    const fresh = traceparentFor(INVALID_SPAN_CONTEXT, 'garbage');
    expect(fresh).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(traceparentFor(INVALID_SPAN_CONTEXT, undefined)).not.toBe(fresh);
    const sdk = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 };
    expect(traceparentFor(sdk, undefined)).toBe(caller);
  });

  test('datum arena: views of shared chunks decode to what was encoded, across chunk boundaries', () => {
    const arena = new DatumArena();
    const type = registry.get('track_played').latest.type;
    const records = Array.from({ length: 5000 }, (_, i) => ({
      meta: { event_id: `id-${i}`, gateway_ts: i, client_ts: null, gateway_id: 'g' },
      ...samplePayloads.track_played,
      user_id: `user-${i}`.repeat(1 + (i % 7)),
    }));
    const datums = records.map((r) => arena.encode(type, r));
    datums.forEach((d, i) => expect(type.fromBuffer(d)).toEqual(records[i]));
    const big = { ...records[0], country: 'x'.repeat(100_000) };
    expect(type.fromBuffer(arena.encode(type, big))).toEqual(big);
    expect(type.fromBuffer(datums[0]!)).toEqual(records[0]);
  });

  test('datum arena: compiled events encode to the record bytes across chunk boundaries; one too big for a chunk is declined', () => {
    const arena = new DatumArena();
    const version = registry.get('track_played').latest;
    const writer = compiledWriterOf(version)!;
    for (let i = 0; i < 5000; i++) {
      const meta = { event_id: `id-${i}`, gateway_ts: i, client_ts: i % 2 ? null : i, gateway_id: 'g' };
      const payload = { ...samplePayloads.track_played, user_id: `user-${i}`.repeat(1 + (i % 7)) };
      expect(writer.accepts(meta, payload)).toBe(true);
      const datum = arena.encodeEvent(writer, meta, payload)!;
      expect(datum.equals(version.type.toBuffer({ meta, ...payload }))).toBe(true);
    }
    const meta = { event_id: 'big', gateway_ts: 1, client_ts: null, gateway_id: 'g' };
    expect(arena.encodeEvent(writer, meta, { ...samplePayloads.track_played, country: 'x'.repeat(300_000) })).toBe(
      undefined,
    );
    const after = arena.encodeEvent(writer, meta, samplePayloads.track_played as object)!;
    expect(after.equals(version.type.toBuffer({ meta, ...samplePayloads.track_played }))).toBe(true);
  });

  test('error bodies: 5xx say only "internal error"; fastify errors map to the catalogue', () => {
    expect(JSON.parse(errorBody('INTERNAL', 'TypeError at /srv/app.js:12'))).toEqual({
      error: { code: 'INTERNAL', message: 'internal error' },
    });
    expect(JSON.parse(errorBody('HTTP_BAD_REQUEST', 'the body is not valid JSON')).error.message).toBe(
      'the body is not valid JSON',
    );
    expect(classify({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }).code).toBe('HTTP_BODY_TOO_LARGE');
    expect(classify({ code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }).code).toBe(
      'HTTP_UNSUPPORTED_MEDIA_TYPE',
    );
    expect(classify(new Error('db password is hunter2'))).toEqual({ code: 'INTERNAL', message: 'internal error' });
  });

  test('content decoding stops at the decompressed limit', async () => {
    const small = gzipSync('{"events":[]}');
    expect((await decodeContent(small, 'gzip', 1024)).toString()).toBe('{"events":[]}');
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024));
    await expect(decodeContent(bomb, 'gzip', 1024 * 1024)).rejects.toMatchObject({ code: 'HTTP_BODY_TOO_LARGE' });
    let thrown: unknown;
    try {
      await decodeContent(small, 'deflate', 1024);
    } catch (e) {
      thrown = e;
    }
    expect(isHourglassError(thrown, 'HTTP_UNSUPPORTED_MEDIA_TYPE')).toBe(true);
  });

  test('outstanding budget: bounded, but an idle budget admits one oversized request', () => {
    const budget = new OutstandingBudget(1000, 10);
    expect(budget.tryReserve(2000, 20)).toBe(true);
    expect(budget.full()).toBe(true);
    expect(budget.tryReserve(1, 1)).toBe(false);
    budget.release(2000, 20);
    expect(budget.tryReserve(600, 6)).toBe(true);
    expect(budget.tryReserve(500, 1)).toBe(false);
    expect(budget.tryReserve(400, 4)).toBe(true);
  });
});

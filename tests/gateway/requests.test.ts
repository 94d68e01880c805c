import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ManualClock } from '@hourglass/common';
import type { Gateway } from '@hourglass/gateway';
import {
  T0,
  TOKENS,
  auth,
  provision,
  pullEvents,
  samplePayloads,
  send,
  startTestGateway,
  tally,
  uniquePrefix,
  type HttpResponse,
  type Answer,
} from './support';

/**
 * Every malformed, oversized, unauthenticated, forbidden or too-fast request gets its
 * documented answer (status, error code, per-event result), and the gateway keeps
 * serving: a valid request after each one still succeeds.
 */
const track = () => ({ type: 'track_played', payload: samplePayloads.track_played });

describe('requests the gateway refuses', () => {
  const prefix = uniquePrefix('req');
  let subs: Map<string, string>;
  let gateway: Gateway;
  const clock = new ManualClock(T0);
  const acceptedIds: string[] = [];
  const limits = {
    maxBodyBytes: 64 * 1024,
    maxDecompressedBytes: 256 * 1024,
    maxEventsPerBatch: 50,
    maxEventBytes: 2048,
  };

  beforeAll(async () => {
    subs = await provision(prefix);
    gateway = await startTestGateway({ prefix, clock, config: limits });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  const post = (payload: unknown, headers: Record<string, string> = auth()) =>
    send(gateway, { url: '/v1/events', headers, payload });

  /** After every refusal: the same gateway still accepts a valid batch. */
  async function stillServing(): Promise<void> {
    const res = await post({ events: [track(), { type: 'ab_exposure', payload: samplePayloads.ab_exposure }] });
    expect(res.statusCode).toBe(200);
    const answer = res.json<Answer>();
    expect(answer).toMatchObject({ accepted: 2, rejected: 0, retry: 0 });
    acceptedIds.push(...answer.results.map((r) => r.id!));
  }

  function expectError(res: HttpResponse, status: number, code: string): void {
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json<Answer>().error?.code).toBe(code);
  }

  test('a mixed batch answers 207 with a result per index', async () => {
    const badId = 'not-a-uuid';
    const res = await post({
      events: [
        track(),
        { type: 'no_such_type', payload: {} },
        { type: 'track_played', payload: { ...samplePayloads.track_played, ms_played: 'long' } },
        { type: 'track_played', id: badId, payload: samplePayloads.track_played },
        { type: 'track_played', payload: { ...samplePayloads.track_played, extra_field: 1 } },
        { type: 'track_played', payload: samplePayloads.track_played, client_ts: 'yesterday' },
        { type: 'track_played', payload: samplePayloads.track_played, tags: ['x'] },
        'not an object',
        { type: 'track_played', payload: { ...samplePayloads.track_played, meta: {} } },
        { type: 'track_played', payload: { ...samplePayloads.track_played, country: 'X'.repeat(3000) } },
      ],
    });
    expect(res.statusCode).toBe(207);
    expect(res.headers['retry-after']).toBeUndefined();
    const { results, accepted, rejected, retry } = res.json<Answer>();
    expect({ accepted, rejected, retry }).toEqual({ accepted: 1, rejected: 9, retry: 0 });
    expect(results[0]).toMatchObject({ status: 'accepted' });
    acceptedIds.push(results[0]!.id!);
    expect(results.slice(1).map(({ code, path }) => ({ code, path }))).toEqual([
      { code: 'SCHEMA_UNKNOWN_TYPE', path: 'type' },
      { code: 'EVENT_INVALID', path: 'payload.ms_played' },
      { code: 'EVENT_INVALID', path: 'id' },
      { code: 'EVENT_INVALID', path: 'payload.extra_field' },
      { code: 'EVENT_INVALID', path: 'client_ts' },
      { code: 'EVENT_INVALID', path: 'tags' },
      { code: 'EVENT_INVALID', path: undefined },
      { code: 'EVENT_INVALID', path: 'payload.meta' },
      { code: 'HTTP_EVENT_TOO_LARGE', path: 'payload' },
    ]);
    for (const r of results.slice(1)) expect(r.reason).toEqual(expect.any(String));
    await stillServing();
  });

  test('a batch whose events are all rejected answers 400', async () => {
    const res = await post({
      events: [
        { type: 'nope', payload: {} },
        { type: 'track_played', payload: {} },
      ],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json<Answer>()).toMatchObject({ accepted: 0, rejected: 2, retry: 0 });
    await stillServing();
  });

  test.each([
    ['not JSON', 400, 'HTTP_BAD_REQUEST', '{"events": ['],
    ['no events field', 400, 'HTTP_BAD_REQUEST', '{"evts": []}'],
    ['an empty batch', 400, 'HTTP_BAD_REQUEST', '{"events": []}'],
    ['events not an array', 400, 'HTTP_BAD_REQUEST', '{"events": {"type": "x"}}'],
    ['a JSON array body', 400, 'HTTP_BAD_REQUEST', '[]'],
  ])('%s answers %i %s', async (_what, status, code, body) => {
    expectError(await post(body, { ...auth(), 'content-type': 'application/json' }), status, code);
    await stillServing();
  });

  test('a wrong content type answers 415', async () => {
    expectError(
      await post('events=1', { ...auth(), 'content-type': 'application/x-www-form-urlencoded' }),
      415,
      'HTTP_UNSUPPORTED_MEDIA_TYPE',
    );
    expectError(
      await post('{"events":[]}', { ...auth(), 'content-type': 'text/plain' }),
      415,
      'HTTP_UNSUPPORTED_MEDIA_TYPE',
    );
    await stillServing();
  });

  test('an unsupported content encoding answers 415', async () => {
    const res = await post(Buffer.from(JSON.stringify({ events: [track()] })), {
      ...auth(),
      'content-type': 'application/json',
      'content-encoding': 'br',
    });
    expectError(res, 415, 'HTTP_UNSUPPORTED_MEDIA_TYPE');
    await stillServing();
  });

  test('a gzip body is accepted', async () => {
    const body = gzipSync(JSON.stringify({ events: [track(), track()] }));
    const res = await post(body, { ...auth(), 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(res.statusCode).toBe(200);
    acceptedIds.push(...res.json<Answer>().results.map((r) => r.id!));
  });

  test('an oversized body answers 413', async () => {
    const events = Array.from({ length: 40 }, () => ({
      type: 'track_played',
      payload: { ...samplePayloads.track_played, country: 'x'.repeat(2000) },
    }));
    expectError(await post({ events }), 413, 'HTTP_BODY_TOO_LARGE');
    await stillServing();
  });

  test('a gzip bomb is refused at the decompressed limit', async () => {
    // 32 MB of zeros inside a ~32 KB gzip body: well under the wire limit, far over the decompressed one.
    const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024), { level: 9 });
    expect(bomb.length).toBeLessThan(limits.maxBodyBytes);
    const res = await post(bomb, { ...auth(), 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expectError(res, 413, 'HTTP_BODY_TOO_LARGE');
    expect(res.json<Answer>().error?.message).toMatch(/decompressed/);
    await stillServing();
  });

  test('a corrupt gzip body answers 400', async () => {
    const res = await post(Buffer.from('definitely not gzip'), {
      ...auth(),
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expectError(res, 400, 'HTTP_BAD_REQUEST');
    await stillServing();
  });

  test('too many events in one batch answers 413', async () => {
    const events = Array.from({ length: limits.maxEventsPerBatch + 1 }, track);
    expectError(await post({ events }), 413, 'HTTP_BATCH_TOO_LARGE');
    await stillServing();
  });

  test('a missing, malformed or unknown key answers 401', async () => {
    const body = { events: [track()] };
    for (const headers of [
      {},
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer ' },
      auth('no-such-token'),
    ]) {
      const res = await post(body, headers);
      expectError(res, 401, 'HTTP_UNAUTHENTICATED');
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
    await stillServing();
  });

  test('a key used for a type it does not cover: those events are rejected, the others accepted', async () => {
    const mixed = await post(
      { events: [track(), { type: 'ab_exposure', payload: samplePayloads.ab_exposure }] },
      auth(TOKENS.tracks),
    );
    expect(mixed.statusCode).toBe(207);
    const answer = mixed.json<Answer>();
    expect(answer.results[0]).toMatchObject({ status: 'accepted' });
    expect(answer.results[1]).toMatchObject({ status: 'rejected', code: 'HTTP_FORBIDDEN', path: 'type' });
    acceptedIds.push(answer.results[0]!.id!);
    const forbidden = await post(
      { events: [{ type: 'ab_exposure', payload: samplePayloads.ab_exposure }] },
      auth(TOKENS.tracks),
    );
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json<Answer>().results[0]).toMatchObject({ status: 'rejected', code: 'HTTP_FORBIDDEN' });
    await stillServing();
  });

  test('a key over its rate limit answers 429 with Retry-After until its bucket refills', async () => {
    // The "slow" key allows 10 events/s with a burst of one second's worth.
    const seven = { events: Array.from({ length: 7 }, track) };
    const first = await post(seven, auth(TOKENS.slow));
    expect(first.statusCode).toBe(200);
    acceptedIds.push(...first.json<Answer>().results.map((r) => r.id!));
    const second = await post(seven, auth(TOKENS.slow));
    expectError(second, 429, 'HTTP_RATE_LIMITED');
    expect(Number(second.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Other keys are not affected.
    await stillServing();
    clock.advance(1000);
    const third = await post(seven, auth(TOKENS.slow));
    expect(third.statusCode).toBe(200);
    acceptedIds.push(...third.json<Answer>().results.map((r) => r.id!));
  });

  test('unknown routes answer 404 with a catalogue code', async () => {
    const res = await send(gateway, { method: 'GET', url: '/v2/nothing' });
    expectError(res, 404, 'HTTP_NOT_FOUND');
    await stillServing();
  });

  test('client ids are kept (lower-cased) and assigned when absent', async () => {
    const id = randomUUID().toUpperCase();
    const res = await post({ events: [{ ...track(), id }, track()] });
    const [a, b] = res.json<Answer>().results;
    expect(a!.id).toBe(id.toLowerCase());
    expect(b!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    acceptedIds.push(a!.id!, b!.id!);
  });

  test('exactly the accepted events of all the above are on the topics', async () => {
    const found = await pullEvents(subs);
    expect(tally(acceptedIds, found)).toEqual({
      accepted: acceptedIds.length,
      found: acceptedIds.length,
      lost: 0,
      duplicated: 0,
      unexpected: 0,
    });
  });
});

import { randomUUID } from 'node:crypto';
import { parseApiKeys, type Gateway } from '@hourglass/gateway';
import {
  ALL_TYPES,
  TOKENS,
  auth,
  provision,
  pullEvents,
  samplePayloads,
  send,
  startTestGateway,
  tally,
  uniquePrefix,
  type Answer,
  type HttpResponse,
} from '../gateway/support';
import { PUBLISHABLE, keysWithPublishable } from './support';

/**
 * Publishable keys: what the key file accepts, CORS on POST /v1/events (preflight and
 * answers) for allowed, refused, missing and `null` origins, and beacons (`?key=`,
 * text/plain or form bodies) that go through the JSON route's validation and reach Pub/Sub.
 */
const [PAGE_ORIGIN] = PUBLISHABLE.origins as [string];
const page = (n = 1) =>
  Array.from({ length: n }, () => ({ type: 'page_viewed', id: randomUUID(), payload: samplePayloads.page_viewed }));

function expectError(res: HttpResponse, status: number, code: string): void {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(Object.keys(res.json<{ error: object }>().error).sort()).toEqual(['code', 'message']);
  expect(res.json<Answer>().error?.code).toBe(code);
}

describe('the API keys file with publishable keys', () => {
  const entry = {
    name: 'site',
    sha256: 'a'.repeat(64),
    kind: 'publishable',
    types: ['page_viewed'],
    origins: ['https://app.example.com', 'http://localhost:8080'],
  };

  test('a publishable key keeps its origins; a server key has none', () => {
    const [site, server] = parseApiKeys([entry, { name: 'srv', sha256: 'b'.repeat(64), types: ['*'] }], ALL_TYPES, 5);
    expect([...site!.origins!]).toEqual(entry.origins);
    expect(site!.types).toEqual(new Set(['page_viewed']));
    expect(server!.origins).toBeUndefined();
  });

  test.each([
    ['no origins', { origins: undefined }, /must list its "origins"/],
    ['every type', { types: ['*'] }, /must name its event types/],
    ['a wildcard origin', { origins: ['*'] }, /origin "\*" is not of the form/],
    ['the null origin', { origins: ['null'] }, /origin "null"/],
    ['an origin with a path', { origins: ['https://app.example.com/'] }, /is not of the form/],
    ['an upper-case host', { origins: ['https://App.example.com'] }, /is not of the form/],
    ['a non-web scheme', { origins: ['ftp://app.example.com'] }, /is not of the form/],
    ['origins on a server key', { kind: 'server' }, /lists origins but is not/],
  ])('refuses %s', (_what, change, message) => {
    const json = [JSON.parse(JSON.stringify({ ...entry, ...change })) as unknown];
    expect(() => parseApiKeys(json, ALL_TYPES, 5)).toThrow(message);
  });
});

describe('CORS and beacons on POST /v1/events', () => {
  const prefix = uniquePrefix('web');
  let subs: Map<string, string>;
  let gateway: Gateway;
  const accepted: string[] = [];

  beforeAll(async () => {
    subs = await provision(prefix, { types: ['page_viewed', 'track_played'] });
    gateway = await startTestGateway({ prefix, apiKeys: keysWithPublishable() });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  const preflight = (origin: string | undefined, url = '/v1/events') =>
    send(gateway, {
      method: 'OPTIONS',
      url,
      headers: {
        ...(origin !== undefined ? { origin } : {}),
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });

  const postFrom = (origin: string | undefined, events: unknown[], token = PUBLISHABLE.token) =>
    send(gateway, {
      url: '/v1/events',
      headers: { ...auth(token), ...(origin ? { origin } : {}) },
      payload: { events },
    });

  test('a preflight from a listed origin is granted for that origin only, with a cache lifetime', async () => {
    const res = await preflight(PAGE_ORIGIN);
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(PAGE_ORIGIN);
    expect(res.headers['access-control-allow-methods']).toBe('POST');
    expect(res.headers['access-control-allow-headers']).toMatch(/authorization/);
    expect(res.headers['access-control-allow-headers']).toMatch(/content-type/);
    expect(Number(res.headers['access-control-max-age'])).toBeGreaterThan(0);
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toMatch(/Origin/);
  });

  test('a preflight naming its key is granted only for that key’s origins', async () => {
    expect((await preflight(PUBLISHABLE.otherOrigin, `/v1/events?key=${PUBLISHABLE.other}`)).statusCode).toBe(204);
    expectError(await preflight(PAGE_ORIGIN, `/v1/events?key=${PUBLISHABLE.other}`), 403, 'ORIGIN_NOT_ALLOWED');
  });

  test.each([
    ['a refused origin', 'https://evil.example.net'],
    ['a missing origin', undefined],
    ['the null origin', 'null'],
    ['a listed origin with another port', 'http://127.0.0.1:5174'],
  ])('a preflight from %s is refused in the error shape, without CORS grants', async (_what, origin) => {
    const res = await preflight(origin);
    expectError(res, 403, 'ORIGIN_NOT_ALLOWED');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  test('a batch from a listed origin is accepted and its answer is readable by the page', async () => {
    const res = await postFrom(PAGE_ORIGIN, page(3));
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(PAGE_ORIGIN);
    expect(res.headers['access-control-expose-headers']).toMatch(/retry-after/);
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    const answer = res.json<Answer>();
    expect(answer).toMatchObject({ accepted: 3, rejected: 0, retry: 0 });
    accepted.push(...answer.results.map((r) => r.id!));
  });

  test.each([
    ['a refused origin', 'https://evil.example.net'],
    ['a missing origin', undefined],
    ['the null origin', 'null'],
    ['another publishable key’s origin', PUBLISHABLE.otherOrigin],
  ])('a publishable key from %s is refused before its body is read', async (_what, origin) => {
    expectError(await postFrom(origin, page(1)), 403, 'ORIGIN_NOT_ALLOWED');
  });

  test('a publishable key sends only its own types', async () => {
    const res = await postFrom(PAGE_ORIGIN, [{ type: 'ab_exposure', payload: samplePayloads.ab_exposure }]);
    expect(res.statusCode).toBe(403);
    expect(res.json<Answer>().results[0]).toMatchObject({ status: 'rejected', code: 'HTTP_FORBIDDEN', path: 'type' });
  });

  test('a publishable key cannot use the Avro route', async () => {
    const res = await send(gateway, {
      url: '/v1/events/page_viewed',
      headers: { ...auth(PUBLISHABLE.token), origin: PAGE_ORIGIN, 'content-type': 'avro/binary' },
      payload: Buffer.from([0]),
    });
    expectError(res, 403, 'HTTP_FORBIDDEN');
  });

  test('server keys are unchanged: any or no Origin, no key in the query string', async () => {
    const res = await postFrom('https://evil.example.net', page(1), TOKENS.all);
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    accepted.push(res.json<Answer>().results[0]!.id!);
    const inQuery = await send(gateway, {
      url: `/v1/events?key=${TOKENS.all}`,
      headers: { origin: PAGE_ORIGIN, 'content-type': 'text/plain' },
      payload: JSON.stringify({ events: page(1) }),
    });
    expectError(inQuery, 401, 'HTTP_UNAUTHENTICATED');
  });

  const beacon = (body: string, contentType: string, origin: string | null = PAGE_ORIGIN) =>
    send(gateway, {
      url: `/v1/events?key=${PUBLISHABLE.token}`,
      headers: { 'content-type': contentType, ...(origin ? { origin } : {}) },
      payload: body,
    });

  test('a text/plain beacon (what sendBeacon sends for a string) delivers its batch', async () => {
    const events = page(2);
    const res = await beacon(JSON.stringify({ events }), 'text/plain;charset=UTF-8');
    expect(res.statusCode).toBe(200);
    expect(res.json<Answer>().results.map((r) => r.id)).toEqual(events.map((e) => e.id));
    accepted.push(...events.map((e) => e.id));
  });

  test('a form beacon (an `events` field holding the JSON array) delivers its batch', async () => {
    const events = page(2);
    const res = await beacon(
      new URLSearchParams({ events: JSON.stringify(events) }).toString(),
      'application/x-www-form-urlencoded',
    );
    expect(res.statusCode).toBe(200);
    expect(res.json<Answer>().accepted).toBe(2);
    accepted.push(...events.map((e) => e.id));
  });

  test('a beacon gets exactly the JSON route’s per-event validation', async () => {
    const batch = {
      events: [
        { type: 'page_viewed', payload: { ...samplePayloads.page_viewed, duration_ms: 'long' } },
        { type: 'page_viewed', id: 'not-a-uuid', payload: samplePayloads.page_viewed },
        { type: 'ab_exposure', payload: samplePayloads.ab_exposure },
        { type: 'nope', payload: {} },
      ],
    };
    const viaBeacon = (await beacon(JSON.stringify(batch), 'text/plain')).json<Answer>();
    const viaJson = (await postFrom(PAGE_ORIGIN, batch.events)).json<Answer>();
    expect(viaBeacon).toEqual(viaJson);
    expect(viaBeacon.rejected).toBe(4);
  });

  test.each([
    ['not JSON', '{"events": [', 'text/plain'],
    ['no events field', 'batch=1', 'application/x-www-form-urlencoded'],
    ['an empty batch', '{"events": []}', 'text/plain'],
  ])('a beacon with %s answers 400 HTTP_BAD_REQUEST', async (_what, body, type) => {
    expectError(await beacon(body, type), 400, 'HTTP_BAD_REQUEST');
  });

  test('a beacon from a refused or missing origin is refused', async () => {
    expectError(
      await beacon(JSON.stringify({ events: page(1) }), 'text/plain', 'https://evil.example.net'),
      403,
      'ORIGIN_NOT_ALLOWED',
    );
    expectError(await beacon(JSON.stringify({ events: page(1) }), 'text/plain', null), 403, 'ORIGIN_NOT_ALLOWED');
  });

  test('every accepted event is on its topic exactly once; nothing refused got there', async () => {
    const found = await pullEvents(subs);
    expect(tally(accepted, found)).toEqual({
      accepted: accepted.length,
      found: accepted.length,
      lost: 0,
      duplicated: 0,
      unexpected: 0,
    });
    expect(accepted.length).toBe(8);
  });
});

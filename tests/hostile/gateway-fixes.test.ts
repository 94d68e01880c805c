import { randomUUID } from 'node:crypto';
import type { Gateway } from '@hourglass/gateway';
import { decodeBundle } from '@hourglass/schemas';
import { auth, portOf, registry, samplePayloads, send, type Answer } from '../gateway/support';
import {
  datumOf,
  firstDifference,
  parseRawResponse,
  rawExchange,
  recordingGateway,
  splice,
  type RecordingPublisher,
} from './support';

/**
 * Issue #14, gateway side (fixes 1–5): every hostile value is a per-event rejection with a
 * path and a bounded reason, or a whole-request error in the documented shape; never a 5xx,
 * and nothing of a rejected input is published.
 */
let gateway: Gateway;
let published: RecordingPublisher;
beforeAll(async () => {
  ({ gateway, published } = await recordingGateway());
});
afterAll(async () => {
  await gateway?.close();
});

/** An event whose payload `field` is the raw JSON `literal` (the last of two equal keys wins in JSON.parse). */
const withRaw = (event: object, field: string, literal: string) =>
  `${JSON.stringify(event).slice(0, -2)},"${field}":${literal}}}`;

const track = (payload: Record<string, unknown> = {}) => ({
  type: 'track_played',
  id: randomUUID(),
  payload: { ...samplePayloads.track_played, ...payload },
});

/** The event ids in every message published since `from`. */
function publishedIds(from: number): string[] {
  return published.messages
    .slice(from)
    .flatMap(({ message }) => decodeBundle(registry, message.data, message.attributes).records)
    .map((r) => r.meta.event_id);
}

async function postJson(body: string | Buffer): Promise<{ status: number; answer: Answer }> {
  const res = await send(gateway, {
    url: '/v1/events',
    headers: { ...auth(), 'content-type': 'application/json' },
    payload: body,
  });
  return { status: res.statusCode, answer: res.json<Answer>() };
}

describe('#14.1 a deeply nested value where a string or an enum is expected', () => {
  test.each([
    ['user_id', 'a string'],
    ['platform', 'an enum'],
  ])('in %s (%s): a per-event rejection with a bounded reason, the good event published', async (field) => {
    const good = track();
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const bad = withRaw(track(), field, deep);
    const from = published.messages.length;
    const { status, answer } = await postJson(`{"events":[${JSON.stringify(good)},${bad}]}`);
    expect(status).toBe(207);
    expect(answer.results[1]).toMatchObject({ status: 'rejected', code: 'EVENT_INVALID', path: `payload.${field}` });
    expect(answer.results[1]!.reason!.length).toBeLessThan(200);
    expect(publishedIds(from)).toEqual([good.id]);
  });
});

test('#14.1 a deep array in an int field names the field and the type expected', async () => {
  const search = { type: 'search_performed', payload: samplePayloads.search_performed };
  const deep = '['.repeat(5000) + ']'.repeat(5000);
  const { status, answer } = await postJson(`{"events":[${withRaw(search, 'latency_ms', deep)}]}`);
  expect(status).toBe(400);
  expect(answer.results[0]).toMatchObject({
    path: 'payload.latency_ms',
    reason: 'expected an int (32-bit integer), got an array of 1 item',
  });
});

describe('#14.2 invalid text', () => {
  test('invalid UTF-8 bytes in a JSON body: 400 naming the byte, nothing published', async () => {
    const from = published.messages.length;
    const text = JSON.stringify({ events: [track({ user_id: 'XX' })] });
    const body = Buffer.from(text);
    const at = body.indexOf('XX');
    body[at] = 0xff;
    body[at + 1] = 0xfe;
    const { status, answer } = await postJson(body);
    expect(status).toBe(400);
    expect(answer.error).toEqual({
      code: 'HTTP_BAD_REQUEST',
      message: `the body is not valid UTF-8 (an invalid byte sequence at byte ${at})`,
    });
    expect(published.messages.length).toBe(from);
  });

  test.each([
    ['a lone high surrogate', '"a\\ud800b"', 'payload.user_id'],
    ['a lone low surrogate', '"\\udc00"', 'payload.user_id'],
    ['a lone surrogate in a nullable string', '"\\ud800"', 'payload.context_uri'],
  ])('%s: rejected with its path, the good event published', async (_name, literal, path) => {
    const good = track();
    const field = path.split('.')[1]!;
    const bad = withRaw(track(), field, literal);
    const from = published.messages.length;
    const { status, answer } = await postJson(`{"events":[${JSON.stringify(good)},${bad}]}`);
    expect(status).toBe(207);
    expect(answer.results[1]).toMatchObject({ status: 'rejected', path });
    expect(answer.results[1]!.reason).toMatch(/lone surrogate/);
    expect(publishedIds(from)).toEqual([good.id]);
  });

  test('a surrogate pair (an emoji) is accepted and kept', async () => {
    const event = track({ user_id: 'u\ud83c\udfb5' });
    const from = published.messages.length;
    const { status } = await postJson(JSON.stringify({ events: [event] }));
    expect(status).toBe(200);
    const stored = published.messages
      .slice(from)
      .flatMap(({ message }) => decodeBundle(registry, message.data, message.attributes).records);
    expect(stored.map((r) => r.user_id)).toEqual(['u\ud83c\udfb5']);
  });
});

const metaOf = (eventId = '') => ({
  event_id: eventId,
  gateway_ts: 0,
  client_ts: null as number | null,
  gateway_id: '',
});
const trackRecord = (payload: Record<string, unknown> = {}, meta = metaOf()) => ({
  meta,
  ...samplePayloads.track_played,
  ...payload,
});

async function postAvro(body: Buffer, headers: Record<string, string> = { 'hourglass-schema-version': '2' }) {
  const res = await send(gateway, {
    url: '/v1/events/track_played',
    headers: { ...auth(), 'content-type': 'avro/binary', ...headers },
    payload: body,
  });
  return { status: res.statusCode, answer: res.json<Answer>() };
}

/** A good datum, then `bad`: the answer must reject datum 1 at `path` and publish only datum 0. */
async function expectAvroRejection(bad: Buffer, path: string, reason: RegExp): Promise<void> {
  const goodId = randomUUID();
  const good = datumOf('track_played', trackRecord({}, metaOf(goodId)));
  const from = published.messages.length;
  const { status, answer } = await postAvro(Buffer.concat([good, bad]));
  expect({ status, result: answer.results?.[1] }).toMatchObject({
    status: 207,
    result: { status: 'rejected', code: 'EVENT_INVALID', path },
  });
  expect(answer.results[1]!.reason).toMatch(reason);
  expect(publishedIds(from)).toEqual([goodId]);
}

describe('#14.2/#14.3 the Avro route takes only canonical datums, with the JSON route rules', () => {
  const base = () => datumOf('track_played', trackRecord({ user_id: 'XX' }));

  test('raw invalid UTF-8 in a string', async () => {
    const datum = base();
    const at = datum.indexOf('XX');
    await expectAvroRejection(splice(datum, at, 2, [0xff, 0xfe]), 'payload.user_id', /not valid UTF-8/);
  });

  test('a CESU-style encoded surrogate in a string', async () => {
    const datum = base();
    const at = datum.indexOf('XX');
    // the length byte before "XX" says 2; the surrogate takes 3 bytes: length 3 (zigzag 6)
    const bad = Buffer.concat([datum.subarray(0, at - 1), Buffer.from([6, 0xed, 0xa0, 0x80]), datum.subarray(at + 2)]);
    await expectAvroRejection(bad, 'payload.user_id', /not valid UTF-8/);
  });

  test('a boolean byte 2', async () => {
    const a = datumOf('track_played', trackRecord({ shuffle: false }));
    const b = datumOf('track_played', trackRecord({ shuffle: true }));
    const at = firstDifference(a, b);
    await expectAvroRejection(splice(a, at, 1, [2]), 'payload.shuffle', /byte 0 or 1\), got byte 2/);
  });

  test('an overlong varint', async () => {
    const a = datumOf('track_played', trackRecord({ ms_played: 5 }));
    const b = datumOf('track_played', trackRecord({ ms_played: 6 }));
    const at = firstDifference(a, b);
    expect(a[at]).toBe(10); // zigzag 5
    await expectAvroRejection(splice(a, at, 1, [0x8a, 0x00]), 'payload.ms_played', /overlong varint/);
  });

  test('a negative client_ts, which the JSON route rejects too', async () => {
    const bad = datumOf('track_played', trackRecord({}, { ...metaOf(), client_ts: -5 }));
    await expectAvroRejection(bad, 'meta.client_ts', /not negative/);
    const json = await postJson(JSON.stringify({ events: [{ ...track(), client_ts: -5 }] }));
    expect(json.answer.results[0]).toMatchObject({ status: 'rejected', path: 'client_ts' });
  });

  test('a long beyond ±2^52, which avsc would read back with another value', async () => {
    const bad = datumOf('track_played', trackRecord({ ms_played: 2 ** 52 - 1 }));
    const at = firstDifference(bad, datumOf('track_played', trackRecord({ ms_played: 2 ** 52 - 2 })));
    // zigzag of −(2^52 + 1) is 2^53 + 1: varint bytes written by hand (avsc cannot)
    const varint = [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    const bytes = splice(bad, at, 8, varint);
    await expectAvroRejection(bytes, 'payload.ms_played', /within ±2\^52/);
  });

  test.each(['0x2', '2.0', '+2', '02', '2e0', '0b10'])('a version header %j is refused whole', async (header) => {
    const from = published.messages.length;
    const { status, answer } = await postAvro(datumOf('track_played', trackRecord()), {
      'hourglass-schema-version': header,
    });
    expect(status).toBe(400);
    expect(answer.error?.code).toBe('HTTP_BAD_REQUEST');
    expect(published.messages.length).toBe(from);
  });
});

describe('#14.4 long range and huge numbers', () => {
  test.each([
    [2 ** 53 - 1, '9007199254740991'],
    [-(2 ** 52) - 1, '-4503599627370497'],
  ])('%d is rejected with the range the reason and the docs name', async (_n, literal) => {
    const from = published.messages.length;
    const bad = JSON.stringify(track()).replace(/"ms_played":\d+/, `"ms_played":${literal}`);
    const { answer } = await postJson(`{"events":[${bad}]}`);
    expect(answer.results[0]).toMatchObject({ status: 'rejected', path: 'payload.ms_played' });
    expect(answer.results[0]!.reason).toMatch(/within ±2\^52 \(±4503599627370496\)/);
    expect(published.messages.length).toBe(from);
  });

  test('±2^52 itself is accepted and kept exactly', async () => {
    const events = [track({ ms_played: 2 ** 52 }), track({ ms_played: -(2 ** 52) })];
    const from = published.messages.length;
    const { status } = await postJson(JSON.stringify({ events }));
    expect(status).toBe(200);
    const stored = published.messages
      .slice(from)
      .flatMap(({ message }) => decodeBundle(registry, message.data, message.attributes).records);
    expect(stored.map((r) => r.ms_played).sort()).toEqual([2 ** 52, -(2 ** 52)].sort());
  });

  test('1e400 says what it is, not "got null"', async () => {
    const bad = JSON.stringify(track()).replace(/"ms_played":\d+/, '"ms_played":1e400');
    const { answer } = await postJson(`{"events":[${bad}]}`);
    expect(answer.results[0]).toMatchObject({ status: 'rejected', path: 'payload.ms_played' });
    expect(answer.results[0]!.reason).toMatch(/beyond the range of a double/);
    expect(answer.results[0]!.reason).not.toMatch(/null/);
  });
});

describe('#14.5 protocol errors in the documented shape', () => {
  const expectShape = (raw: string, status: number, code: string) => {
    const res = parseRawResponse(raw);
    expect({ status: res.status, code: (res.body as Answer).error?.code }).toEqual({ status, code });
    expect(Object.keys(res.body as object)).toEqual(['error']);
    expect(res.headers).toMatch(/content-type: application\/json/i);
  };
  const post = (extra: string, body = '') =>
    `POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${auth().authorization.slice(7)}\r\nContent-Type: application/json\r\n${extra}\r\n${body}`;

  test('headers over the limit: 431 HTTP_HEADERS_TOO_LARGE', async () => {
    const raw = await rawExchange(await portOf(gateway), post(`X-Big: ${'a'.repeat(20_000)}\r\n`));
    expectShape(raw, 431, 'HTTP_HEADERS_TOO_LARGE');
  });

  test.each([
    ['bad chunking', post('Transfer-Encoding: chunked\r\n', 'zz\r\nhello\r\n0\r\n\r\n')],
    ['two Content-Lengths', post('Content-Length: 2\r\nContent-Length: 3\r\n', '{}')],
    ['a garbage request line', 'GARBAGE\x01 / HTTP/9.9\r\n\r\n'],
    ['a bad header name', post('Bad Header: x\r\nContent-Length: 2\r\n', '{}')],
  ])('%s: 400 HTTP_BAD_REQUEST', async (_name, request) => {
    const raw = await rawExchange(await portOf(gateway), request);
    expectShape(raw, 400, 'HTTP_BAD_REQUEST');
  });

  test('a long route parameter: 414 HTTP_URI_TOO_LONG', async () => {
    const request = `POST /v1/events/${'t'.repeat(500)} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
    expectShape(await rawExchange(await portOf(gateway), request), 414, 'HTTP_URI_TOO_LONG');
  });

  test('an undecodable URL: 400 HTTP_BAD_REQUEST', async () => {
    const request = `POST /v1/events/%zz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
    expectShape(await rawExchange(await portOf(gateway), request), 400, 'HTTP_BAD_REQUEST');
  });

  test('the gateway still serves after every one of them', async () => {
    const { status } = await postJson(JSON.stringify({ events: [track()] }));
    expect(status).toBe(200);
  });
});

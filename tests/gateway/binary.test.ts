import { randomUUID } from 'node:crypto';
import { ManualClock } from '@hourglass/common';
import { Attr, metaType } from '@hourglass/schemas';
import type { Gateway } from '@hourglass/gateway';
import {
  T0,
  TOKENS,
  auth,
  provision,
  pullAll,
  pullEvents,
  registry,
  samplePayloads,
  send,
  startTestGateway,
  tally,
  uniquePrefix,
  type Answer,
} from './support';

/**
 * The binary route: full Avro records of one writer version, concatenated. The gateway
 * re-stamps meta (gateway_ts, gateway_id; keeps a UUID event_id, assigns one for ""),
 * keeps the payload bytes as sent and publishes them under the writer's fingerprint.
 */
const tracks = registry.get('track_played');
const v1 = tracks.versions[0]!;
const v2 = tracks.versions[1]!;
const { offline: _o, context_uri: _c, ...v1Payload } = samplePayloads.track_played!;

function datum(
  version: typeof v1,
  eventId: string,
  payload: Record<string, unknown>,
  clientTs: number | null = null,
): Buffer {
  const meta = { event_id: eventId, gateway_ts: 0, client_ts: clientTs, gateway_id: 'producer-supplied' };
  return version.type.toBuffer({ meta, ...payload });
}

describe('binary route', () => {
  const prefix = uniquePrefix('avro');
  let subs: Map<string, string>;
  let gateway: Gateway;

  beforeAll(async () => {
    subs = await provision(prefix);
    gateway = await startTestGateway({ prefix, clock: new ManualClock(T0) });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  const postAvro = (type: string, body: Buffer, headers: Record<string, string>) =>
    send(gateway, {
      url: `/v1/events/${type}`,
      headers: { ...auth(), 'content-type': 'avro/binary', ...headers },
      payload: body,
    });

  test('datums of an older version are published under its fingerprint with meta re-stamped', async () => {
    const ids = [randomUUID(), randomUUID()];
    const body = Buffer.concat([
      datum(v1, ids[0]!, { ...v1Payload, user_id: 'a' }, T0 - 10),
      datum(v1, ids[1]!, { ...v1Payload, user_id: 'b' }),
      datum(v1, '', { ...v1Payload, user_id: 'c' }),
      datum(v1, 'bad-id', { ...v1Payload, user_id: 'd' }),
    ]);
    const res = await postAvro('track_played', body, { 'hourglass-schema-version': '1' });
    expect(res.statusCode).toBe(207);
    const answer = res.json<Answer>();
    expect(answer.results.map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted', 'rejected']);
    expect(answer.results[0]!.id).toBe(ids[0]);
    expect(answer.results[1]!.id).toBe(ids[1]);
    expect(answer.results[3]).toMatchObject({ code: 'EVENT_INVALID', path: 'meta.event_id' });
    const assigned = answer.results[2]!.id!;

    const messages = await pullAll(subs.get('track_played')!);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.attributes).toMatchObject({ [Attr.fingerprint]: v1.fingerprint, [Attr.count]: '3' });
    // The raw datums: meta is the gateway's, payload bytes are exactly the producer's.
    let pos = 0;
    const users = ['a', 'b', 'c'];
    const expectedIds = [ids[0], ids[1], assigned];
    for (let i = 0; i < 3; i++) {
      const { value, offset } = v1.type.decode(messages[0]!.data, pos) as {
        value: Record<string, unknown>;
        offset: number;
      };
      expect(value).toEqual({
        meta: {
          event_id: expectedIds[i],
          gateway_ts: T0,
          client_ts: i === 0 ? T0 - 10 : null,
          gateway_id: 'gw-test-1',
        },
        ...v1Payload,
        user_id: users[i],
      });
      const sentDatum = datum(v1, 'x', { ...v1Payload, user_id: users[i] });
      const sentPayload = sentDatum.subarray(metaType.decode(sentDatum, 0).offset);
      const publishedPayload = messages[0]!.data.subarray(metaType.decode(messages[0]!.data, pos).offset, offset);
      expect(publishedPayload.equals(sentPayload)).toBe(true);
      pos = offset;
    }
    expect(pos).toBe(messages[0]!.data.length);
  });

  test('the newest version named by fingerprint decodes to what was sent', async () => {
    const id = randomUUID();
    const body = datum(v2, id, samplePayloads.track_played!);
    const res = await postAvro('track_played', body, { 'hourglass-schema-fingerprint': v2.fingerprint });
    expect(res.statusCode).toBe(200);
    const found = await pullEvents(new Map([['track_played', subs.get('track_played')!]]));
    expect(tally([id], found)).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0 });
    expect(found[0]!.record).toMatchObject(samplePayloads.track_played!);
  });

  test('refusals: unknown type, no version, unknown version, wrong content type, truncated body, forbidden key', async () => {
    const good = datum(v2, randomUUID(), samplePayloads.track_played!);
    const cases: [Promise<{ statusCode: number; json<T>(): T }>, number, string][] = [
      [postAvro('no_such_type', good, { 'hourglass-schema-version': '1' }), 404, 'SCHEMA_UNKNOWN_TYPE'],
      [postAvro('track_played', good, {}), 400, 'HTTP_BAD_REQUEST'],
      [postAvro('track_played', good, { 'hourglass-schema-version': '9' }), 400, 'HTTP_BAD_REQUEST'],
      [
        postAvro('track_played', good, { 'hourglass-schema-version': '2', 'content-type': 'application/octet-stream' }),
        415,
        'HTTP_UNSUPPORTED_MEDIA_TYPE',
      ],
      [
        postAvro('track_played', good.subarray(0, good.length - 3), { 'hourglass-schema-version': '2' }),
        400,
        'HTTP_BAD_REQUEST',
      ],
      [postAvro('track_played', Buffer.alloc(0), { 'hourglass-schema-version': '2' }), 400, 'HTTP_BAD_REQUEST'],
      [
        postAvro('page_viewed', good, { 'hourglass-schema-version': '1', ...auth(TOKENS.tracks) }),
        403,
        'HTTP_FORBIDDEN',
      ],
      [
        postAvro('track_played', good, { 'hourglass-schema-version': '2', authorization: 'Bearer nope' }),
        401,
        'HTTP_UNAUTHENTICATED',
      ],
    ];
    for (const [pending, status, code] of cases) {
      const res = await pending;
      expect({ status: res.statusCode, code: res.json<Answer>().error?.code }).toEqual({ status, code });
    }
    // Nothing of the refused requests was published, and the route still works.
    expect(await pullAll(subs.get('track_played')!)).toHaveLength(0);
    const ok = await postAvro('track_played', good, { 'hourglass-schema-version': '2' });
    expect(ok.statusCode).toBe(200);
  });
});

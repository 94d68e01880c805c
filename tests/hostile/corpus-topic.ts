import { randomUUID } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { encodeBundle, type EventRecord } from '@hourglass/schemas';
import { makeRecord } from '../consumer/support';
import { registry } from '../gateway/support';

/**
 * The hostile-input corpus, messages published straight to a topic (not through the gateway):
 * each row is a message and either the records the consumer must store unchanged, or the code
 * its dead letter must carry. `at` is the consumer clock when the corpus runs.
 */
export interface TopicCase {
  name: string;
  type: string;
  data: Buffer;
  attributes: Record<string, string>;
  /** Records stored unchanged (resolved to the newest schema), or the dead-letter code. */
  expect: { stored: EventRecord[] } | { deadLetter: string };
}

const TP = 'track_played';
const v2 = registry.get(TP).latest;
const v1 = registry.get(TP).versions[0]!;

export function topicCases(at: number): TopicCase[] {
  let n = 0;
  const rec = (ts = at - 10_000, id: string = randomUUID(), writer = v2) => makeRecord(writer, id, ts, n++);
  const bundle = (
    records: EventRecord[],
    datums = records.map((r) => v2.type.toBuffer(r)),
    codec: 'null' | 'deflate' = 'null',
  ) =>
    encodeBundle({
      writer: v2,
      datums,
      firstEventId: records[0]!.meta.event_id,
      minGatewayTs: Math.min(...records.map((r) => r.meta.gateway_ts)),
      codec,
    });
  const stored = (name: string, records: EventRecord[], codec: 'null' | 'deflate' = 'null'): TopicCase => ({
    name,
    type: TP,
    ...bundle(records, undefined, codec),
    expect: { stored: records },
  });
  const dead = (
    name: string,
    message: { data: Buffer; attributes: Record<string, string> },
    code: string,
  ): TopicCase => ({
    name,
    type: TP,
    data: message.data,
    attributes: message.attributes,
    expect: { deadLetter: code },
  });
  const good = () => bundle([rec()]);
  const withAttrs = (attrs: Record<string, string | undefined>) => {
    const m = good();
    const attributes = { ...m.attributes };
    for (const [k, val] of Object.entries(attrs)) {
      if (val === undefined) delete attributes[k];
      else attributes[k] = val;
    }
    return { data: m.data, attributes };
  };
  /** One datum with bytes replaced: `field` of a record set to `a` vs `b` locates them. */
  const mutated = (field: string, a: unknown, b: unknown, replace: (d: Buffer, at: number) => Buffer) => {
    const r = rec();
    const da = v2.type.toBuffer({ ...r, [field]: a });
    const db = v2.type.toBuffer({ ...r, [field]: b });
    let i = 0;
    while (da[i] === db[i]) i++;
    return bundle([r], [replace(da, i)]);
  };
  const splice = (d: Buffer, i: number, count: number, bytes: number[]) =>
    Buffer.concat([d.subarray(0, i), Buffer.from(bytes), d.subarray(i + count)]);
  const twoGood = () => bundle([rec(), rec()]);
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;

  return [
    stored('one event, codec null', [rec()]),
    stored(
      'a bundle of 50, codec deflate',
      Array.from({ length: 50 }, () => rec()),
      'deflate',
    ),
    stored('an event 50 minutes ahead (clock skew)', [rec(at + 50 * 60_000)]),
    stored(
      'duplicate ids inside one bundle (stored once)',
      (() => {
        const r = rec(at - 5000);
        return [r, r];
      })(),
    ),
    (() => {
      const r1 = rec(at - 3000, randomUUID(), v1);
      const message = encodeBundle({
        writer: v1,
        datums: [v1.type.toBuffer(r1)],
        firstEventId: r1.meta.event_id,
        minGatewayTs: at,
        codec: 'null',
      });
      return {
        name: 'a v1 writer (resolved to v2)',
        type: TP,
        ...message,
        expect: { stored: [{ ...r1, offline: false, context_uri: null }] },
      };
    })(),
    {
      name: 'attribute gateway_ts lies (only the datum counts)',
      type: TP,
      ...(() => {
        const r = rec();
        const m = bundle([r]);
        return { data: m.data, attributes: { ...m.attributes, gateway_ts: '0' }, expect: { stored: [r] } };
      })(),
    },
    {
      name: 'attribute event_id lies',
      type: TP,
      ...(() => {
        const r = rec();
        const m = bundle([r]);
        return { data: m.data, attributes: { ...m.attributes, event_id: 'nope' }, expect: { stored: [r] } };
      })(),
    },
    dead('no schema_fingerprint', withAttrs({ schema_fingerprint: undefined }), 'MESSAGE_CORRUPT'),
    dead('an unknown fingerprint', withAttrs({ schema_fingerprint: 'ab'.repeat(32) }), 'SCHEMA_UNKNOWN_FINGERPRINT'),
    dead(
      'a fingerprint of another type',
      withAttrs({ schema_fingerprint: registry.get('ab_exposure').latest.fingerprint }),
      'MESSAGE_CORRUPT',
    ),
    dead('event_type lies', withAttrs({ event_type: 'page_viewed' }), 'MESSAGE_CORRUPT'),
    dead('codec gzip', withAttrs({ codec: 'gzip' }), 'MESSAGE_CORRUPT'),
    dead('codec deflate on raw data', withAttrs({ codec: 'deflate' }), 'MESSAGE_CORRUPT'),
    dead(
      'a deflate bomb (70 MB of zeros)',
      { data: deflateRawSync(Buffer.alloc(70 * 1024 * 1024)), attributes: { ...good().attributes, codec: 'deflate' } },
      'MESSAGE_CORRUPT',
    ),
    dead('count 0', withAttrs({ count: '0' }), 'MESSAGE_CORRUPT'),
    dead('count 2 for one datum', withAttrs({ count: '2' }), 'MESSAGE_CORRUPT'),
    dead(
      'count 1 for two datums',
      (() => {
        const m = twoGood();
        return { data: m.data, attributes: { ...m.attributes, count: '1' } };
      })(),
      'MESSAGE_CORRUPT',
    ),
    dead('count "01"', withAttrs({ count: '01' }), 'MESSAGE_CORRUPT'),
    dead('count "1e0"', withAttrs({ count: '1e0' }), 'MESSAGE_CORRUPT'),
    dead('count beyond the body', withAttrs({ count: '999999' }), 'MESSAGE_CORRUPT'),
    dead('empty data', { data: Buffer.alloc(0), attributes: good().attributes }, 'MESSAGE_CORRUPT'),
    dead('garbage data', { data: Buffer.from('garbage!'), attributes: good().attributes }, 'MESSAGE_CORRUPT'),
    dead(
      'an oversize message (9 MB after one datum)',
      (() => {
        const m = good();
        return { data: Buffer.concat([m.data, Buffer.alloc(9 * 1024 * 1024, 1)]), attributes: m.attributes };
      })(),
      'MESSAGE_CORRUPT',
    ),
    dead('gateway_ts 0', bundle([rec(0)]), 'MESSAGE_EVENT_TIME_INVALID'),
    dead('gateway_ts negative', bundle([rec(-1)]), 'MESSAGE_EVENT_TIME_INVALID'),
    dead('gateway_ts 8 days old', bundle([rec(at - 8 * DAY)]), 'MESSAGE_EVENT_TIME_INVALID'),
    dead('gateway_ts 2 hours ahead', bundle([rec(at + 2 * HOUR)]), 'MESSAGE_EVENT_TIME_INVALID'),
    dead('gateway_ts 400 days ahead', bundle([rec(at + 400 * DAY)]), 'MESSAGE_EVENT_TIME_INVALID'),
    dead('gateway_ts beyond JS dates', bundle([rec(8.9e15)]), 'MESSAGE_CORRUPT'),
    dead(
      'one bad gateway_ts among good ones',
      bundle([rec(), rec(at + 400 * DAY), rec()]),
      'MESSAGE_EVENT_TIME_INVALID',
    ),
    dead('event_id empty x3', bundle([rec(at - 1, ''), rec(at - 1, ''), rec(at - 1, '')]), 'MESSAGE_EVENT_ID_INVALID'),
    dead('event_id not a UUID', bundle([rec(at - 1, 'not-a-uuid')]), 'MESSAGE_EVENT_ID_INVALID'),
    dead('event_id upper-case', bundle([rec(at - 1, randomUUID().toUpperCase())]), 'MESSAGE_EVENT_ID_INVALID'),
    dead('event_id with braces', bundle([rec(at - 1, `{${randomUUID()}}`)]), 'MESSAGE_EVENT_ID_INVALID'),
    dead('event_id of 10,000 characters', bundle([rec(at - 1, 'a'.repeat(10_000))]), 'MESSAGE_EVENT_ID_INVALID'),
    dead(
      'invalid UTF-8 in a string',
      mutated('user_id', 'XX', 'YY', (d, i) => splice(d, i, 2, [0xff, 0xfe])),
      'MESSAGE_CORRUPT',
    ),
    dead(
      'invalid UTF-8 in the event id',
      mutated('user_id', 'XX', 'YY', (d) => {
        const c = Buffer.from(d);
        c[3] = 0xff;
        return c;
      }),
      'MESSAGE_CORRUPT',
    ),
    dead(
      'a boolean byte 2',
      mutated('shuffle', false, true, (d, i) => splice(d, i, 1, [2])),
      'MESSAGE_CORRUPT',
    ),
    dead(
      'an overlong varint',
      mutated('ms_played', 5, 6, (d, i) => splice(d, i, 1, [0x8a, 0x00])),
      'MESSAGE_CORRUPT',
    ),
    dead(
      'an enum index out of range',
      mutated('platform', 'ANDROID', 'IOS', (d, i) => splice(d, i, 1, [60])),
      'MESSAGE_CORRUPT',
    ),
    dead(
      'a long beyond ±2^52',
      mutated('ms_played', 2 ** 52 - 1, 2 ** 52 - 2, (d, i) =>
        splice(d, i, 8, [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]),
      ),
      'MESSAGE_CORRUPT',
    ),
    dead(
      'a truncated datum',
      (() => {
        const m = good();
        return { data: m.data.subarray(0, m.data.length - 3), attributes: m.attributes };
      })(),
      'MESSAGE_CORRUPT',
    ),
  ];
}

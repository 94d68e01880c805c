import { randomUUID } from 'node:crypto';
import type { EventRecord } from '@hourglass/schemas';
import { registry, samplePayloads } from '../gateway/support';
import type { EventOutcome } from './corpus-json';
import { firstDifference, splice } from './support';

/**
 * The hostile-input corpus, Avro route: each row is a body of datums posted to
 * `/v1/events/<type>` and either one outcome per datum or a whole-request refusal.
 */
export interface AvroCase {
  name: string;
  type: string;
  headers: Record<string, string>;
  /** The datums sent, each with its own outcome; or one body refused whole. */
  datums?: { bytes: Buffer; expect: EventOutcome }[];
  body?: Buffer;
  whole?: { status: number; code: string };
}

const v = (n: number) => ({ 'hourglass-schema-version': String(n) });

function record(type: string, payload: Record<string, unknown> = {}, meta: Partial<EventRecord['meta']> = {}) {
  return {
    meta: { event_id: randomUUID(), gateway_ts: 0, client_ts: null, gateway_id: '', ...meta },
    ...samplePayloads[type],
    ...payload,
  };
}

const datum = (type: string, payload: Record<string, unknown> = {}, meta: Partial<EventRecord['meta']> = {}) =>
  registry.get(type).latest.type.toBuffer(record(type, payload, meta));

/** The datum with one field's encoding replaced: `a` and `b` differ only in that field. */
function mutate(type: string, field: string, a: unknown, b: unknown, bytes: (at: number, d: Buffer) => Buffer): Buffer {
  const meta = { event_id: randomUUID() };
  const da = datum(type, { [field]: a }, meta);
  const at = firstDifference(da, datum(type, { [field]: b }, meta));
  return bytes(at, da);
}

const ok = (bytes: Buffer) => ({ bytes, expect: 'accepted' as const });
const invalid = (bytes: Buffer, path: string) => ({ bytes, expect: { code: 'EVENT_INVALID', path } });
/** A good datum before the hostile one: the row also checks the good one is published alone. */
const pair = (type: string, bad: { bytes: Buffer; expect: EventOutcome }) => [ok(datum(type)), bad];

const booleanByte = (type: string, field: string, byte: number) =>
  invalid(
    mutate(type, field, false, true, (at, d) => splice(d, at, 1, [byte])),
    `payload.${field}`,
  );
const overlong = (type: string, field: string, value: number) =>
  invalid(
    mutate(type, field, value, value + 1, (at, d) => splice(d, at, 1, [d[at]! | 0x80, 0x00])),
    `payload.${field}`,
  );
const badUtf8 = (type: string, field: string, bytes: number[]) =>
  invalid(
    mutate(type, field, 'XX', 'YY', (at, d) =>
      Buffer.concat([d.subarray(0, at - 1), Buffer.from([bytes.length * 2, ...bytes]), d.subarray(at + 2)]),
    ),
    `payload.${field}`,
  );
const enumIndex = (type: string, field: string, symbols: string[], index: number) =>
  invalid(
    mutate(type, field, symbols[0], symbols[1], (at, d) => splice(d, at, 1, [index * 2])),
    `payload.${field}`,
  );

const PLATFORMS = ['ANDROID', 'IOS'];

function perType(type: string, stringField: string): AvroCase[] {
  return [
    {
      name: `${type}: invalid UTF-8`,
      type,
      headers: v(1),
      datums: pair(type, badUtf8(type, stringField, [0xff, 0xfe])),
    },
    {
      name: `${type}: encoded surrogate`,
      type,
      headers: v(1),
      datums: pair(type, badUtf8(type, stringField, [0xed, 0xa0, 0x80])),
    },
    {
      name: `${type}: overlong UTF-8`,
      type,
      headers: v(1),
      datums: pair(type, badUtf8(type, stringField, [0xc0, 0xaf])),
    },
    {
      name: `${type}: truncated body`,
      type,
      headers: v(1),
      body: datum(type).subarray(0, 20),
      whole: { status: 400, code: 'HTTP_BAD_REQUEST' },
    },
    {
      name: `${type}: empty body`,
      type,
      headers: v(1),
      body: Buffer.alloc(0),
      whole: { status: 400, code: 'HTTP_BAD_REQUEST' },
    },
    {
      name: `${type}: event_id not a UUID`,
      type,
      headers: v(1),
      datums: pair(type, invalid(datum(type, {}, { event_id: 'nope' }), 'meta.event_id')),
    },
    {
      name: `${type}: negative client_ts`,
      type,
      headers: v(1),
      datums: pair(type, invalid(datum(type, {}, { client_ts: -1 }), 'meta.client_ts')),
    },
    {
      name: `${type}: empty event_id (assigned)`,
      type,
      headers: v(1),
      datums: pair(type, ok(datum(type, {}, { event_id: '' }))),
    },
  ];
}

const TP = 'track_played';
export const avroCases: AvroCase[] = [
  ...perType('track_played', 'user_id').map((c) => ({ ...c, headers: v(2) })),
  ...perType('page_viewed', 'page'),
  ...perType('search_performed', 'query'),
  ...perType('ad_impression', 'currency'),
  ...perType('ab_exposure', 'variant'),
  { name: 'boolean byte 2', type: TP, headers: v(2), datums: pair(TP, booleanByte(TP, 'shuffle', 2)) },
  { name: 'boolean byte 0xff', type: TP, headers: v(2), datums: pair(TP, booleanByte(TP, 'offline', 0xff)) },
  {
    name: 'ab_exposure boolean byte 2',
    type: 'ab_exposure',
    headers: v(1),
    datums: pair('ab_exposure', booleanByte('ab_exposure', 'first_exposure', 2)),
  },
  { name: 'overlong long varint', type: TP, headers: v(2), datums: pair(TP, overlong(TP, 'ms_played', 5)) },
  {
    name: 'overlong int varint',
    type: 'search_performed',
    headers: v(1),
    datums: pair('search_performed', overlong('search_performed', 'latency_ms', 5)),
  },
  {
    name: 'enum index out of range',
    type: TP,
    headers: v(2),
    datums: pair(TP, enumIndex(TP, 'platform', PLATFORMS, 40)),
  },
  {
    name: 'enum index negative',
    type: TP,
    headers: v(2),
    datums: pair(
      TP,
      invalid(
        mutate(TP, 'platform', 'ANDROID', 'IOS', (at, d) => splice(d, at, 1, [1])),
        'payload.platform',
      ),
    ),
  },
  {
    name: 'long beyond ±2^52',
    type: TP,
    headers: v(2),
    datums: pair(
      TP,
      invalid(
        mutate(TP, 'ms_played', 2 ** 52 - 1, 2 ** 52 - 2, (at, d) =>
          splice(d, at, 8, [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]),
        ),
        'payload.ms_played',
      ),
    ),
  },
  {
    name: 'long of ±2^52 kept',
    type: TP,
    headers: v(2),
    datums: [ok(datum(TP, { ms_played: 2 ** 52 })), ok(datum(TP, { ms_played: -(2 ** 52) }))],
  },
  {
    name: 'int beyond 32 bits',
    type: 'search_performed',
    headers: v(1),
    datums: pair(
      'search_performed',
      invalid(
        mutate('search_performed', 'latency_ms', 5, 6, (at, d) => splice(d, at, 1, [0x80, 0x80, 0x80, 0x80, 0x10])),
        'payload.latency_ms',
      ),
    ),
  },
  {
    name: 'union index out of range',
    type: TP,
    headers: v(2),
    body: Buffer.concat([datum(TP), mutate(TP, 'context_uri', null, 'x', (at, d) => splice(d, at, 1, [8]))]),
    whole: { status: 400, code: 'HTTP_BAD_REQUEST' },
  },
  {
    name: 'a trailing zero byte',
    type: TP,
    headers: v(2),
    body: Buffer.concat([datum(TP), Buffer.from([0])]),
    whole: { status: 400, code: 'HTTP_BAD_REQUEST' },
  },
  {
    name: 'v1 datums under version 1',
    type: TP,
    headers: v(1),
    datums: [
      ok(registry.get(TP).versions[0]!.type.toBuffer(record(TP, { offline: undefined, context_uri: undefined }))),
    ],
  },
  {
    name: 'v2 datums under version 1',
    type: TP,
    headers: v(1),
    body: Buffer.concat([datum(TP), datum(TP)]),
    whole: { status: 400, code: 'HTTP_BAD_REQUEST' },
  },
  {
    name: 'version 3 (absent)',
    type: TP,
    headers: v(3),
    body: datum(TP),
    whole: { status: 400, code: 'HTTP_BAD_REQUEST' },
  },
  ...['0x2', '02', '2.0', '+2', '2e0', '0b10', ''].map((h) => ({
    name: `version header ${JSON.stringify(h)}`,
    type: TP,
    headers: { 'hourglass-schema-version': h },
    body: datum(TP),
    whole: { status: 400, code: 'HTTP_BAD_REQUEST' },
  })),
  {
    name: 'unknown fingerprint',
    type: TP,
    headers: { 'hourglass-schema-fingerprint': 'ab'.repeat(32) },
    body: datum(TP),
    whole: { status: 400, code: 'HTTP_BAD_REQUEST' },
  },
  {
    name: 'no schema header',
    type: TP,
    headers: {},
    body: datum(TP),
    whole: { status: 400, code: 'HTTP_BAD_REQUEST' },
  },
  {
    name: 'unknown type',
    type: 'nope',
    headers: v(1),
    body: datum(TP),
    whole: { status: 404, code: 'SCHEMA_UNKNOWN_TYPE' },
  },
  {
    name: 'a type name of 300 characters',
    type: 't'.repeat(300),
    headers: v(1),
    body: datum(TP),
    whole: { status: 414, code: 'HTTP_URI_TOO_LONG' },
  },
];

import { gzipSync } from 'node:zlib';
import { samplePayloads } from '../gateway/support';

/**
 * The hostile-input corpus, JSON route: each row is one input and what must come of it.
 * Event rows are sent as `{"events":[<event>]}`; `event` is raw JSON text, so values JSON.stringify
 * cannot write (deep nesting, 1e400, lone surrogates, duplicate keys) are written as they arrive.
 */
export type EventOutcome = 'accepted' | { code: string; path?: string };

export interface JsonEventCase {
  name: string;
  type: string;
  /** Raw JSON text of the event. */
  event: string;
  expect: EventOutcome;
  /** For accepted rows: payload fields whose stored value differs from the sent one on purpose (none so far). */
}

export interface JsonBodyCase {
  name: string;
  body: string | Buffer;
  headers?: Record<string, string>;
  expect: { status: number; code: string };
}

const DEEP = '['.repeat(3000) + ']'.repeat(3000);
const BIG = JSON.stringify('x'.repeat(70_000));
const invalid = (path: string): EventOutcome => ({ code: 'EVENT_INVALID', path });

/** One field of a payload replaced by raw JSON (the last of two equal keys wins in JSON.parse). */
function withField(type: string, field: string, literal: string, extra = ''): string {
  const payload = JSON.stringify(samplePayloads[type]).slice(0, -1);
  return `{"type":"${type}"${extra},"payload":${payload},"${field}":${literal}}}`;
}

interface FieldKind {
  kind: 'string' | 'long' | 'int' | 'enum' | 'boolean' | 'nullable';
  field: string;
  /** A valid symbol, for enums. */
  symbol?: string;
}

/** Per type, one field of each kind it has. */
const FIELDS: Record<string, FieldKind[]> = {
  track_played: [
    { kind: 'string', field: 'track_id' },
    { kind: 'long', field: 'ms_played' },
    { kind: 'enum', field: 'platform', symbol: 'TV' },
    { kind: 'boolean', field: 'shuffle' },
    { kind: 'nullable', field: 'context_uri' },
  ],
  page_viewed: [
    { kind: 'string', field: 'page' },
    { kind: 'long', field: 'duration_ms' },
    { kind: 'enum', field: 'platform', symbol: 'CAR' },
    { kind: 'nullable', field: 'referrer' },
  ],
  search_performed: [
    { kind: 'string', field: 'query' },
    { kind: 'int', field: 'latency_ms' },
    { kind: 'enum', field: 'platform', symbol: 'DESKTOP' },
  ],
  ad_impression: [
    { kind: 'string', field: 'currency' },
    { kind: 'int', field: 'duration_ms' },
    { kind: 'long', field: 'price_micros' },
    { kind: 'enum', field: 'format', symbol: 'AUDIO' },
    { kind: 'boolean', field: 'clicked' },
  ],
  ab_exposure: [
    { kind: 'string', field: 'variant' },
    { kind: 'boolean', field: 'first_exposure' },
  ],
};

/** Hostile (and edge-valid) values per field kind: literal, and whether it is accepted. */
const VALUES: Record<FieldKind['kind'], [string, string, boolean][]> = {
  string: [
    ['deep array', DEEP, false],
    ['lone high surrogate', '"a\\ud800"', false],
    ['lone low surrogate', '"\\udfff"', false],
    ['number', '7', false],
    ['object', '{"a":1}', false],
    ['null', 'null', false],
    ['emoji pair', '"\\ud83c\\udfb5 ok"', true],
    ['empty string', '""', true],
    ['NUL and controls', '"a\\u0000\\u001f\\u007f"', true],
    ['U+FFFD itself', '"\\ufffd"', true],
  ],
  long: [
    ['2^53-1', '9007199254740991', false],
    ['-(2^52)-1', '-4503599627370497', false],
    ['2^52', '4503599627370496', true],
    ['-(2^52)', '-4503599627370496', true],
    ['1e400', '1e400', false],
    ['-1e400', '-1e400', false],
    ['fraction', '1.5', false],
    ['numeric string', '"5"', false],
    ['deep array', DEEP, false],
  ],
  int: [
    ['2^31', '2147483648', false],
    ['-2^31', '-2147483648', true],
    ['1e400', '1e400', false],
    ['boolean', 'true', false],
    ['deep array', DEEP, false],
  ],
  enum: [
    ['constructor', '"constructor"', false],
    ['toString', '"toString"', false],
    ['__proto__', '"__proto__"', false],
    ['lower-case symbol', '"ios"', false],
    ['deep array', DEEP, false],
    ['lone surrogate', '"\\ud800"', false],
  ],
  boolean: [
    ['1', '1', false],
    ['"true"', '"true"', false],
    ['null', 'null', false],
    ['deep array', DEEP, false],
  ],
  nullable: [
    ['null', 'null', true],
    ['lone surrogate', '"\\ud800"', false],
    ['deep array', DEEP, false],
    ['wrapped union form', '{"string":"x"}', false],
  ],
};

function fieldCases(): JsonEventCase[] {
  const cases: JsonEventCase[] = [];
  for (const [type, fields] of Object.entries(FIELDS)) {
    for (const { kind, field, symbol } of fields) {
      for (const [label, literal, ok] of VALUES[kind]) {
        cases.push({
          name: `${type}.${field} = ${label}`,
          type,
          event: withField(type, field, literal),
          expect: ok ? 'accepted' : invalid(`payload.${field}`),
        });
      }
      if (symbol) {
        cases.push({
          name: `${type}.${field} = ${symbol}`,
          type,
          event: withField(type, field, `"${symbol}"`),
          expect: 'accepted',
        });
      }
    }
    cases.push({
      name: `${type}: a string of 70,000 characters`,
      type,
      event: withField(type, FIELDS[type]![0]!.field, BIG),
      expect: { code: 'HTTP_EVENT_TOO_LARGE', path: 'payload' },
    });
  }
  return cases;
}

const track = (rest: string) => `{"type":"track_played"${rest}}`;
const trackPayload = JSON.stringify(samplePayloads.track_played);

const EVENT_CASES: JsonEventCase[] = [
  { name: 'no type', type: '', event: `{"payload":${trackPayload}}`, expect: { code: 'EVENT_INVALID', path: 'type' } },
  {
    name: 'type is a number',
    type: '',
    event: `{"type":7,"payload":{}}`,
    expect: { code: 'EVENT_INVALID', path: 'type' },
  },
  {
    name: 'unknown type',
    type: '',
    event: `{"type":"nope","payload":{}}`,
    expect: { code: 'SCHEMA_UNKNOWN_TYPE', path: 'type' },
  },
  {
    name: 'type __proto__',
    type: '',
    event: `{"type":"__proto__","payload":{}}`,
    expect: { code: 'SCHEMA_UNKNOWN_TYPE', path: 'type' },
  },
  {
    name: 'type constructor',
    type: '',
    event: `{"type":"constructor","payload":{}}`,
    expect: { code: 'SCHEMA_UNKNOWN_TYPE', path: 'type' },
  },
  {
    name: 'type with a lone surrogate',
    type: '',
    event: `{"type":"\\ud800","payload":{}}`,
    expect: { code: 'SCHEMA_UNKNOWN_TYPE', path: 'type' },
  },
  {
    name: 'id not a UUID',
    type: 'track_played',
    event: track(`,"id":"not-a-uuid","payload":${trackPayload}`),
    expect: invalid('id'),
  },
  { name: 'id empty', type: 'track_played', event: track(`,"id":"","payload":${trackPayload}`), expect: invalid('id') },
  {
    name: 'id a number',
    type: 'track_played',
    event: track(`,"id":12,"payload":${trackPayload}`),
    expect: invalid('id'),
  },
  {
    name: 'id with a lone surrogate',
    type: 'track_played',
    event: track(`,"id":"\\ud800","payload":${trackPayload}`),
    expect: invalid('id'),
  },
  {
    name: 'id null (assigned)',
    type: 'track_played',
    event: track(`,"id":null,"payload":${trackPayload}`),
    expect: 'accepted',
  },
  {
    name: 'id upper-case UUID (kept lower-case)',
    type: 'track_played',
    event: track(`,"id":"0AF76519-16CD-43DD-8448-EB211C80319C","payload":${trackPayload}`),
    expect: 'accepted',
  },
  {
    name: 'client_ts negative',
    type: 'track_played',
    event: track(`,"client_ts":-1,"payload":${trackPayload}`),
    expect: invalid('client_ts'),
  },
  {
    name: 'client_ts 1e400',
    type: 'track_played',
    event: track(`,"client_ts":1e400,"payload":${trackPayload}`),
    expect: invalid('client_ts'),
  },
  {
    name: 'client_ts fraction',
    type: 'track_played',
    event: track(`,"client_ts":1.5,"payload":${trackPayload}`),
    expect: invalid('client_ts'),
  },
  {
    name: 'client_ts not a time',
    type: 'track_played',
    event: track(`,"client_ts":"yesterday","payload":${trackPayload}`),
    expect: invalid('client_ts'),
  },
  {
    name: 'client_ts deep array',
    type: 'track_played',
    event: track(`,"client_ts":${DEEP},"payload":${trackPayload}`),
    expect: invalid('client_ts'),
  },
  {
    name: 'client_ts ISO 8601',
    type: 'track_played',
    event: track(`,"client_ts":"2026-01-01T00:00:00.123Z","payload":${trackPayload}`),
    expect: 'accepted',
  },
  {
    name: 'client_ts 0',
    type: 'track_played',
    event: track(`,"client_ts":0,"payload":${trackPayload}`),
    expect: 'accepted',
  },
  {
    name: 'an extra event field',
    type: 'track_played',
    event: track(`,"extra":1,"payload":${trackPayload}`),
    expect: invalid('extra'),
  },
  {
    name: 'an extra field named __proto__',
    type: 'track_played',
    event: track(`,"__proto__":{},"payload":${trackPayload}`),
    expect: invalid('__proto__'),
  },
  { name: 'payload missing', type: 'track_played', event: track(''), expect: invalid('payload') },
  { name: 'payload an array', type: 'track_played', event: track(`,"payload":[]`), expect: invalid('payload') },
  { name: 'payload null', type: 'track_played', event: track(`,"payload":null`), expect: invalid('payload') },
  {
    name: 'payload a deep array',
    type: 'track_played',
    event: track(`,"payload":${DEEP}`),
    expect: invalid('payload'),
  },
  {
    name: 'payload with meta',
    type: 'track_played',
    event: withField('track_played', 'meta', '{}'),
    expect: invalid('payload.meta'),
  },
  {
    name: 'payload with __proto__',
    type: 'track_played',
    event: withField('track_played', '__proto__', '{"x":1}'),
    expect: invalid('payload.__proto__'),
  },
  {
    name: 'payload with constructor',
    type: 'track_played',
    event: withField('track_played', 'constructor', '"x"'),
    expect: invalid('payload.constructor'),
  },
  {
    name: 'payload with an unknown field',
    type: 'track_played',
    event: withField('track_played', 'colour', '"red"'),
    expect: invalid('payload.colour'),
  },
  {
    name: 'payload missing a required field',
    type: 'ab_exposure',
    event: `{"type":"ab_exposure","payload":{"user_id":"u"}}`,
    expect: invalid('payload.experiment_id'),
  },
  {
    name: 'defaults left out (offline, context_uri)',
    type: 'track_played',
    event: `{"type":"track_played","payload":{"user_id":"u","track_id":"t","ms_played":1,"reason_start":"CLICK_ROW","reason_end":"TRACK_DONE","shuffle":true,"platform":"WEB","country":"SE"}}`,
    expect: 'accepted',
  },
  { name: 'an event that is a string', type: '', event: '"hello"', expect: { code: 'EVENT_INVALID' } },
  { name: 'an event that is an array', type: '', event: '[]', expect: { code: 'EVENT_INVALID' } },
  { name: 'an event that is null', type: '', event: 'null', expect: { code: 'EVENT_INVALID' } },
  { name: 'an event that is a deep array', type: '', event: DEEP, expect: { code: 'EVENT_INVALID' } },
];

export const jsonEventCases: JsonEventCase[] = [...fieldCases(), ...EVENT_CASES];

const json = { 'content-type': 'application/json' };
const bad = (code: string, status = 400) => ({ status, code });

export const jsonBodyCases: JsonBodyCase[] = [
  {
    name: 'invalid UTF-8 bytes',
    body: Buffer.concat([Buffer.from('{"events":[{"type":"ab_'), Buffer.from([0xff]), Buffer.from('"}]}')]),
    headers: json,
    expect: bad('HTTP_BAD_REQUEST'),
  },
  {
    name: 'an overlong UTF-8 slash',
    body: Buffer.concat([Buffer.from('{"events":['), Buffer.from([0xc0, 0xaf]), Buffer.from(']}')]),
    headers: json,
    expect: bad('HTTP_BAD_REQUEST'),
  },
  {
    name: 'UTF-8 encoded surrogate',
    body: Buffer.concat([Buffer.from('{"events":["'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"]}')]),
    headers: json,
    expect: bad('HTTP_BAD_REQUEST'),
  },
  { name: 'a byte-order mark', body: `\ufeff{"events":[]}`, headers: json, expect: bad('HTTP_BAD_REQUEST') },
  { name: 'not JSON', body: 'events=1', headers: json, expect: bad('HTTP_BAD_REQUEST') },
  { name: 'truncated JSON', body: '{"events":[{"type":', headers: json, expect: bad('HTTP_BAD_REQUEST') },
  { name: 'NaN literal', body: '{"events":[NaN]}', headers: json, expect: bad('HTTP_BAD_REQUEST') },
  { name: 'events not an array', body: '{"events":{}}', headers: json, expect: bad('HTTP_BAD_REQUEST') },
  { name: 'events empty', body: '{"events":[]}', headers: json, expect: bad('HTTP_BAD_REQUEST') },
  {
    name: 'a body 100,000 levels deep',
    body: '['.repeat(100_000) + ']'.repeat(100_000),
    headers: json,
    expect: bad('HTTP_BAD_REQUEST'),
  },
  {
    name: 'a gzip bomb (10 MB of zeros)',
    body: gzipSync(Buffer.alloc(10 * 1024 * 1024)),
    headers: { ...json, 'content-encoding': 'gzip' },
    expect: bad('HTTP_BODY_TOO_LARGE', 413),
  },
  {
    name: 'too many events',
    body: JSON.stringify({ events: Array.from({ length: 1001 }, () => ({})) }),
    headers: json,
    expect: bad('HTTP_BATCH_TOO_LARGE', 413),
  },
  {
    name: 'text/plain',
    body: '{"events":[]}',
    headers: { 'content-type': 'text/plain' },
    expect: bad('HTTP_UNSUPPORTED_MEDIA_TYPE', 415),
  },
  {
    name: 'Content-Encoding br',
    body: '{"events":[]}',
    headers: { ...json, 'content-encoding': 'br' },
    expect: bad('HTTP_UNSUPPORTED_MEDIA_TYPE', 415),
  },
  {
    name: 'gzip that is not gzip',
    body: 'not gzip',
    headers: { ...json, 'content-encoding': 'gzip' },
    expect: bad('HTTP_BAD_REQUEST'),
  },
];

import avro from 'avsc';
import {
  META_SCHEMA,
  SchemaRegistry,
  buildRecord,
  checkRecord,
  decodeBundle,
  encodeRecords,
  type EventMeta,
} from '@hourglass/schemas';

/**
 * Table-driven validation per event type: one valid payload and the ways a client gets
 * it wrong, each of which must name the field path and the reason.
 */
const registry = SchemaRegistry.load('schemas');

const meta: EventMeta = {
  event_id: '3f1c1f7e-8a5b-4a3e-9d38-0d0f4d9b2b6e',
  gateway_ts: 1_700_000_000_000,
  client_ts: 1_699_999_999_000,
  gateway_id: 'gw-test',
};

interface InvalidCase {
  name: string;
  payload: unknown;
  path: string;
  reason: RegExp;
}

interface TypeTable {
  valid: Record<string, unknown>;
  /** Fields the client may leave out, with the value the schema's default fills in. */
  defaults: Record<string, unknown>;
  /** The same fields set to non-default values. */
  explicit: Record<string, unknown>;
  /** A required field (no default) to drop. */
  required: string;
  /** A field and a value of the wrong type for it. */
  wrongType: [string, unknown, RegExp];
  /** An enum field, if the type has one. */
  enumField?: string;
}

const tables: Record<string, TypeTable> = {
  ab_exposure: {
    valid: { user_id: 'u1', experiment_id: 'exp-42', variant: 'B', first_exposure: true },
    defaults: {},
    explicit: {},
    required: 'experiment_id',
    wrongType: ['first_exposure', 'yes', /expected a boolean, got "yes"/],
  },
  ad_impression: {
    valid: {
      user_id: 'u1',
      ad_id: 'ad-9',
      campaign_id: 'c-1',
      format: 'AUDIO',
      duration_ms: 30_000,
      clicked: false,
      price_micros: 1_250_000,
      currency: 'EUR',
    },
    defaults: {},
    explicit: {},
    required: 'price_micros',
    wrongType: ['duration_ms', 2 ** 31, /expected an int \(32-bit integer\), got 2147483648/],
    enumField: 'format',
  },
  page_viewed: {
    valid: { page: 'home', duration_ms: 1200, platform: 'WEB' },
    defaults: { user_id: null, referrer: null },
    explicit: { user_id: 'u1', referrer: 'search' },
    required: 'page',
    wrongType: ['referrer', 7, /expected null or a string, got 7/],
    enumField: 'platform',
  },
  search_performed: {
    valid: { user_id: 'u1', query: 'jazz', results_shown: 20, latency_ms: 35, platform: 'IOS' },
    defaults: { clicked_position: null },
    explicit: { clicked_position: 3 },
    required: 'results_shown',
    wrongType: ['latency_ms', 3.5, /expected an int \(32-bit integer\), got 3.5/],
    enumField: 'platform',
  },
  track_played: {
    valid: {
      user_id: 'u1',
      track_id: 't-123',
      ms_played: 181_000,
      reason_start: 'CLICK_ROW',
      reason_end: 'TRACK_DONE',
      shuffle: false,
      platform: 'ANDROID',
      country: 'SE',
    },
    defaults: { offline: false, context_uri: null },
    explicit: { offline: true, context_uri: 'spotify:playlist:1' },
    required: 'ms_played',
    wrongType: ['ms_played', '181000', /expected a long \(integer\), got "181000"/],
    enumField: 'reason_end',
  },
};

function without(obj: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...obj };
  delete copy[key];
  return copy;
}

function invalidCases(table: TypeTable): InvalidCase[] {
  const { valid } = table;
  const [wrongField, wrongValue, wrongReason] = table.wrongType;
  const cases: InvalidCase[] = [
    {
      name: 'unknown field',
      payload: { ...valid, colour: 'blue' },
      path: 'payload.colour',
      reason: /is not a field of hourglass\.events\./,
    },
    {
      name: 'misspelt field (reported as unknown, not as the missing one)',
      payload: { ...without(valid, table.required), [`${table.required}x`]: valid[table.required] },
      path: `payload.${table.required}x`,
      reason: /is not a field of/,
    },
    {
      name: 'field named like an Object.prototype member',
      payload: { ...valid, constructor: 1 },
      path: 'payload.constructor',
      reason: /is not a field of/,
    },
    {
      name: 'own __proto__ key (as JSON.parse makes it)',
      payload: JSON.parse(`{"__proto__": {"x": 1}, ${JSON.stringify(valid).slice(1)}`) as unknown,
      path: 'payload.__proto__',
      reason: /is not a field of/,
    },
    {
      name: 'missing required field',
      payload: without(valid, table.required),
      path: `payload.${table.required}`,
      reason: /^is required: expected /,
    },
    {
      name: 'wrong type',
      payload: { ...valid, [wrongField]: wrongValue },
      path: `payload.${wrongField}`,
      reason: wrongReason,
    },
    {
      name: 'null for a required field',
      payload: { ...valid, [table.required]: null },
      path: `payload.${table.required}`,
      reason: /, got null$/,
    },
    {
      name: 'meta in payload',
      payload: { ...valid, meta },
      path: 'payload.meta',
      reason: /reserved/,
    },
    { name: 'array payload', payload: [valid], path: 'payload', reason: /must be a JSON object, got an array/ },
    { name: 'null payload', payload: null, path: 'payload', reason: /must be a JSON object, got null/ },
    { name: 'string payload', payload: 'hello', path: 'payload', reason: /must be a JSON object, got a string/ },
    { name: 'number payload', payload: 42, path: 'payload', reason: /must be a JSON object, got a number/ },
  ];
  if (table.enumField) {
    cases.push({
      name: 'wrong enum symbol',
      payload: { ...valid, [table.enumField]: 'NOT_A_SYMBOL' },
      path: `payload.${table.enumField}`,
      reason: /expected one of [A-Z_|]+, got "NOT_A_SYMBOL"/,
    });
    cases.push({
      name: 'enum symbol in the wrong case',
      payload: { ...valid, [table.enumField]: String(valid[table.enumField]).toLowerCase() },
      path: `payload.${table.enumField}`,
      reason: /expected one of /,
    });
  }
  return cases;
}

test('the table covers every event type in schemas/', () => {
  expect(Object.keys(tables).sort()).toEqual(registry.eventTypes().sort());
});

describe.each(Object.keys(tables))('%s', (eventType) => {
  const table = tables[eventType]!;
  const latest = registry.get(eventType).latest;

  test('a valid payload builds a record with meta first and defaults filled', () => {
    const result = buildRecord(latest, meta, table.valid);
    if (!result.ok) throw new Error(`rejected: ${result.path} ${result.reason}`);
    expect(result.record).toEqual({ meta, ...table.valid, ...table.defaults });
    expect(Object.keys(result.record)[0]).toBe('meta');
    expect(latest.type.isValid(result.record)).toBe(true);
  });

  test('explicit values win over defaults', () => {
    expect(Object.keys(table.explicit).sort()).toEqual(Object.keys(table.defaults).sort());
    const result = buildRecord(latest, meta, { ...table.valid, ...table.explicit });
    if (!result.ok) throw new Error(`rejected: ${result.path} ${result.reason}`);
    expect(result.record).toEqual({ meta, ...table.valid, ...table.explicit });
  });

  test.each(invalidCases(table).map((c) => [c.name, c] as const))('rejects %s', (_name, c) => {
    const result = buildRecord(latest, meta, c.payload);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.path).toBe(c.path);
    expect(result.reason).toMatch(c.reason);
  });

  test.each(['null', 'deflate'] as const)('a built record round-trips through the codec (%s)', (codec) => {
    const result = buildRecord(latest, meta, table.valid);
    if (!result.ok) throw new Error(`rejected: ${result.path} ${result.reason}`);
    const bundle = encodeRecords(latest, [result.record, result.record], codec);
    const decoded = decodeBundle(registry, bundle.data, bundle.attributes);
    expect(decoded.eventType).toBe(eventType);
    expect(decoded.writer.fingerprint).toBe(latest.fingerprint);
    expect(decoded.records).toEqual([result.record, result.record]);
  });
});

describe('meta problems are the gateway’s, reported under meta.*', () => {
  const latest = registry.get('ab_exposure').latest;
  const payload = tables.ab_exposure!.valid;

  test('a bad gateway_ts', () => {
    const result = buildRecord(latest, { ...meta, gateway_ts: 'now' as unknown as number }, payload);
    expect(result).toEqual({ ok: false, path: 'meta.gateway_ts', reason: 'expected a long (integer), got "now"' });
  });

  test('a missing gateway_id', () => {
    const { gateway_id: _dropped, ...partial } = meta;
    const result = buildRecord(latest, partial as EventMeta, payload);
    expect(result).toEqual({ ok: false, path: 'meta.gateway_id', reason: 'is required: expected a string' });
  });
});

test('a long beyond what a JSON number holds exactly says so', () => {
  const latest = registry.get('track_played').latest;
  const result = buildRecord(latest, meta, { ...tables.track_played!.valid, ms_played: 2 ** 60 });
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.path).toBe('payload.ms_played');
  expect(result.reason).toMatch(/within ±2\^52 \(±4503599627370496\)/);
});

test('an older version validates its own shape (track_played v1 has no offline field)', () => {
  const v1 = registry.get('track_played').versions[0]!;
  expect(v1.version).toBe(1);
  const ok = buildRecord(v1, meta, tables.track_played!.valid);
  expect(ok.ok).toBe(true);
  const result = buildRecord(v1, meta, { ...tables.track_played!.valid, offline: true });
  expect(result).toMatchObject({ ok: false, path: 'payload.offline' });
});

describe('checkRecord names fields inside nested records, arrays, maps and optional records', () => {
  const item = { type: 'record', name: 'Item', fields: [{ name: 'sku', type: 'string' }] };
  const type = avro.Type.forSchema({
    type: 'record',
    name: 'Order',
    namespace: 'hourglass.test',
    fields: [
      { name: 'meta', type: META_SCHEMA as unknown as avro.Schema },
      { name: 'items', type: { type: 'array', items: item } },
      { name: 'tags', type: { type: 'map', values: 'Item' } },
      {
        name: 'gift',
        type: [
          'null',
          {
            type: 'record',
            name: 'Gift',
            fields: [
              { name: 'note', type: 'string' },
              { name: 'ribbon', type: ['null', 'string'], default: null },
            ],
          },
        ],
      },
    ],
  } as avro.Schema);
  const valid = { meta, items: [{ sku: 'a' }, { sku: 'b' }], tags: { x: { sku: 'c' } }, gift: { note: 'hi' } };

  test.each([
    ['valid', valid, undefined],
    [
      'unknown field in an array item',
      { ...valid, items: [{ sku: 'a' }, { sku: 'b', qty: 2 }] },
      { path: 'payload.items.1.qty', reason: 'is not a field of hourglass.test.Item' },
    ],
    [
      'unknown field in a map value',
      { ...valid, tags: { x: { sku: 'c', colour: 'red' } } },
      { path: 'payload.tags.x.colour', reason: 'is not a field of hourglass.test.Item' },
    ],
    [
      'unknown field in an optional record',
      { ...valid, gift: { note: 'hi', wrap: true } },
      { path: 'payload.gift.wrap', reason: 'is not a field of hourglass.test.Gift' },
    ],
    [
      'an Object.prototype name in an array item (avsc alone lets it through)',
      { ...valid, items: [{ sku: 'a', constructor: 1 }] },
      { path: 'payload.items.0.constructor', reason: 'is not a field of hourglass.test.Item' },
    ],
    [
      'an Object.prototype name in a map value',
      { ...valid, tags: { x: { sku: 'c', toString: 'x' } } },
      { path: 'payload.tags.x.toString', reason: 'is not a field of hourglass.test.Item' },
    ],
    [
      'an Object.prototype name in an optional record',
      { ...valid, gift: { note: 'hi', hasOwnProperty: 1 } },
      { path: 'payload.gift.hasOwnProperty', reason: 'is not a field of hourglass.test.Gift' },
    ],
    [
      'an Object.prototype name standing in for a left-out optional field',
      { ...valid, gift: { note: 'hi', constructor: 1 } },
      { path: 'payload.gift.constructor', reason: 'is not a field of hourglass.test.Gift' },
    ],
    [
      'unknown field in meta',
      { ...valid, meta: { ...meta, region: 'eu' } },
      { path: 'meta.region', reason: 'is not a field of hourglass.EventMeta' },
    ],
    [
      'wrong type in an array item',
      { ...valid, items: [{ sku: 'a' }, { sku: 7 }] },
      { path: 'payload.items.1.sku', reason: 'expected a string, got 7' },
    ],
    [
      'missing field in an optional record',
      { ...valid, gift: {} },
      { path: 'payload.gift.note', reason: 'is required: expected a string' },
    ],
  ])('%s', (_name, record, expected) => {
    expect(checkRecord(type, record)).toEqual(expected);
  });
});

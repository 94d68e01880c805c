import type avro from 'avsc';
import fc from 'fast-check';
import { jsonTextOf, hostileValue, mutatedPayload, payloadText, validPayload } from '../../hostile/arbitraries';
import { jsonBodyCases, jsonEventCases } from '../../hostile/corpus-json';
import {
  aligned,
  defaultSetting,
  fastRoute,
  referenceRoute,
  registry,
  type FastStats,
  type Outcome,
  type Setting,
} from './transcode-support';

/**
 * Issue 18: the JSON route's transcoder (JSON bytes straight to Avro) against the reference
 * (JSON.parse, buildRecord, avsc): for every schema, identical stored bytes and answers, or an
 * identical refusal, for valid, mutated and hostile bodies. Seeded; each property also counts
 * how many bodies the fast path took, so none of them can pass by never running it.
 */
const SEED = 1818;
const types = registry.eventTypes();
const recordOf = (t: string) => registry.get(t).latest.type as avro.types.RecordType;

function same(raw: Buffer, setting: Setting = defaultSetting, stats?: FastStats): void {
  const reference = referenceRoute(raw, setting);
  const fast: Outcome = fastRoute(raw, setting, stats);
  expect(aligned(raw, fast, reference)).toEqual(reference);
}

/**
 * Settings that make the fast path hand requests back: a narrow key, a small size limit, odd
 * clocks and ids; and less room before each payload than its meta takes (the copy path).
 */
const settingArb: fc.Arbitrary<Setting> = fc.record({
  key: fc.oneof(
    { weight: 4, arbitrary: fc.constant(defaultSetting.key) },
    fc.subarray(types).map((allowed) => ({ ...defaultSetting.key, types: new Set(allowed) })),
  ),
  maxEventBytes: fc.oneof({ weight: 4, arbitrary: fc.constant(65536) }, fc.integer({ min: 40, max: 200 })),
  gatewayTs: fc.oneof(
    { weight: 4, arbitrary: fc.constant(defaultSetting.gatewayTs) },
    fc.constantFrom(0, 1, 2 ** 30, 2 ** 52, 2 ** 52 + 2, 2 ** 53 - 1),
  ),
  gatewayId: fc.oneof({ weight: 4, arbitrary: fc.constant('gw-1') }, fc.constantFrom('', 'gw-é', 'gw-\ud800')),
  room: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, fc.integer({ min: 0, max: 80 })),
});

/** 36 characters that are nearly a UUID: one replaced (a letter past f, an escape, a wide character...), a dash moved, mixed case. */
const nearUuid = fc.oneof(
  fc
    .tuple(fc.uuid(), fc.nat(35), fc.constantFrom('g', 'G', '-', 'A', '0', '"', '\\', 'é', '\u0000', ' ', '\u2028'))
    .map(([u, at, c]) => u.slice(0, at) + c + u.slice(at + 1)),
  fc.tuple(fc.uuid(), fc.constantFrom(8, 13, 18, 23), fc.nat(35)).map(([u, dash, to]) => {
    const chars = [...u];
    [chars[dash], chars[to]] = [chars[to]!, chars[dash]!]; // still 32 hex digits and 4 dashes
    return chars.join('');
  }),
  fc
    .tuple(fc.uuid(), fc.array(fc.boolean(), { minLength: 36, maxLength: 36 }))
    .map(([u, upper]) => [...u].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('')),
);
const idArb = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  { weight: 6, arbitrary: fc.uuid() },
  fc.uuid().map((u) => u.toUpperCase()),
  { weight: 2, arbitrary: nearUuid },
  hostileValue,
);
const clientTsArb = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 2 ** 52 }) },
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(
    2 ** 52,
    2 ** 52 + 1,
    -0,
    -1,
    1.5,
    '2026-01-01T00:00:00Z',
    '2026-01-01',
    'yesterday',
    '-000001-01-01T00:00:00Z',
  ),
  fc.date({ min: new Date(0), max: new Date(8.64e15) }).map((d) => d.toISOString()),
  hostileValue,
);

/** A valid payload of `type`, some fields left out (to their defaults, or missing), maybe in another order. */
function payloadArb(type: string): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .record({
      base: validPayload(recordOf(type)),
      drop: fc.array(fc.boolean()),
      shuffle: fc.boolean(),
      plain: fc.boolean(),
    })
    .map(({ base, drop, shuffle, plain }) => {
      let entries = Object.entries(base).filter((_, i) => plain || drop[i] !== true || i % 3 !== 0);
      if (shuffle && !plain) entries = entries.reverse();
      return Object.fromEntries(entries);
    });
}

/** One event as JSON text: its members in any order, absent ones left out. */
function eventText(members: [string, string | undefined][], order: readonly number[]): string {
  const present = members.filter(([, v]) => v !== undefined) as [string, string][];
  const sorted = order.length
    ? present.map((m, i) => ({ m, k: order[i % order.length]! })).sort((a, b) => a.k - b.k)
    : [];
  const list = sorted.length ? sorted.map((x) => x.m) : present;
  return `{${list.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

const text = (v: unknown) => (v === undefined ? undefined : jsonTextOf(v));

const eventWithIds = (ids: fc.Arbitrary<unknown>) =>
  fc
    .constantFrom(...types)
    .chain((type) =>
      fc.record({
        type: fc.constant(type),
        payload: payloadArb(type),
        id: ids,
        clientTs: clientTsArb,
        order: fc.oneof({ weight: 6, arbitrary: fc.constant([]) }, fc.array(fc.nat(9), { minLength: 4, maxLength: 4 })),
      }),
    )
    .map(({ type, payload, id, clientTs, order }) =>
      eventText(
        [
          ['type', JSON.stringify(type)],
          ['payload', JSON.stringify(payload)],
          ['id', text(id)],
          ['client_ts', text(clientTs)],
        ],
        order,
      ),
    );
const validEvent = eventWithIds(idArb);

const whitespace = fc.constantFrom('', ' ', '\n', '\t', '\r\n  ');
const bodyOf = (events: string[], ws: string) =>
  Buffer.from(`${ws}{${ws}"events"${ws}:${ws}[${ws}${events.join(`${ws},${ws}`)}${ws}]${ws}}${ws}`);

describe('the JSON transcoder against the reference route', () => {
  it('stores the same bytes and answers the same for generated valid events of every schema', () => {
    const stats: FastStats = { transcoded: 0 };
    fc.assert(
      fc.property(fc.array(validEvent, { minLength: 1, maxLength: 4 }), whitespace, (events, ws) => {
        same(bodyOf(events, ws), defaultSetting, stats);
      }),
      { seed: SEED, numRuns: 600 },
    );
    expect(stats.transcoded).toBeGreaterThan(40);
    // both paths ran, and in the same bodies: events the transcoder declines are parsed alone
    expect(stats.transcodedEvents).toBeGreaterThan(300);
    expect(stats.parsedEvents).toBeGreaterThan(100);
    expect(stats.mixed).toBeGreaterThan(40);
  });

  it('stores the same bytes for strings written with \\u escapes only (non-ASCII, as ensure_ascii encoders write it)', () => {
    const stats: FastStats = { transcoded: 0 };
    const escaped = (text: string) =>
      text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    fc.assert(
      fc.property(fc.array(validEvent, { minLength: 1, maxLength: 4 }), (events) => {
        same(Buffer.from(escaped(bodyOf(events, '').toString('utf8'))), defaultSetting, stats);
      }),
      { seed: SEED, numRuns: 400 },
    );
    expect(stats.transcodedEvents).toBeGreaterThan(300);
  });

  it('answers the same for ids of 36 characters that are nearly UUIDs', () => {
    const stats: FastStats = { transcoded: 0 };
    fc.assert(
      fc.property(fc.array(eventWithIds(nearUuid), { minLength: 1, maxLength: 3 }), (events) => {
        same(bodyOf(events, ''), defaultSetting, stats);
      }),
      { seed: SEED, numRuns: 800 },
    );
    expect(stats.transcodedEvents).toBeGreaterThan(100); // the mixed-case ones, and replacements by a hex digit
  });

  it('answers the same under narrow keys, small size limits, odd clocks and gateway ids', () => {
    const stats: FastStats = { transcoded: 0 };
    fc.assert(
      fc.property(fc.array(validEvent, { minLength: 1, maxLength: 4 }), settingArb, (events, setting) => {
        same(bodyOf(events, ''), setting, stats);
      }),
      { seed: SEED, numRuns: 400 },
    );
    expect(stats.transcoded).toBeGreaterThan(40);
  });

  it('answers the same when one payload field (or an extra key) is a hostile value', () => {
    const stats: FastStats = { transcoded: 0 };
    const mutated = fc
      .constantFrom(...types)
      .chain((type) => fc.record({ type: fc.constant(type), m: mutatedPayload(recordOf(type)), other: validEvent }));
    fc.assert(
      fc.property(mutated, ({ type, m, other }) => {
        // the field in its place (the transcoder's order) and, as the hostile suite sends it, last
        const inPlace = Object.entries(m.base)
          .map(([k, v]) => `${JSON.stringify(k)}:${k === m.field ? jsonTextOf(m.value) : JSON.stringify(v)}`)
          .join(',');
        const event = `{"type":${JSON.stringify(type)},"payload":{${inPlace}}}`;
        same(bodyOf([other, event], ''), defaultSetting, stats);
        const last = `{"type":${JSON.stringify(type)},"payload":${payloadText(m.base, m.field, m.value)}}`;
        same(bodyOf([other, last], ''), defaultSetting, stats);
      }),
      { seed: SEED, numRuns: 500 },
    );
    expect(stats.transcoded).toBeGreaterThan(0);
  });

  it('answers the same when type, id, client_ts, payload or the body itself is hostile', () => {
    const member = fc.constantFrom('type', 'id', 'client_ts', 'payload', 'extra', '__proto__');
    fc.assert(
      fc.property(validEvent, member, hostileValue, hostileValue, (event, name, value, body) => {
        same(Buffer.from(`{"events":[${event.slice(0, -1)},${JSON.stringify(name)}:${jsonTextOf(value)}}]}`));
        same(Buffer.from(`{"events":[${event}],${JSON.stringify(name)}:${jsonTextOf(value)}}`));
        same(Buffer.from(`{"events":${jsonTextOf(body)}}`));
        same(Buffer.from(jsonTextOf(body)));
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('answers the same for valid bodies with bytes deleted, inserted or replaced', () => {
    const edit = fc.record({
      at: fc.nat(),
      remove: fc.nat(3),
      insert: fc.constantFrom(
        '',
        '\\',
        '"',
        ',',
        '}',
        ']',
        '{',
        '[',
        '0',
        '-',
        '.',
        'e',
        'E+',
        ' ',
        '\n',
        '\u0001',
        'é',
        'x',
        'null',
        '1e400',
        '\\u0041',
      ),
    });
    fc.assert(
      fc.property(
        fc.array(validEvent, { minLength: 1, maxLength: 3 }),
        fc.array(edit, { minLength: 1, maxLength: 3 }),
        (events, edits) => {
          let body = bodyOf(events, '').toString('utf8');
          for (const e of edits) {
            const at = e.at % (body.length + 1);
            body = body.slice(0, at) + e.insert + body.slice(at + e.remove);
          }
          same(Buffer.from(body));
        },
      ),
      { seed: SEED, numRuns: 1500 },
    );
  });

  it('answers the same for every row of the hostile-input corpus', () => {
    for (const row of jsonEventCases) same(Buffer.from(`{"events":[${row.event}]}`));
    for (const row of jsonBodyCases) {
      const plainJson = row.headers?.['content-type'] === 'application/json' && !row.headers['content-encoding'];
      if (plainJson) same(Buffer.isBuffer(row.body) ? row.body : Buffer.from(row.body));
    }
  });
});

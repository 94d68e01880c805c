import avro from 'avsc';
import fc from 'fast-check';
import {
  SchemaRegistry,
  buildRecord,
  compiledWriterOf,
  type CompiledWriter,
  type EventMeta,
  type SchemaVersion,
} from '@hourglass/schemas';
import { validPayload, validValue } from '../../hostile/arbitraries';
import { eventSchema, writeSchemaDir } from './schema-dirs';

/**
 * The gateway's compiled writer must answer exactly as buildRecord does for every JSON
 * payload (accept or "ask buildRecord"), and encode accepted events to the same bytes.
 * Table of edge values per field, plus seeded fast-check payloads with fields replaced.
 */
const registry = SchemaRegistry.load('schemas');
const versions = registry.eventTypes().flatMap((t) => registry.get(t).versions);

const meta: EventMeta = {
  event_id: '3f1c1f7e-8a5b-4a3e-9d38-0d0f4d9b2b6e',
  gateway_ts: 1_700_000_000_000,
  client_ts: 1_699_999_999_000,
  gateway_id: 'gw-test',
};

/** Values at the edges of every Avro type's JSON check. */
const EDGE_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  -(2 ** 31) - 1,
  9007199254740990,
  9007199254740991,
  -9007199254740990,
  -9007199254740991,
  2 ** 60,
  '',
  'x',
  'WEB',
  'AUDIO',
  'TRACK_DONE',
  'constructor',
  '__proto__',
  'toString',
  [],
  [1],
  {},
  { a: 1 },
];

const buf = Buffer.alloc(1 << 20);

function writerOf(version: SchemaVersion): CompiledWriter {
  const writer = compiledWriterOf(version);
  if (!writer) throw new Error(`${version.eventType} v${version.version} has no compiled writer`);
  return writer;
}

/** Same answer as buildRecord; when accepted, the same bytes as encoding the built record. */
function expectSameAsBuildRecord(version: SchemaVersion, m: EventMeta, payload: unknown): boolean {
  const writer = writerOf(version);
  const built = buildRecord(version, m, payload);
  const accepted = writer.accepts(m, payload);
  if (accepted !== built.ok) {
    throw new Error(
      `${version.eventType} v${version.version}: compiled ${accepted}, buildRecord ${JSON.stringify(built)} for ${JSON.stringify(payload)}`,
    );
  }
  if (built.ok) {
    const end = writer.encode(m, payload as object, buf, 0);
    expect(buf.subarray(0, end).toString('hex')).toBe(version.type.toBuffer(built.record).toString('hex'));
  }
  return accepted;
}

/** fast-check's seed for this file: every generated payload replays exactly. */
const SEED = 1604;
let samples = 0;

/** Through JSON, as a client sends it. */
const asJson = (payload: Record<string, unknown>): Record<string, unknown> =>
  JSON.parse(JSON.stringify(payload)) as Record<string, unknown>;

/** A valid JSON payload of `version` (seeded values, a new one per call). */
function randomPayload(version: SchemaVersion): Record<string, unknown> {
  const [payload] = fc.sample(validPayload(version.type as avro.types.RecordType), {
    seed: SEED + samples++,
    numRuns: 1,
  });
  return asJson(payload!);
}

/** Up to two fields of a valid payload dropped, joined by an unknown key, set to an edge value or to another valid value. */
function editedPayload(version: SchemaVersion): fc.Arbitrary<Record<string, unknown>> {
  const fields = (version.type as avro.types.RecordType).fields.slice(1);
  const edit = fc.oneof(
    ...fields.map((field) =>
      fc.oneof(
        { weight: 2, arbitrary: fc.constant((p: Record<string, unknown>) => delete p[field.name]) },
        { weight: 1, arbitrary: fc.constant((p: Record<string, unknown>) => (p[`${field.name}_x`] = 1)) },
        {
          weight: 4,
          arbitrary: fc.constantFrom(...EDGE_VALUES).map((v) => (p: Record<string, unknown>) => (p[field.name] = v)),
        },
        {
          weight: 3,
          arbitrary: validValue(field.type).map((v) => (p: Record<string, unknown>) => (p[field.name] = v)),
        },
      ),
    ),
  );
  return fc
    .tuple(validPayload(version.type as avro.types.RecordType), fc.array(edit, { maxLength: 2 }))
    .map(([payload, edits]) => {
      const edited = asJson(payload);
      for (const apply of edits) apply(edited);
      return edited;
    });
}

describe('compiled writer', () => {
  test('every schema in the repository compiles', () => {
    for (const v of versions) expect(compiledWriterOf(v)).toBeDefined();
  });

  test.each(versions.map((v) => [`${v.eventType} v${v.version}`, v] as const))(
    '%s: each field set to each edge value, dropped, or joined by an unknown key answers like buildRecord',
    (_name, version) => {
      const fields = (version.type as avro.types.RecordType).fields.slice(1);
      let accepted = 0;
      for (let round = 0; round < 5; round++) {
        const base = randomPayload(version);
        expect(expectSameAsBuildRecord(version, meta, base)).toBe(true);
        for (const field of fields) {
          for (const value of EDGE_VALUES) {
            if (expectSameAsBuildRecord(version, meta, { ...base, [field.name]: value })) accepted++;
          }
          const without = { ...base };
          delete without[field.name];
          expectSameAsBuildRecord(version, meta, without);
        }
        for (const key of ['extra', 'meta', 'constructor', 'toString', 'hasOwnProperty']) {
          expectSameAsBuildRecord(version, meta, { ...base, [key]: 1 });
        }
        // JSON.parse makes "__proto__" an own key, which a literal cannot.
        expectSameAsBuildRecord(version, meta, JSON.parse(JSON.stringify(base).replace('{', '{"__proto__":{},')));
      }
      expect(accepted).toBeGreaterThan(0);
    },
  );

  test('payloads that are not objects, and bad meta, answer like buildRecord', () => {
    const version = registry.get('track_played').latest;
    for (const payload of [null, undefined, 1, 'x', true, [], [randomPayload(version)]]) {
      expect(expectSameAsBuildRecord(version, meta, payload)).toBe(false);
    }
    const payload = randomPayload(version);
    for (const bad of [
      { ...meta, client_ts: 9007199254740991 },
      { ...meta, client_ts: 1.5 },
      { ...meta, gateway_ts: -(2 ** 60) },
      { ...meta, event_id: 7 },
      { ...meta, extra: 1 },
    ]) {
      expect(expectSameAsBuildRecord(version, bad as EventMeta, payload)).toBe(false);
    }
    expect(expectSameAsBuildRecord(version, { ...meta, client_ts: null }, payload)).toBe(true);
  });

  test('fuzz: valid payloads with up to two fields replaced answer and encode like buildRecord (3,000 runs)', () => {
    let accepted = 0;
    let rejected = 0;
    const payloads = fc
      .constantFrom(...versions)
      .chain((version) => fc.tuple(fc.constant(version), editedPayload(version)));
    fc.assert(
      fc.property(payloads, ([version, payload]) => {
        if (expectSameAsBuildRecord(version, meta, payload)) accepted++;
        else rejected++;
      }),
      { seed: SEED, numRuns: 3_000 },
    );
    expect(accepted).toBeGreaterThan(300);
    expect(rejected).toBeGreaterThan(300);
  });

  test('nested records, arrays, maps and unions answer and encode like buildRecord', () => {
    const dir = writeSchemaDir({
      'thing/v1.avsc': eventSchema('Thing', [
        {
          name: 'place',
          type: {
            type: 'record',
            name: 'Place',
            fields: [
              { name: 'city', type: 'string' },
              { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] }, default: 'A' },
            ],
          },
        },
        { name: 'maybe_place', type: ['null', 'Place'], default: null },
        { name: 'tags', type: { type: 'array', items: 'string' }, default: [] },
        { name: 'places', type: { type: 'array', items: 'Place' }, default: [] },
        { name: 'counts', type: { type: 'map', values: 'long' }, default: {} },
        { name: 'ratio', type: ['null', 'double'], default: null },
        { name: 'score', type: 'float', default: 0 },
        { name: 'kind_or_null', type: ['null', 'Kind'], default: null },
        { name: 'either', type: ['int', 'string'], default: 0 },
        { name: 'blob', type: ['null', 'bytes'], default: null },
      ]),
    });
    const version = SchemaRegistry.load(dir).get('thing').latest;
    expect(compiledWriterOf(version)).toBeDefined();
    const ok = { place: { city: 'Lund' } };
    const cases: unknown[] = [
      ok,
      { place: { city: 'Lund', kind: 'B' } },
      { place: { city: 'Lund', kind: 'C' } },
      { place: { city: 'Lund', kind: 'constructor' } },
      { place: { city: 'Lund', extra: 1 } },
      { place: { city: 'Lund', constructor: 1 } },
      { place: [] },
      { place: null },
      { place: { city: 'Lund' }, maybe_place: { city: 'Malmö' } },
      { place: { city: 'Lund' }, maybe_place: { city: 'Malmö', x: 1 } },
      { place: { city: 'Lund' }, maybe_place: [] },
      { place: { city: 'Lund' }, tags: ['a', 'b'] },
      { place: { city: 'Lund' }, tags: ['a', 1] },
      { place: { city: 'Lund' }, places: [{ city: 'a' }, { city: 'b', kind: 'B' }] },
      { place: { city: 'Lund' }, places: [{ city: 'a', x: 1 }] },
      { place: { city: 'Lund' }, places: [{ city: 'a', kind: 'toString' }] },
      { place: { city: 'Lund' }, counts: { a: 1, b: 2 } },
      { place: { city: 'Lund' }, counts: { a: 1.5 } },
      { place: { city: 'Lund' }, counts: [] },
      { place: { city: 'Lund' }, ratio: 0.5 },
      { place: { city: 'Lund' }, ratio: '0.5' },
      { place: { city: 'Lund' }, score: 1e300 },
      { place: { city: 'Lund' }, kind_or_null: 'B' },
      { place: { city: 'Lund' }, kind_or_null: 'constructor' },
      { place: { city: 'Lund' }, either: 'x' },
      { place: { city: 'Lund' }, either: 2 ** 31 },
      { place: { city: 'Lund' }, either: true },
      { place: { city: 'Lund' }, blob: 'abc' },
    ];
    const answers = cases.map((payload) => expectSameAsBuildRecord(version, meta, payload));
    expect(answers.filter(Boolean).length).toBeGreaterThan(8);
    expect(answers.filter((a) => !a).length).toBeGreaterThan(8);
  });

  test('a field named like an Object.prototype property is left to buildRecord (no compiled writer)', () => {
    const dir = writeSchemaDir({
      'odd/v1.avsc': eventSchema('Odd', [{ name: 'valueOf', type: 'string' }]),
    });
    const version = SchemaRegistry.load(dir).get('odd').latest;
    expect(compiledWriterOf(version)).toBeUndefined();
  });

  test('an enum value named like an Object.prototype property is rejected, not written as symbol 0', () => {
    const version = registry.get('page_viewed').latest;
    for (const symbol of ['constructor', 'toString', '__proto__']) {
      expect(buildRecord(version, meta, { page: 'home', duration_ms: 5, platform: symbol })).toEqual({
        ok: false,
        path: 'payload.platform',
        reason: `expected one of ANDROID|IOS|DESKTOP|WEB|TV|CAR|OTHER, got "${symbol}"`,
      });
    }
  });
});

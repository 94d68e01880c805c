import avro from 'avsc';
import { SchemaRegistry, decodeBundle, encodeRecords, type EventRecord, type SchemaVersion } from '@hourglass/schemas';

/**
 * Every older version of every type must decode into the newest shape. The pairs come
 * from the registry, so a new version is covered the moment its file exists.
 */
const registry = SchemaRegistry.load('schemas');

const pairs: [string, SchemaVersion, SchemaVersion][] = registry.eventTypes().flatMap((eventType) => {
  const { versions, latest } = registry.get(eventType);
  return versions
    .filter((v) => v.version !== latest.version)
    .map((old): [string, SchemaVersion, SchemaVersion] => [
      `${eventType} v${old.version} -> v${latest.version}`,
      old,
      latest,
    ]);
});

test('the shipped schemas have at least one older version to resolve', () => {
  expect(pairs.length).toBeGreaterThan(0);
});

/** What the newest reader must produce from `old`: same-named (or aliased) fields carried over, others defaulted. */
function expectedNewest(old: EventRecord, writer: avro.types.RecordType, reader: avro.types.RecordType): object {
  const writerFields = new Set(writer.fields.map((f) => f.name));
  const out: Record<string, unknown> = {};
  for (const field of reader.fields) {
    const source = [field.name, ...field.aliases].find((n) => writerFields.has(n));
    if (source !== undefined) out[field.name] = carried(old[source], field.type);
    else {
      const def: unknown = field.defaultValue();
      expect(def).not.toBeUndefined(); // the registry would have refused the pair otherwise
      out[field.name] = def;
    }
  }
  return out;
}

/** Avro's rule for an enum symbol the reader dropped: the reader's enum default. */
function carried(value: unknown, readerType: avro.Type): unknown {
  if (readerType instanceof avro.types.EnumType && !readerType.symbols.includes(value as string)) {
    return (readerType.schema({ exportAttrs: true }) as { default?: string }).default;
  }
  return value;
}

describe.each(pairs)('%s', (_name, old, latest) => {
  const writer = old.type as avro.types.RecordType;
  const reader = latest.type as avro.types.RecordType;

  test('the registry holds a resolver for the older writer', () => {
    expect(registry.get(old.eventType).resolverFor(old)).toBeDefined();
    expect(registry.byFingerprint(old.fingerprint)?.fingerprint).toBe(old.fingerprint);
  });

  test.each(['null', 'deflate'] as const)('random old records decode into the newest shape (%s)', (codec) => {
    const records = Array.from({ length: 200 }, () => old.type.random() as unknown as EventRecord);
    const bundle = encodeRecords(old, records, codec);
    const decoded = decodeBundle(registry, bundle.data, bundle.attributes);
    expect(decoded.writer).toBe(old);
    expect(decoded.records).toHaveLength(records.length);
    decoded.records.forEach((record, i) => {
      expect(record).toEqual(expectedNewest(records[i]!, writer, reader));
      expect(reader.isValid(record)).toBe(true);
      expect(Object.keys(record)).toEqual(reader.fields.map((f) => f.name));
    });
  });
});

test('track_played v1 records gain v2 defaults (offline=false, context_uri=null)', () => {
  const { versions } = registry.get('track_played');
  const v1 = versions.find((v) => v.version === 1)!;
  const record = {
    meta: { event_id: 'e-1', gateway_ts: 1_700_000_000_000, client_ts: null, gateway_id: 'gw' },
    user_id: 'u',
    track_id: 't',
    ms_played: 1,
    reason_start: 'AUTOPLAY',
    reason_end: 'END_PLAY',
    shuffle: true,
    platform: 'TV',
    country: 'NO',
  };
  const bundle = encodeRecords(v1, [record]);
  const [decoded] = decodeBundle(registry, bundle.data, bundle.attributes).records;
  expect(decoded).toEqual({ ...record, offline: false, context_uri: null });
});

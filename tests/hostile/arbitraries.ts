import avro from 'avsc';
import fc from 'fast-check';

/**
 * fast-check arbitraries derived from an Avro schema: valid values of every field kind our
 * schemas use (strings of any Unicode, longs over the whole accepted range, enums, unions), and
 * hostile mutations of a valid payload (one field replaced by an arbitrary JSON-ish value).
 */
export const SEED = 1402;

/** Any UTF-16 code units: lone surrogates included. */
const codeUnits = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  maxLength: 12,
});
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 24 }), fc.string({ maxLength: 24 }));

/** `longLimit`: the largest long magnitude (2^52, what the gateway accepts; the consumer's fast path takes one less). */
export function validValue(type: avro.Type, longLimit = 2 ** 52): fc.Arbitrary<unknown> {
  const t = type as avro.Type & { underlyingType?: avro.Type };
  if (t.underlyingType) return validValue(t.underlyingType, longLimit);
  if (type instanceof avro.types.StringType) return anyText;
  if (type instanceof avro.types.LongType) {
    return fc.oneof(
      fc.integer(),
      fc.integer({ min: -longLimit, max: longLimit }),
      fc.constantFrom(longLimit, -longLimit, 0),
    );
  }
  if (type instanceof avro.types.IntType) return fc.integer();
  if (type instanceof avro.types.BooleanType) return fc.boolean();
  if (type instanceof avro.types.NullType) return fc.constant(null);
  if (type instanceof avro.types.EnumType) return fc.constantFrom(...type.symbols);
  if (type instanceof avro.types.UnwrappedUnionType)
    return fc.oneof(...type.types.map((branch) => validValue(branch, longLimit)));
  if (type instanceof avro.types.RecordType) {
    const fields: Record<string, fc.Arbitrary<unknown>> = {};
    for (const f of type.fields) fields[f.name] = validValue(f.type, longLimit);
    return fc.record(fields);
  }
  return otherValue(type, longLimit);
}

/** The Avro types our event schemas do not use yet but future ones may (the skipper handles them all). */
function otherValue(type: avro.Type, longLimit: number): fc.Arbitrary<unknown> {
  if (type instanceof avro.types.FloatType) return fc.float(); // NaN, ±0 and ±Infinity included
  if (type instanceof avro.types.DoubleType) return fc.double();
  if (type instanceof avro.types.BytesType) return fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
  if (type instanceof avro.types.FixedType) {
    const size = type.size;
    return fc.uint8Array({ minLength: size, maxLength: size }).map((a) => Buffer.from(a));
  }
  if (type instanceof avro.types.ArrayType) return fc.array(validValue(type.itemsType, longLimit), { maxLength: 6 });
  if (type instanceof avro.types.MapType)
    return fc.dictionary(anyText, validValue(type.valuesType as avro.Type, longLimit), { maxKeys: 6 });
  throw new TypeError(`no arbitrary for ${type.typeName}`);
}

/** A payload (the record without meta) of the newest schema. */
export function validPayload(type: avro.types.RecordType): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of type.fields.slice(1)) fields[f.name] = validValue(f.type);
  return fc.record(fields);
}

/** Values a hostile client may put anywhere. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  codeUnits,
  anyText,
  fc.constantFrom('constructor', '__proto__', 'toString', '\ud800', '\udfff', '', 'IOS', 'ios'),
  fc.integer(),
  fc.double(),
  fc.constantFrom(2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 52 + 1, -(2 ** 52) - 1, 2 ** 31, -(2 ** 31) - 1, 1e300, -0),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: 1, max: 4000 }).map((depth) => ({ deep: depth })),
);

/** Raw JSON text of a hostile value ({deep: n} becomes n nested arrays; others JSON.stringify, surrogates kept). */
export function jsonTextOf(value: unknown): string {
  if (value !== null && typeof value === 'object' && 'deep' in value && Object.keys(value).length === 1) {
    const n = (value as { deep: number }).deep;
    return '['.repeat(n) + ']'.repeat(n);
  }
  return JSON.stringify(value) ?? 'null';
}

/** A valid payload with one field (or an extra key) replaced by a hostile value. */
export function mutatedPayload(
  type: avro.types.RecordType,
): fc.Arbitrary<{ base: Record<string, unknown>; field: string; value: unknown }> {
  const names = type.fields.slice(1).map((f) => f.name);
  return fc.record({
    base: validPayload(type),
    field: fc.oneof(fc.constantFrom(...names), fc.constantFrom('extra', 'meta', '__proto__', 'constructor')),
    value: hostileValue,
  });
}

/** The JSON text of a payload with `field` set to `value` as raw text. */
export function payloadText(base: Record<string, unknown>, field: string, value: unknown): string {
  const rest = Object.entries(base)
    .filter(([k]) => k !== field)
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  return `{${[...rest, `${JSON.stringify(field)}:${jsonTextOf(value)}`].join(',')}}`;
}

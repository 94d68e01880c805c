import avro from 'avsc';

/**
 * The value rules both ingestion routes share, beyond what avsc's own check enforces, and
 * the bounded wording of a rejection. A rejection reason never serialises the whole value:
 * a value thousands of levels deep or megabytes long is named by its kind and size.
 */

/**
 * Largest magnitude of a `long` Hourglass accepts: avsc reads and writes longs with float
 * arithmetic, exact for every value in ±2^52 and not beyond (−2^52−1 is written as +2^52).
 */
export const MAX_EXACT_LONG = 2 ** 52;

export function isExactLong(value: number): boolean {
  return Number.isInteger(value) && value >= -MAX_EXACT_LONG && value <= MAX_EXACT_LONG;
}

interface WellFormed {
  isWellFormed(): boolean;
}

/** Why `text` cannot be stored as UTF-8 unchanged (a lone surrogate), or undefined. */
export function textProblem(text: string): string | undefined {
  if ((text as unknown as WellFormed).isWellFormed()) return undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++;
      continue;
    }
    const hex = c.toString(16);
    return `is not valid Unicode text: a lone surrogate \\u${hex} at character ${i} has no UTF-8 form`;
  }
  return 'is not valid Unicode text';
}

export function describe(value: unknown, type: avro.Type): string {
  const expected = typeLabel(type);
  if (value === undefined) return `is required: expected ${expected}`;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      return `expected ${expected}, got a number beyond the range of a double (such as 1e400, which JSON parsing turns into ${String(value)})`;
    }
    if (Number.isInteger(value) && takesLong(type) && !isExactLong(value)) {
      return `expected ${expected} within ±2^52 (±${MAX_EXACT_LONG}), the range an Avro long keeps exactly here; got ${String(value)}`;
    }
  }
  if (typeof value === 'string') {
    const problem = textProblem(value);
    if (problem) return problem;
  }
  return `expected ${expected}, got ${show(value)}`;
}

function takesLong(type: avro.Type): boolean {
  if (type instanceof avro.types.LongType) return true;
  return type instanceof avro.types.UnwrappedUnionType && type.types.some((t) => t instanceof avro.types.LongType);
}

export function typeLabel(type: avro.Type): string {
  if (type instanceof avro.types.EnumType) return `one of ${type.symbols.join('|')}`;
  if (type instanceof avro.types.UnwrappedUnionType || type instanceof avro.types.WrappedUnionType) {
    return type.types.map(typeLabel).join(' or ');
  }
  if (type instanceof avro.types.IntType) return 'an int (32-bit integer)';
  if (type instanceof avro.types.LongType) return 'a long (integer)';
  if (type instanceof avro.types.FloatType || type instanceof avro.types.DoubleType)
    return `a ${type.typeName} (number)`;
  if (type instanceof avro.types.StringType) return 'a string';
  if (type instanceof avro.types.BooleanType) return 'a boolean';
  if (type instanceof avro.types.NullType) return 'null';
  if (type instanceof avro.types.RecordType) return `an object (${type.name ?? 'record'})`;
  if (type instanceof avro.types.ArrayType) return `an array of ${typeLabel(type.itemsType)}`;
  if (type instanceof avro.types.MapType) return `an object of ${typeLabel(type.valuesType)}`;
  return type.typeName;
}

export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === undefined) return 'nothing';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A short rendering of a value: never walks into it, so its depth and size do not matter. */
export function show(value: unknown): string {
  if (typeof value === 'string') {
    const text = JSON.stringify(value.length > 57 ? value.slice(0, 57) : value);
    return value.length > 57 ? `${text.slice(0, -1)}..."` : text;
  }
  if (Array.isArray(value))
    return value.length === 0 ? '[]' : `an array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).length;
    return keys === 0 ? '{}' : `an object with ${keys} keys`;
  }
  return String(value);
}

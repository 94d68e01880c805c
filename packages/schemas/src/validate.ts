import avro from 'avsc';
import type { EventMeta, EventRecord } from './meta.js';
import type { SchemaVersion } from './registry.js';

export type ValidationResult = { ok: true; record: EventRecord } | { ok: false; path: string; reason: string };

const checkOptions = { noUndeclaredFields: true };

/**
 * Builds `{meta, ...payload}` for `version`, fills top-level defaults the client left out,
 * and validates it. On failure names the first bad field as `payload.<path>` and why.
 */
export function buildRecord(version: SchemaVersion, meta: EventMeta, payload: unknown): ValidationResult {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    return { ok: false, path: 'payload', reason: `must be a JSON object, got ${kindOf(payload)}` };
  }
  if (Object.hasOwn(payload, 'meta')) {
    return { ok: false, path: 'payload.meta', reason: 'is reserved: the gateway fills meta' };
  }
  const record: EventRecord = { meta, ...(payload as Record<string, unknown>) };
  const type = version.type as avro.types.RecordType;
  for (const field of type.fields) {
    if (record[field.name] === undefined) {
      const def: unknown = field.defaultValue();
      if (def !== undefined) record[field.name] = def;
    }
  }
  const problem = checkRecord(type, record);
  return problem ? { ok: false, ...problem } : { ok: true, record };
}

/** Validates a whole record (meta included) and names the first bad field. */
export function checkRecord(type: avro.Type, record: unknown): { path: string; reason: string } | undefined {
  // The gateway's hot path: avsc's check plus a key count for what it lets through.
  if (type.isValid(record, checkOptions) && !hasExtraKeys(type, record)) return undefined;
  // Unknown fields first: a misspelt field also makes the real one "missing", and the
  // misspelling is what the client needs to see.
  const unknown = firstUndeclaredField(type, record, []);
  if (unknown) return { path: displayPath(unknown.path), reason: `is not a field of ${unknown.recordName}` };
  return firstProblem(type, record);
}

/**
 * For a value avsc accepted: is there an own key avsc mistook for a declared field (see
 * firstUndeclaredField)? Only descends into fields that can hold records, to stay cheap.
 */
function hasExtraKeys(type: avro.Type, value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (type instanceof avro.types.RecordType) {
    const declared = declaredOf(type);
    for (const key of Object.keys(value)) if (!declared.has(key)) return true;
    for (const field of nestedFieldsOf(type)) {
      if (hasExtraKeys(field.type, (value as Record<string, unknown>)[field.name])) return true;
    }
    return false;
  }
  if (type instanceof avro.types.ArrayType) {
    return mayHoldRecords(type.itemsType) && (value as unknown[]).some((item) => hasExtraKeys(type.itemsType, item));
  }
  if (type instanceof avro.types.MapType) {
    const values = type.valuesType as avro.Type;
    return mayHoldRecords(values) && Object.values(value).some((item) => hasExtraKeys(values, item));
  }
  const branch = objectBranchOf(type);
  return branch !== undefined && hasExtraKeys(branch, value);
}

const nestedFields = new WeakMap<avro.types.RecordType, avro.types.Field[]>();

function nestedFieldsOf(type: avro.types.RecordType): avro.types.Field[] {
  let fields = nestedFields.get(type);
  if (!fields) {
    fields = type.fields.filter((f) => mayHoldRecords(f.type));
    nestedFields.set(type, fields);
  }
  return fields;
}

function mayHoldRecords(type: avro.Type): boolean {
  if (type instanceof avro.types.RecordType) return true;
  if (type instanceof avro.types.ArrayType) return mayHoldRecords(type.itemsType);
  if (type instanceof avro.types.MapType) return mayHoldRecords(type.valuesType as avro.Type);
  return objectBranchOf(type) !== undefined;
}

/** The branch of an optional (unwrapped) union that takes objects, if any. */
function objectBranchOf(type: avro.Type): avro.Type | undefined {
  if (!(type instanceof avro.types.UnwrappedUnionType)) return undefined;
  return type.types.find((t) => t instanceof avro.types.RecordType || t instanceof avro.types.MapType);
}

/**
 * avsc looks declared names up in a plain object, so keys like "constructor" or
 * "__proto__" pass its noUndeclaredFields check; this walk uses own keys and a Set.
 * It runs for every event at the gateway, so paths are built only on the way out of a failure.
 */
function firstUndeclaredField(
  type: avro.Type,
  value: unknown,
  path: string[],
): { path: string[]; recordName: string } | undefined {
  const found = undeclared(type, value);
  if (!found) return undefined;
  return { path: [...path, ...found.reversedPath.reverse()], recordName: found.recordName };
}

const declaredNames = new WeakMap<avro.types.RecordType, Set<string>>();

function declaredOf(type: avro.types.RecordType): Set<string> {
  let names = declaredNames.get(type);
  if (!names) {
    names = new Set(type.fields.map((f) => f.name));
    declaredNames.set(type, names);
  }
  return names;
}

function undeclared(type: avro.Type, value: unknown): { reversedPath: string[]; recordName: string } | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  let found: { reversedPath: string[]; recordName: string } | undefined;
  if (type instanceof avro.types.RecordType) {
    const declared = declaredOf(type);
    for (const key of Object.keys(value)) {
      if (!declared.has(key)) return { reversedPath: [key], recordName: type.name ?? 'the record' };
    }
    for (const field of type.fields) {
      if ((found = undeclared(field.type, (value as Record<string, unknown>)[field.name]))) {
        found.reversedPath.push(field.name);
        return found;
      }
    }
  } else if (type instanceof avro.types.ArrayType && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if ((found = undeclared(type.itemsType, value[i]))) {
        found.reversedPath.push(String(i));
        return found;
      }
    }
  } else if (type instanceof avro.types.MapType && !Array.isArray(value)) {
    for (const [key, item] of Object.entries(value)) {
      if ((found = undeclared(type.valuesType as avro.Type, item))) {
        found.reversedPath.push(key);
        return found;
      }
    }
  } else {
    const branch = objectBranchOf(type);
    return branch ? undeclared(branch, value) : undefined;
  }
  return undefined;
}

function firstProblem(type: avro.Type, value: unknown): { path: string; reason: string } {
  let found: { path: string; reason: string } | undefined;
  type.isValid(value, {
    noUndeclaredFields: true,
    errorHook(path: string[], any: unknown, t: avro.Type) {
      if (found) return;
      found = { path: displayPath(path), reason: describe(any, t) };
    },
  });
  return found ?? { path: 'payload', reason: 'does not match the schema' };
}

/** Paths inside meta stay `meta.*` (the gateway's fault); everything else is the client's `payload.*`. */
function displayPath(path: readonly string[]): string {
  return path[0] === 'meta' ? path.join('.') : ['payload', ...path].join('.');
}

function describe(value: unknown, type: avro.Type): string {
  const expected = typeLabel(type);
  if (value === undefined) return `is required: expected ${expected}`;
  if (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    type instanceof avro.types.LongType &&
    !Number.isSafeInteger(value)
  ) {
    return `expected ${expected} within ±(2^53-1), got ${String(value)} which JSON numbers cannot hold exactly`;
  }
  return `expected ${expected}, got ${show(value)}`;
}

function typeLabel(type: avro.Type): string {
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

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === undefined) return 'nothing';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

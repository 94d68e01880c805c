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
    return { ok: false, path: 'payload', reason: 'must be a JSON object' };
  }
  if ('meta' in payload) return { ok: false, path: 'payload.meta', reason: 'is reserved: the gateway fills meta' };
  const record: EventRecord = { meta, ...(payload as Record<string, unknown>) };
  const type = version.type as avro.types.RecordType;
  for (const field of type.fields) {
    if (record[field.name] === undefined) {
      const def: unknown = field.defaultValue();
      if (def !== undefined) record[field.name] = def;
    }
  }
  if (type.isValid(record, checkOptions)) return { ok: true, record };
  return { ok: false, ...firstProblem(type, record) };
}

/** Validates a whole record (meta included) and names the first bad field. */
export function checkRecord(type: avro.Type, record: unknown): { path: string; reason: string } | undefined {
  if (type.isValid(record, checkOptions)) return undefined;
  return firstProblem(type, record);
}

function firstProblem(type: avro.Type, value: unknown): { path: string; reason: string } {
  let found: { path: string; reason: string } | undefined;
  type.isValid(value, {
    noUndeclaredFields: true,
    errorHook(path: string[], any: unknown, t: avro.Type) {
      if (found) return;
      const where = path[0] === 'meta' ? path.join('.') : ['payload', ...path].join('.');
      found = { path: where, reason: describe(any, t) };
    },
  });
  if (found) return found;
  // isValid failed without a field error: an undeclared field at some level.
  return { path: 'payload', reason: `has a field not in the schema ${type.name ?? ''}`.trim() };
}

function describe(value: unknown, type: avro.Type): string {
  const expected = typeLabel(type);
  if (value === undefined) return `is required (${expected})`;
  if (type instanceof avro.types.RecordType && value !== null && typeof value === 'object') {
    const declared = new Set(type.fields.map((f) => f.name));
    const extra = Object.keys(value).filter((k) => !declared.has(k));
    if (extra.length > 0) return `has unknown field(s) ${extra.map((k) => `"${k}"`).join(', ')}`;
  }
  return `expected ${expected}, got ${JSON.stringify(value)?.slice(0, 60) ?? String(value)}`;
}

function typeLabel(type: avro.Type): string {
  if (type instanceof avro.types.EnumType) return `one of ${type.symbols.join('|')}`;
  if (type instanceof avro.types.UnwrappedUnionType || type instanceof avro.types.WrappedUnionType) {
    return type.types.map(typeLabel).join(' or ');
  }
  if (type instanceof avro.types.LongType || type instanceof avro.types.IntType) return `${type.typeName} (integer)`;
  return type.typeName;
}

import type avro from 'avsc';
import { firstUndeclaredField, hasExtraKeys, hiddenProblem, isValid } from './avsc-gaps.js';
import type { EventMeta, EventRecord } from './meta.js';
import type { SchemaVersion } from './registry.js';
import { describe, kindOf } from './value-rules.js';

export type ValidationResult = { ok: true; record: EventRecord } | { ok: false; path: string; reason: string };

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
  // avsc's check, plus hasExtraKeys for what it lets through.
  if (isValid(type, record) && !hasExtraKeys(type, record)) return undefined;
  // Unknown fields first: a misspelt field also makes the real one "missing", and the
  // misspelling is what the client needs to see.
  const unknown = firstUndeclaredField(type, record, []);
  if (unknown) return { path: displayPath(unknown.path), reason: `is not a field of ${unknown.recordName}` };
  return firstProblem(type, record);
}

function firstProblem(type: avro.Type, value: unknown): { path: string; reason: string } {
  let found: { path: string; reason: string } | undefined;
  try {
    type.isValid(value, {
      noUndeclaredFields: true,
      errorHook(path: string[], any: unknown, t: avro.Type) {
        if (found) return;
        found = { path: displayPath(path), reason: describe(any, t) };
      },
    });
  } catch (e) {
    if (!(e instanceof RangeError)) throw e; // see isValid; the walk below names the value
  }
  if (found) return found;
  const hidden = hiddenProblem(type, value);
  if (hidden) return { path: displayPath(hidden.reversedPath.reverse()), reason: hidden.reason };
  return { path: 'payload', reason: 'does not match the schema' };
}

/** Paths inside meta stay `meta.*` (the gateway's fault); everything else is the client's `payload.*`. */
export function displayPath(path: readonly string[]): string {
  return path[0] === 'meta' ? path.join('.') : ['payload', ...path].join('.');
}

import avro from 'avsc';
import { describe, isExactLong, textProblem } from './value-rules.js';

/**
 * What avsc's own check gets wrong or leaves out, and the walks that find it: values that
 * overflow its stack, own keys and enum values it looks up in plain objects, strings it
 * would write as U+FFFD, longs it would write inexactly. validate.ts and compiled-writer.ts
 * apply these on top of avsc's check; they are not part of the package's API.
 */

const checkOptions = { noUndeclaredFields: true };

/**
 * avsc's check, false where it overflows the stack: it turns an enum's or a union's value into
 * a property key, and an array thousands of levels deep converts to a string recursively.
 */
export function isValid(type: avro.Type, value: unknown): boolean {
  try {
    return type.isValid(value, checkOptions);
  } catch (e) {
    if (e instanceof RangeError) return false;
    throw e;
  }
}

/**
 * For a value avsc accepted: does it break a rule avsc does not check? An own key avsc
 * mistook for a declared field (see firstUndeclaredField), an enum value it mistook for a
 * symbol (avsc looks symbols up in a plain object too, so "constructor" passed and was written
 * as symbol 0), a string with a lone surrogate (written as U+FFFD), a long beyond ±2^52
 * (written inexactly), a float or double that is not finite. Follows the schema, so its depth
 * is the schema's, whatever the value's.
 */
export function hasExtraKeys(type: avro.Type, value: unknown): boolean {
  return hiddenProblem(type, value) !== undefined;
}

export interface Hidden {
  reversedPath: string[];
  reason: string;
}

export function hiddenProblem(type: avro.Type, value: unknown): Hidden | undefined {
  if (value === undefined) return undefined; // a field left to its default
  if (type instanceof avro.types.EnumType) {
    return symbolsOf(type).has(value as string) ? undefined : { reversedPath: [], reason: describe(value, type) };
  }
  if (typeof value === 'string') {
    if (type instanceof avro.types.UnwrappedUnionType) {
      const branch = type.types.find((t) => isValid(t, value));
      return branch ? hiddenProblem(branch, value) : undefined;
    }
    const problem = textProblem(value);
    return problem ? { reversedPath: [], reason: problem } : undefined;
  }
  if (typeof value === 'number') {
    const ok = Number.isFinite(value) && (!Number.isInteger(value) || isExactLong(value) || !takesLongOnly(type));
    return ok ? undefined : { reversedPath: [], reason: describe(value, type) };
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (!takesObjects(type)) return { reversedPath: [], reason: describe(value, type) }; // see isValid
  if (type instanceof avro.types.RecordType) {
    const declared = declaredOf(type);
    for (const key of Object.keys(value)) {
      if (!declared.has(key)) return { reversedPath: [key], reason: `is not a field of ${type.name ?? 'the record'}` };
    }
  } else if (type instanceof avro.types.MapType) {
    for (const key of Object.keys(value)) {
      const problem = textProblem(key);
      if (problem) return { reversedPath: [key], reason: `key ${problem}` };
    }
  }
  return firstInChildren(type, value, hiddenProblem);
}

/** Can a value of `type` be a JS object (a record, map or array, or a union with such a branch, or a wrapped union)? */
function takesObjects(type: avro.Type): boolean {
  return (
    type instanceof avro.types.RecordType ||
    type instanceof avro.types.MapType ||
    type instanceof avro.types.ArrayType ||
    type instanceof avro.types.WrappedUnionType ||
    type instanceof avro.types.BytesType ||
    type instanceof avro.types.FixedType ||
    objectBranchOf(type) !== undefined ||
    (type instanceof avro.types.UnwrappedUnionType && type.types.some(takesObjects))
  );
}

/** A number goes to a long: the type is a long, or a union whose only number branch is one. */
function takesLongOnly(type: avro.Type): boolean {
  if (type instanceof avro.types.LongType) return true;
  if (!(type instanceof avro.types.UnwrappedUnionType)) return false;
  const numeric = type.types.filter(
    (t) =>
      t instanceof avro.types.LongType ||
      t instanceof avro.types.IntType ||
      t instanceof avro.types.FloatType ||
      t instanceof avro.types.DoubleType,
  );
  return numeric.length === 1 && numeric[0] instanceof avro.types.LongType;
}

/** The branch of an optional (unwrapped) union that takes objects, if any. */
function objectBranchOf(type: avro.Type): avro.Type | undefined {
  if (!(type instanceof avro.types.UnwrappedUnionType)) return undefined;
  return type.types.find((t) => t instanceof avro.types.RecordType || t instanceof avro.types.MapType);
}

const enumSymbols = new WeakMap<avro.types.EnumType, Set<string>>();

function symbolsOf(type: avro.types.EnumType): Set<string> {
  let symbols = enumSymbols.get(type);
  if (!symbols) {
    symbols = new Set(type.symbols);
    enumSymbols.set(type, symbols);
  }
  return symbols;
}

/**
 * avsc looks declared names up in a plain object, so keys like "constructor" or
 * "__proto__" pass its noUndeclaredFields check; this walk uses own keys and a Set.
 * It runs for every event at the gateway, so paths are built only on the way out of a failure.
 */
export function firstUndeclaredField(
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
  if (type instanceof avro.types.RecordType) {
    const declared = declaredOf(type);
    for (const key of Object.keys(value)) {
      if (!declared.has(key)) return { reversedPath: [key], recordName: type.name ?? 'the record' };
    }
  }
  return firstInChildren(type, value, undeclared);
}

/**
 * Depth first into `value` along `type` (record fields, array items, map values, the object
 * branch of a union): the first child where `visit` finds something, its path segment pushed.
 */
function firstInChildren<R extends { reversedPath: string[] }>(
  type: avro.Type,
  value: object,
  visit: (type: avro.Type, value: unknown) => R | undefined,
): R | undefined {
  let found: R | undefined;
  if (type instanceof avro.types.RecordType) {
    for (const field of type.fields) {
      if ((found = visit(field.type, (value as Record<string, unknown>)[field.name]))) {
        found.reversedPath.push(field.name);
        return found;
      }
    }
  } else if (type instanceof avro.types.ArrayType && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if ((found = visit(type.itemsType, value[i]))) {
        found.reversedPath.push(String(i));
        return found;
      }
    }
  } else if (type instanceof avro.types.MapType && !Array.isArray(value)) {
    for (const [key, item] of Object.entries(value)) {
      if ((found = visit(type.valuesType as avro.Type, item))) {
        found.reversedPath.push(key);
        return found;
      }
    }
  } else {
    const branch = objectBranchOf(type);
    return branch ? visit(branch, value) : undefined;
  }
  return undefined;
}

import avro from 'avsc';
import { metaType, type EventMeta, type EventRecord } from './meta.js';
import type { SchemaVersion } from './registry.js';
import { MAX_EXACT_LONG, describe, isExactLong, kindOf, textProblem } from './value-rules.js';

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
  // avsc's check, plus hasExtraKeys for what it lets through.
  if (isValid(type, record) && !hasExtraKeys(type, record)) return undefined;
  // Unknown fields first: a misspelt field also makes the real one "missing", and the
  // misspelling is what the client needs to see.
  const unknown = firstUndeclaredField(type, record, []);
  if (unknown) return { path: displayPath(unknown.path), reason: `is not a field of ${unknown.recordName}` };
  return firstProblem(type, record);
}

/**
 * avsc's check, false where it overflows the stack: it turns an enum's or a union's value into
 * a property key, and an array thousands of levels deep converts to a string recursively.
 */
function isValid(type: avro.Type, value: unknown): boolean {
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
function hasExtraKeys(type: avro.Type, value: unknown): boolean {
  return hiddenProblem(type, value) !== undefined;
}

interface Hidden {
  reversedPath: string[];
  reason: string;
}

function hiddenProblem(type: avro.Type, value: unknown): Hidden | undefined {
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

/**
 * The gateway's hot path for one schema version, generated once: `accepts` validates a
 * JSON payload and the gateway's meta in one walk, without building the record, and
 * `encode` writes the datum of `{meta, ...payload}` (defaults filled) straight from them.
 * It is made for what JSON.parse returns (plain objects, own enumerable keys): true only
 * when buildRecord would accept; false means "ask buildRecord", which names the problem
 * (and decides anything unusual this declines, such as an object of another prototype).
 */
export interface CompiledWriter {
  accepts(meta: EventMeta, payload: unknown): boolean;
  /** Like avsc's Type.encode: the end offset, or a negative number when `buf` is too short. Only for accepted values. */
  encode(meta: EventMeta, payload: object, buf: Buffer, pos: number): number;
}

const compiledWriters = new WeakMap<SchemaVersion, CompiledWriter | null>();

/** The version's compiled writer, built on first use; undefined when its schema has a shape this does not compile. */
export function compiledWriterOf(version: SchemaVersion): CompiledWriter | undefined {
  let writer = compiledWriters.get(version);
  if (writer === undefined) {
    writer = compileWriter(version.type) ?? null;
    compiledWriters.set(version, writer);
  }
  return writer ?? undefined;
}

function compileWriter(type: avro.Type): CompiledWriter | undefined {
  if (!(type instanceof avro.types.RecordType)) return undefined;
  const [metaField, ...fields] = type.fields;
  if (!metaField || metaField.name !== 'meta' || !metaField.type.equals(metaType)) return undefined;
  const metaRecord = metaField.type as avro.types.RecordType;
  const payloadType = payloadTypeOf(type);
  if (!payloadType) return undefined;
  const compiler = new CheckCompiler();
  const checkMeta = compiler.record(metaRecord.fields);
  const checkPayload = compiler.record(fields);
  if (checkMeta === undefined || checkPayload === undefined) return undefined;
  const accepts = compiler.build(checkMeta, checkPayload);
  const writer: CompiledWriter = {
    accepts,
    encode(meta, payload, buf, pos) {
      const end = metaRecord.encode(meta, buf, pos);
      return end < 0 ? end : payloadType.encode(payload, buf, end);
    },
  };
  return encodesAlike(type, writer) ? writer : undefined;
}

/** The record without its meta field: its datum is what follows meta's in the full record's. */
function payloadTypeOf(type: avro.types.RecordType): avro.Type | undefined {
  const schema = type.schema({ exportAttrs: true }) as { fields: unknown[] };
  try {
    return avro.Type.forSchema(
      { type: 'record', name: 'hourglass.internal.Payload', fields: schema.fields.slice(1) } as avro.Schema,
      { registry: {} },
    );
  } catch {
    return undefined; // e.g. a payload field that refers to a type named inside meta
  }
}

/** Start-up self-check on random records: the two-part encoding must give the record's exact bytes. */
function encodesAlike(type: avro.types.RecordType, writer: CompiledWriter): boolean {
  const a = Buffer.alloc(64 * 1024);
  for (let i = 0; i < 20; i++) {
    const { meta, ...payload } = type.random() as unknown as EventRecord;
    const expected = type.toBuffer({ meta, ...payload });
    const end = writer.encode(meta, payload, a, 0);
    if (end !== expected.length || !a.subarray(0, end).equals(expected)) return false;
  }
  return true;
}

/**
 * Generates the check as one JavaScript function, with each field's test inlined. A record
 * accepts when every field is valid or left to its default and its own keys are exactly
 * the fields it set (the count avoids a lookup per key). Types without an inline test
 * (arrays, maps, bytes, wrapped unions, logical types) use avsc's check plus hasExtraKeys,
 * exactly what buildRecord applies to them.
 */
class CheckCompiler {
  private readonly names: string[] = [];
  private readonly values: unknown[] = [];
  private readonly functions: string[] = [];

  private constant(value: unknown): string {
    this.names.push(`c${this.names.length}`);
    this.values.push(value);
    return this.names[this.names.length - 1]!;
  }

  /** The name of a generated function checking a record with these fields, or undefined. */
  record(fields: readonly avro.types.Field[]): string | undefined {
    const name = `r${this.functions.length}`;
    this.functions.push(''); // reserve the name: nested records get the next ones
    let body = `function ${name}(v) {\n  if (v === null || typeof v !== 'object' || getPrototypeOf(v) !== objectPrototype) return false;\n  var n = 0, x;\n`;
    for (const field of fields) {
      // An inherited name (toString, constructor...) would be read from the prototype.
      if (field.name in Object.prototype) return undefined;
      const test = this.test(field.type, 'x');
      if (test === undefined) return undefined;
      const hasDefault = field.defaultValue() !== undefined;
      body += `  x = v[${JSON.stringify(field.name)}];\n`;
      body += hasDefault
        ? `  if (x !== undefined) { if (!(${test})) return false; n++; }\n`
        : `  if (x === undefined || !(${test})) return false;\n  n++;\n`;
    }
    body += '  for (var k in v) n--;\n  return n === 0;\n}\n';
    this.functions[Number(name.slice(1))] = body;
    return name;
  }

  /** A JavaScript expression that is true when `x` (not undefined) is a valid value of `type`. */
  private test(type: avro.Type, x: string): string | undefined {
    if (type instanceof avro.types.NullType) return `${x} === null`;
    if (type instanceof avro.types.BooleanType) return `typeof ${x} === 'boolean'`;
    // typeof first: `| 0` on an array thousands of levels deep converts it to a string recursively
    if (type instanceof avro.types.IntType) return `typeof ${x} === 'number' && ${x} === (${x} | 0)`;
    if (type instanceof avro.types.LongType) {
      return `typeof ${x} === 'number' && ${x} % 1 === 0 && ${x} >= ${-MAX_EXACT_LONG} && ${x} <= ${MAX_EXACT_LONG}`;
    }
    // x - x is 0 only for a finite number (JSON's 1e400 parses as Infinity)
    if (type instanceof avro.types.FloatType || type instanceof avro.types.DoubleType)
      return `typeof ${x} === 'number' && ${x} - ${x} === 0`;
    // a lone surrogate has no UTF-8 form: the encoder would write U+FFFD instead
    if (type instanceof avro.types.StringType) return `typeof ${x} === 'string' && ${x}.isWellFormed()`;
    if (type instanceof avro.types.EnumType) {
      return `typeof ${x} === 'string' && ${this.constant(new Set(type.symbols))}.has(${x})`;
    }
    if (type instanceof avro.types.RecordType) {
      const fn = this.record(type.fields);
      return fn === undefined ? undefined : `${fn}(${x})`;
    }
    if (type instanceof avro.types.UnwrappedUnionType && type.types.every(isPlain)) {
      // avsc picks the branch by the value's JS kind, one branch per kind, so "any branch accepts" is the same.
      const tests = type.types.map((t) => this.test(t, x));
      if (tests.some((t) => t === undefined)) return undefined;
      return tests.map((t) => `(${t})`).join(' || ');
    }
    const generic = (value: unknown): boolean => isValid(type, value) && !hasExtraKeys(type, value);
    return `${this.constant(generic)}(${x})`;
  }

  /** The accepts function of a compiled writer. */
  build(checkMeta: string, checkPayload: string): (meta: EventMeta, payload: unknown) => boolean {
    const source =
      `${this.functions.join('')}` +
      `return function accepts(m, p) {\n  return ${checkPayload}(p) && ${checkMeta}(m);\n};`;
    const factory = new Function('getPrototypeOf', 'objectPrototype', ...this.names, source) as (
      ...args: unknown[]
    ) => (meta: EventMeta, payload: unknown) => boolean;
    return factory(Object.getPrototypeOf, Object.prototype, ...this.values);
  }
}

/** Union branches with an inline test that are told apart by JS kind (records by prototype). */
function isPlain(type: avro.Type): boolean {
  return (
    type instanceof avro.types.NullType ||
    type instanceof avro.types.BooleanType ||
    type instanceof avro.types.IntType ||
    type instanceof avro.types.LongType ||
    type instanceof avro.types.FloatType ||
    type instanceof avro.types.DoubleType ||
    type instanceof avro.types.StringType ||
    type instanceof avro.types.EnumType ||
    type instanceof avro.types.RecordType
  );
}

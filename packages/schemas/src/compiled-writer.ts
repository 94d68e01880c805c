import avro from 'avsc';
import { hasExtraKeys, isValid } from './avsc-gaps.js';
import { metaType, type EventMeta, type EventRecord } from './meta.js';
import type { SchemaVersion } from './registry.js';
import { MAX_EXACT_LONG } from './value-rules.js';

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
  /** Records whose check is being generated. */
  private readonly compiling = new Set<avro.Type>();

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
      // a record that holds itself (valid Avro): no compiled check, avsc's path takes the schema
      if (this.compiling.has(type)) return undefined;
      this.compiling.add(type);
      try {
        const fn = this.record(type.fields);
        return fn === undefined ? undefined : `${fn}(${x})`;
      } finally {
        this.compiling.delete(type);
      }
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

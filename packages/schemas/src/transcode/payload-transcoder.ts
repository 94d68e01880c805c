import avro from 'avsc';
import type { SchemaVersion } from '../registry.js';
import { MAX_EXACT_LONG } from '../value-rules.js';
import type { AvroWriter } from './avro-writer.js';
import {
  CLOSE_OBJECT,
  COLON,
  COMMA,
  LOWER_F,
  LOWER_N,
  LOWER_T,
  MINUS,
  NINE,
  OPEN_OBJECT,
  QUOTE,
  ZERO,
} from './json-bytes.js';
import { FALSE, NULL, TRUE, type JsonReader } from './json-reader.js';
import { NameTable } from './name-table.js';

/**
 * Per-schema transcoders from a JSON payload to the Avro datum of the record without its meta
 * field, compiled once per schema version. A step reads one JSON value and writes its Avro
 * bytes; it returns false for anything but the plain case, and the caller then takes the
 * reference path (JSON.parse, buildRecord, avsc), which decides and names any problem.
 *
 * A step accepts exactly the values the reference accepts, with the bytes avsc writes:
 * the value tests are the compiled writer's (validate.ts), taken on the number JSON.parse
 * would return. Record fields are taken in any order; a field left out is written with its
 * default (or declined without one); an unknown or repeated name, and every type without a
 * plain JSON form (arrays, maps, bytes, fixed, logical types, wrapped unions), is declined.
 */
export type Step = (r: JsonReader, w: AvroWriter) => boolean;

const decline: Step = () => false;

const steps = new WeakMap<SchemaVersion, Step | null>();

/** The payload step of `version` (its fields after meta), or undefined when it cannot have one. */
export function payloadTranscoderOf(version: SchemaVersion): Step | undefined {
  let step = steps.get(version);
  if (step === undefined) {
    step = compilePayload(version.type) ?? null;
    steps.set(version, step);
  }
  return step ?? undefined;
}

function compilePayload(type: avro.Type): Step | undefined {
  if (!(type instanceof avro.types.RecordType)) return undefined;
  const [meta, ...fields] = type.fields;
  if (!meta || meta.name !== 'meta') return undefined;
  return nested(type, () => recordStep(fields));
}

/**
 * Records being compiled: a record that holds itself (a linked list, a tree: valid Avro) gets
 * the decline step where it recurs, so compiling ends; the reference takes such a value.
 */
const compiling = new Set<avro.Type>();

function nested(type: avro.Type, compile: () => Step): Step {
  if (compiling.has(type)) return decline;
  compiling.add(type);
  try {
    return compile();
  } finally {
    compiling.delete(type);
  }
}

interface FieldStep {
  name: Uint8Array;
  /** The name in quotes, as a key is written. */
  quoted: Uint8Array;
  step: Step;
  /** The default's Avro bytes, written when the field is left out; undefined: required. */
  fallback: Uint8Array | undefined;
}

function recordStep(fields: readonly avro.types.Field[]): Step {
  // An inherited name (toString, constructor...) reads from the prototype in the reference.
  if (fields.some((f) => f.name in Object.prototype)) return decline;
  const parts: FieldStep[] = fields.map((f) => {
    const value: unknown = f.defaultValue();
    return {
      name: Buffer.from(f.name, 'utf8'),
      quoted: Buffer.from(JSON.stringify(f.name), 'utf8'),
      step: stepOf(f.type),
      fallback: value === undefined ? undefined : f.type.toBuffer(value),
    };
  });
  const count = parts.length;
  /** Writes the defaults of fields [from, to); false when one of them has none. */
  const defaults = (w: AvroWriter, from: number, to: number): boolean => {
    for (let i = from; i < to; i++) {
      const fallback = parts[i]!.fallback;
      if (fallback === undefined) return false;
      w.raw(fallback);
    }
    return true;
  };
  const general: Step = (r, w) => {
    if (!r.expect(OPEN_OBJECT)) return false;
    let next = 0;
    if (r.peek() !== CLOSE_OBJECT) {
      for (;;) {
        let at = next;
        if (r.peek() !== QUOTE || at === count || !r.quoted(parts[at]!.quoted)) {
          // a field left out before this one (or an unknown or repeated name)
          if (!r.string()) return false;
          while (at < count && !r.textIs(parts[at]!.name)) at++;
          if (at === count || !defaults(w, next, at)) return false;
        }
        if (!r.expect(COLON) || !parts[at]!.step(r, w)) return false;
        next = at + 1;
        const c = r.peek();
        r.pos++;
        if (c === CLOSE_OBJECT) break;
        if (c !== COMMA) return false;
      }
    } else {
      r.pos++;
    }
    return defaults(w, next, count);
  };
  const inOrder = inOrderStep(parts);
  const anyOrder = anyOrderStep(parts);
  // every field present, in order: one straight run; fields left out: general; else any order
  return (r, w) => {
    const from = r.pos;
    const at = w.pos;
    if (inOrder(r, w)) return true;
    r.pos = from;
    w.pos = at;
    if (general(r, w)) return true;
    r.pos = from;
    w.pos = at;
    return anyOrder(r, w);
  };
}

/**
 * A record whose fields come in another order than the schema's (keys sorted by name, as
 * many encoders write them): each field is written as it comes, then the fields' bytes are
 * put in schema order, defaults in the gaps. An unknown or repeated name is declined.
 */
function anyOrderStep(parts: readonly FieldStep[]): Step {
  const count = parts.length;
  return (r, w) => {
    if (!r.expect(OPEN_OBJECT)) return false;
    const base = w.pos;
    const starts = new Array<number>(count).fill(-1);
    const ends = new Array<number>(count).fill(-1);
    if (r.peek() === CLOSE_OBJECT) {
      r.pos++;
    } else {
      for (;;) {
        if (!r.string()) return false;
        let at = 0;
        while (at < count && !r.textIs(parts[at]!.name)) at++;
        if (at === count || starts[at] !== -1) return false;
        starts[at] = w.pos;
        if (!r.expect(COLON) || !parts[at]!.step(r, w)) return false;
        ends[at] = w.pos;
        const c = r.peek();
        r.pos++;
        if (c === CLOSE_OBJECT) break;
        if (c !== COMMA) return false;
      }
    }
    const written = Buffer.from(w.buf.subarray(base, w.pos));
    w.pos = base;
    for (let i = 0; i < count; i++) {
      const bytes = starts[i] === -1 ? parts[i]!.fallback : written.subarray(starts[i]! - base, ends[i]! - base);
      if (bytes === undefined) return false;
      w.raw(bytes);
    }
    return true;
  };
}

/**
 * A record whose fields all come in schema order, as one generated function: each field's
 * key compared in place and its step called from a call site of its own, which V8 can inline
 * (one shared loop calling every field's step was the transcoder's largest cost). Compact
 * JSON only: each key is compared with the byte before it and the colon after it (`{"name":`,
 * then `,"name":`) in one pass; whitespace between them leaves the record to the general step.
 */
function inOrderStep(parts: readonly FieldStep[]): Step {
  const keys = parts.map((p, i) =>
    Buffer.concat([Buffer.from([i === 0 ? OPEN_OBJECT : COMMA]), p.quoted, Buffer.from([COLON])]),
  );
  const names = parts.map((_, i) => `s${i}`);
  const values = parts.map((p) => p.step);
  // each key's bytes compared as constants in the code: a loop over the key's bytes in an array
  // was 7-10% of the route stage (docs/performance.md, "Constants in the transcoder")
  let body = 'return function inOrder(r, w) {\n  r.peek();\n  const b = r.buf;\n  let p = 0;\n';
  keys.forEach((key, i) => {
    const same = [...key].map((byte, j) => `b[p + ${j}] === ${byte}`).join(' && ');
    body += `  p = r.pos;\n  if (!(${same})) return false;\n  r.pos = p + ${key.length};\n`;
    body += `  if (!s${i}(r, w)) return false;\n`;
  });
  body += `  return r.expect(${CLOSE_OBJECT});\n};`;
  const factory = new Function(...names, body) as (...args: unknown[]) => Step;
  return factory(...values);
}

function stepOf(type: avro.Type): Step {
  if ((type as { underlyingType?: avro.Type }).underlyingType) return decline;
  if (type instanceof avro.types.NullType) return (r) => r.literal(NULL);
  if (type instanceof avro.types.BooleanType) return booleanStep;
  if (type instanceof avro.types.IntType) return intStep;
  if (type instanceof avro.types.LongType) return longStep;
  if (type instanceof avro.types.FloatType) return floatStep;
  if (type instanceof avro.types.DoubleType) return doubleStep;
  if (type instanceof avro.types.StringType) return stringStep;
  if (type instanceof avro.types.EnumType) return enumStep(type.symbols);
  if (type instanceof avro.types.RecordType) return nested(type, () => recordStep(type.fields));
  if (type instanceof avro.types.UnwrappedUnionType) return unionStep(type.types);
  return decline;
}

const booleanStep: Step = (r, w) => {
  if (r.literal(TRUE)) w.byte(1);
  else if (r.literal(FALSE)) w.byte(0);
  else return false;
  return true;
};

const intStep: Step = (r, w) => {
  if (!r.readNumber()) return false;
  const x = r.number;
  if (x !== (x | 0)) return false;
  w.long(x);
  return true;
};

const longStep: Step = (r, w) => {
  if (!r.readNumber()) return false;
  const x = r.number;
  if (x % 1 !== 0 || x < -MAX_EXACT_LONG || x > MAX_EXACT_LONG) return false;
  w.long(x);
  return true;
};

// x - x is 0 only for a finite number (JSON's 1e400 parses as Infinity)
const floatStep: Step = (r, w) => {
  if (!r.readNumber() || r.number - r.number !== 0) return false;
  w.float(r.number);
  return true;
};

const doubleStep: Step = (r, w) => {
  if (!r.readNumber() || r.number - r.number !== 0) return false;
  w.double(r.number);
  return true;
};

const stringStep: Step = (r, w) => {
  if (r.string()) w.sized(r.buf, r.textStart, r.textEnd);
  else if (r.escapedString()) w.sized(r.text, 0, r.textLength);
  else return false;
  return true;
};

function enumStep(symbols: readonly string[]): Step {
  const indexes = new NameTable(symbols.map((s, i) => [Buffer.from(s, 'utf8'), i] as const));
  return (r, w) => {
    if (!r.string()) return false;
    const i = indexes.get(r.buf, r.textStart, r.textEnd);
    if (i === undefined) return false;
    w.long(i);
    return true;
  };
}

/**
 * JSON kinds a union branch is chosen by (avsc's unwrapped unions hold one branch per kind), in
 * the order of native/json-avro.c's KIND_ values (wasm-program.ts lays out a union by them).
 */
export const enum Kind {
  Null,
  Boolean,
  Number,
  Text,
  Object,
  Other,
}

export function kindOfType(type: avro.Type): Kind {
  if (type instanceof avro.types.NullType) return Kind.Null;
  if (type instanceof avro.types.BooleanType) return Kind.Boolean;
  if (
    type instanceof avro.types.IntType ||
    type instanceof avro.types.LongType ||
    type instanceof avro.types.FloatType ||
    type instanceof avro.types.DoubleType
  ) {
    return Kind.Number;
  }
  if (type instanceof avro.types.StringType || type instanceof avro.types.EnumType) return Kind.Text;
  if (type instanceof avro.types.RecordType) return Kind.Object;
  return Kind.Other;
}

function kindOfByte(c: number): Kind {
  if (c === LOWER_N) return Kind.Null;
  if (c === LOWER_T || c === LOWER_F) return Kind.Boolean;
  if (c === MINUS || (c >= ZERO && c <= NINE)) return Kind.Number;
  if (c === QUOTE) return Kind.Text;
  if (c === OPEN_OBJECT) return Kind.Object;
  return Kind.Other;
}

function unionStep(types: readonly avro.Type[]): Step {
  const byKind: (Step | undefined)[] = [];
  const indexByKind: number[] = [];
  for (let i = 0; i < types.length; i++) {
    const kind = kindOfType(types[i]!);
    // another kind of branch (an array, a map...), or two of one kind: the reference decides
    if (kind === Kind.Other || byKind[kind] !== undefined) return decline;
    byKind[kind] = stepOf(types[i]!);
    indexByKind[kind] = i;
  }
  return (r, w) => {
    const kind = kindOfByte(r.peek());
    const step = byKind[kind];
    if (step === undefined) return false;
    w.long(indexByKind[kind]!);
    return step(r, w);
  };
}

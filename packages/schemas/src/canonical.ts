import { isUtf8 } from 'node:buffer';
import avro from 'avsc';
import { MAX_EXACT_LONG } from './value-rules.js';
import { isCanonicalVarint, readVarint, varintValue } from './varint.js';

/**
 * Walks one Avro binary datum byte by byte along its schema and names the first rule it
 * breaks. The rules make a datum's bytes the ones avsc would write for the value it reads
 * from them, so copying a datum as bytes stores exactly what decoding it would: varints in
 * their shortest form, booleans 0 or 1, strings valid UTF-8, enum indexes in range, arrays
 * and maps in one block with unique map keys, longs within ±2^52 (see value-rules.ts); and,
 * as on the JSON route (JSON has no NaN or Infinity), only finite floats and doubles.
 */
export interface DatumCheck {
  /** Where the datum ends; −1 when its bytes cannot be split (truncated, a union index out of range). */
  end: number;
  /** The first rule broken: path segments from the record's fields down, and why. */
  problem?: { path: string[]; reason: string };
}

export interface DatumRules {
  /** Refuse NaN and ±Infinity (the gateway's rule; the consumer only refuses what would be altered). */
  finiteNumbers: boolean;
}

class Walk {
  pos: number;
  problem: { path: string[]; reason: string } | undefined;
  /** Set on the second pass only, after a problem was found: the segments leading to the value. */
  path: string[] | undefined;
  /** Value of the last varint read (zigzag-decoded, inexact beyond 2^53). */
  value = 0;

  constructor(
    readonly buf: Buffer,
    start: number,
    readonly rules: DatumRules,
    withPath: boolean,
  ) {
    this.pos = start;
    if (withPath) this.path = [];
  }

  flag(reason: string): void {
    if (!this.problem) this.problem = { path: this.path ? [...this.path] : [], reason };
  }

  /** Reads a zigzag varint of at most `maxBytes`; false when truncated or longer. */
  varint(maxBytes: number): boolean {
    const next = readVarint(this.buf, this.pos, maxBytes);
    if (next < 0) return false;
    if (!isCanonicalVarint(this.buf, this.pos, next)) {
      this.flag('is not in canonical Avro binary encoding: an overlong varint');
    }
    this.value = varintValue();
    this.pos = next;
    return true;
  }

  long(): boolean {
    if (!this.varint(10)) return false;
    if (Math.abs(this.value) > MAX_EXACT_LONG) {
      this.flag(`expected a long within ±2^52 (±${MAX_EXACT_LONG}), the range an Avro long keeps exactly here`);
    }
    return true;
  }

  int(): boolean {
    if (!this.varint(5)) return false;
    if (this.value !== (this.value | 0)) this.flag('expected an int (32-bit integer), the varint is larger');
    return true;
  }

  /** A length varint and that many bytes; returns the start of the bytes, or −1. */
  sized(): number {
    if (!this.varint(10) || this.value < 0 || this.pos + this.value > this.buf.length) return -1;
    const start = this.pos;
    this.pos += this.value;
    return start;
  }
}

type Check = (w: Walk) => boolean;

const checks = new WeakMap<avro.Type, Check>();

/** Checks the datum of `type` at `pos` of `buf`. */
export function checkDatum(type: avro.Type, buf: Buffer, pos: number, rules: DatumRules): DatumCheck {
  const check = checkOf(type);
  const fast = new Walk(buf, pos, rules, false);
  if (!check(fast)) return { end: -1 };
  if (!fast.problem) return { end: fast.pos };
  const slow = new Walk(buf, pos, rules, true);
  check(slow);
  return { end: fast.pos, problem: slow.problem ?? fast.problem };
}

function checkOf(type: avro.Type): Check {
  let check = checks.get(type);
  if (!check) {
    // a recursive schema meets itself again while compiling: look it up at run time
    checks.set(type, (w) => checkOf(type)(w));
    check = compile(type);
    checks.set(type, check);
  }
  return check;
}

/** Pushes a path segment around a nested check, on the pass that records paths. */
function within(w: Walk, segment: string, check: Check): boolean {
  if (!w.path) return check(w);
  w.path.push(segment);
  const ok = check(w);
  w.path.pop();
  return ok;
}

function compile(type: avro.Type): Check {
  const t = type as avro.Type & { underlyingType?: avro.Type };
  if (t.underlyingType) return checkOf(t.underlyingType); // logical types: their bytes
  if (type instanceof avro.types.NullType) return () => true;
  if (type instanceof avro.types.BooleanType) return checkBoolean;
  if (type instanceof avro.types.IntType) return (w) => w.int();
  if (type instanceof avro.types.LongType) return (w) => w.long();
  if (type instanceof avro.types.FloatType) return checkFloat(4);
  if (type instanceof avro.types.DoubleType) return checkFloat(8);
  if (type instanceof avro.types.StringType) return checkString;
  if (type instanceof avro.types.BytesType) return (w) => w.sized() >= 0;
  if (type instanceof avro.types.FixedType) {
    const size = type.size;
    return (w) => {
      w.pos += size;
      return w.pos <= w.buf.length;
    };
  }
  if (type instanceof avro.types.EnumType) return checkEnum(type.symbols.length);
  if (type instanceof avro.types.UnwrappedUnionType || type instanceof avro.types.WrappedUnionType) {
    return checkUnion(type.types);
  }
  if (type instanceof avro.types.ArrayType) return checkBlocks(checkOf(type.itemsType), false);
  if (type instanceof avro.types.MapType) return checkBlocks(checkOf(type.valuesType as avro.Type), true);
  if (type instanceof avro.types.RecordType) return checkRecord(type.fields);
  throw new TypeError(`no datum check for Avro type ${type.typeName}`);
}

const checkBoolean: Check = (w) => {
  const b = w.buf[w.pos++];
  if (b === undefined) return false;
  if (b > 1) w.flag(`expected a boolean (byte 0 or 1), got byte ${b}`);
  return true;
};

function checkFloat(size: 4 | 8): Check {
  return (w) => {
    if (w.pos + size > w.buf.length) return false;
    const value = size === 4 ? w.buf.readFloatLE(w.pos) : w.buf.readDoubleLE(w.pos);
    w.pos += size;
    if (Number.isNaN(value)) w.flag('is NaN, which has no JSON form and whose bits avsc does not keep');
    else if (w.rules.finiteNumbers && !Number.isFinite(value)) w.flag(`is ${value}, which has no JSON form`);
    return true;
  };
}

/** A string's bytes: returns where they start, or −1; flags invalid UTF-8. */
function readText(w: Walk): number {
  const start = w.sized();
  if (start < 0) return -1;
  for (let i = start; i < w.pos; i++) {
    if (w.buf[i]! < 0x80) continue; // ASCII needs no native call
    if (!isUtf8(w.buf.subarray(start, w.pos))) w.flag('is not valid UTF-8 text');
    break;
  }
  return start;
}

const checkString: Check = (w) => readText(w) >= 0;

function checkEnum(symbols: number): Check {
  return (w) => {
    if (!w.int()) return false;
    if (w.value < 0 || w.value >= symbols) w.flag(`enum index ${w.value} is out of range (${symbols} symbols)`);
    return true;
  };
}

function checkUnion(types: readonly avro.Type[]): Check {
  const branches = types.map((t) => checkOf(t));
  return (w) => {
    if (!w.varint(5)) return false;
    const branch = branches[w.value];
    return branch !== undefined && w.value >= 0 && branch(w);
  };
}

function checkRecord(fields: readonly avro.types.Field[]): Check {
  const parts = fields.map((f) => ({ name: f.name, check: checkOf(f.type) }));
  return (w) => {
    for (const part of parts) if (!within(w, part.name, part.check)) return false;
    return true;
  };
}

/** Arrays and maps: avsc writes one block of n items, then 0; map keys are strings, unique. */
function checkBlocks(item: Check, isMap: boolean): Check {
  return (w) => {
    let blocks = 0;
    let index = 0;
    const keys = isMap ? new Set<string>() : undefined;
    for (;;) {
      if (!w.varint(10)) return false;
      let n = w.value;
      if (n === 0) break;
      if (++blocks === 2) w.flag('is written in several blocks; the canonical form is one');
      if (n < 0) {
        w.flag('is written in a block with a byte size; the canonical form has none');
        n = -n;
        if (!w.varint(10)) return false;
      }
      for (let i = 0; i < n; i++, index++) {
        let segment = String(index);
        if (keys) {
          const start = readText(w);
          if (start < 0) return false;
          segment = w.buf.toString('utf8', start, w.pos);
          if (keys.has(segment)) w.flag(`key ${JSON.stringify(segment.slice(0, 64))} appears twice`);
          keys.add(segment);
        }
        if (!within(w, segment, item)) return false;
      }
    }
    return true;
  };
}

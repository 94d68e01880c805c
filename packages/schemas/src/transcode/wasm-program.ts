import avro from 'avsc';
import { fnv1a } from './name-table.js';
import { Kind, kindOfType } from './payload-transcoder.js';

/**
 * The program the WebAssembly body reader (native/json-avro.c) runs: the event types' names and,
 * for each type's payload, a tree of nodes it walks as it reads. Built from the same avsc types
 * as payload-transcoder.ts, with the same refusals (a node the reader always declines where the
 * TypeScript step declines), so that what the two take differs only where the WebAssembly reader
 * declines more. Pure data: wasm-reader.ts lays it out in the module's memory.
 */

/** Node opcodes: the order of json-avro.c's enum. */
export const enum Op {
  Null = 0,
  Boolean,
  Int,
  Long,
  Float,
  Double,
  String,
  Enum,
  Union,
  Record,
  Decline,
}

/** A u32 word with no node (a type without a payload program, a union without a branch of that kind). */
export const NONE = 0xffffffff;

/** JSON kinds a union branch is chosen by: payload-transcoder.ts's Kind, in json-avro.c's order (KIND_). */
const KINDS = Kind.Other;

/** A name table: 3 words per slot (name's string offset, its length, its value), a power of two of slots. */
export interface HashTable {
  words: number[];
  /** Indexes in `words` that hold an offset into the strings (relocated when laid out). */
  stringSlots: number[];
  mask: number;
}

/**
 * Words that point elsewhere are relocated when laid out: to a string (an offset in `strings`)
 * or to a table (an index in `tables`).
 */
export interface WasmProgram {
  /** The nodes, as u32 words; a node is named by the index of its first word. */
  words: number[];
  /** Indexes in `words` holding a string offset, and those holding a table index. */
  stringSlots: number[];
  tableSlots: number[];
  /** Every key and name, back to back. */
  strings: Buffer;
  /** Enum symbol tables, then the type table (the last). */
  tables: HashTable[];
  /** By type index: the payload record's node, or NONE. */
  payloads: number[];
}

/** The program for `types` (each an event type's name and its latest schema's avsc type); a type's index is its place here. */
export function buildWasmProgram(types: readonly { name: string; type: avro.Type }[]): WasmProgram {
  const builder = new Builder();
  const payloads = types.map(({ type }) => builder.payload(type));
  builder.tables.push(builder.table(types.map(({ name }, i) => [Buffer.from(name, 'utf8'), i])));
  return {
    words: builder.words,
    stringSlots: builder.stringSlots,
    tableSlots: builder.tableSlots,
    strings: Buffer.concat(builder.strings),
    tables: builder.tables,
    payloads,
  };
}

class Builder {
  readonly words: number[] = [];
  readonly stringSlots: number[] = [];
  readonly tableSlots: number[] = [];
  readonly strings: Buffer[] = [];
  readonly tables: HashTable[] = [];
  private stringBytes = 0;

  /** Records whose node is being built: where one recurs (valid Avro), a Decline node, as in payload-transcoder.ts. */
  private readonly building = new Set<avro.Type>();

  /** The payload node of an event schema: its fields after meta (payload-transcoder.ts's compilePayload). */
  payload(type: avro.Type): number {
    if (!(type instanceof avro.types.RecordType)) return NONE;
    const [meta, ...fields] = type.fields;
    if (!meta || meta.name !== 'meta') return NONE;
    return this.nested(type, fields);
  }

  private nested(type: avro.Type, fields: readonly avro.types.Field[]): number {
    if (this.building.has(type)) return this.emit(Op.Decline);
    this.building.add(type);
    try {
      return this.record(fields);
    } finally {
      this.building.delete(type);
    }
  }

  private string(bytes: Uint8Array): number {
    const at = this.stringBytes;
    this.strings.push(Buffer.from(bytes));
    this.stringBytes += bytes.length;
    return at;
  }

  private emit(...words: number[]): number {
    const at = this.words.length;
    this.words.push(...words);
    return at;
  }

  private node(type: avro.Type): number {
    if ((type as { underlyingType?: avro.Type }).underlyingType) return this.emit(Op.Decline);
    if (type instanceof avro.types.NullType) return this.emit(Op.Null);
    if (type instanceof avro.types.BooleanType) return this.emit(Op.Boolean);
    if (type instanceof avro.types.IntType) return this.emit(Op.Int);
    if (type instanceof avro.types.LongType) return this.emit(Op.Long);
    if (type instanceof avro.types.FloatType) return this.emit(Op.Float);
    if (type instanceof avro.types.DoubleType) return this.emit(Op.Double);
    if (type instanceof avro.types.StringType) return this.emit(Op.String);
    if (type instanceof avro.types.EnumType) {
      const table = this.table(type.symbols.map((s, i) => [Buffer.from(s, 'utf8'), i]));
      this.tables.push(table);
      const at = this.emit(Op.Enum, table.mask, this.tables.length - 1);
      this.tableSlots.push(at + 2);
      return at;
    }
    if (type instanceof avro.types.RecordType) return this.nested(type, type.fields);
    if (type instanceof avro.types.UnwrappedUnionType) return this.union(type.types);
    return this.emit(Op.Decline);
  }

  /** In schema order; each key stored with the byte before it and its colon (`{"a":`, `,"b":`), as compact JSON writes it. */
  private record(fields: readonly avro.types.Field[]): number {
    // an inherited name reads from the prototype in the reference; an empty record is not "in order"
    if (fields.length === 0 || fields.some((f) => f.name in Object.prototype)) return this.emit(Op.Decline);
    const at = this.emit(Op.Record, fields.length, ...new Array<number>(3 * fields.length).fill(0));
    fields.forEach((f, i) => {
      const key = Buffer.from(`${i === 0 ? '{' : ','}${JSON.stringify(f.name)}:`, 'utf8');
      const slot = at + 2 + 3 * i;
      this.words[slot] = this.string(key);
      this.stringSlots.push(slot);
      this.words[slot + 1] = key.length;
      this.words[slot + 2] = this.node(f.type);
    });
    return at;
  }

  /** A branch per JSON kind (payload-transcoder.ts's unionStep): two of one kind, or another kind, declines. */
  private union(types: readonly avro.Type[]): number {
    const byKind: (number | undefined)[] = new Array<number | undefined>(KINDS).fill(undefined);
    for (let i = 0; i < types.length; i++) {
      const kind = kindOfType(types[i]!);
      if (kind === Kind.Other || byKind[kind] !== undefined) return this.emit(Op.Decline);
      byKind[kind] = i;
    }
    const at = this.emit(Op.Union, ...new Array<number>(2 * KINDS).fill(NONE));
    byKind.forEach((branch, kind) => {
      if (branch === undefined) return;
      this.words[at + 1 + 2 * kind] = branch;
      this.words[at + 2 + 2 * kind] = this.node(types[branch]!);
    });
    return at;
  }

  /** Open addressing by FNV-1a, as json-avro.c's lookup() probes it; a slot of length 0 is empty. */
  table(entries: readonly (readonly [Uint8Array, number])[]): HashTable {
    let size = 1;
    while (size < 2 * entries.length) size *= 2;
    const words = new Array<number>(3 * size).fill(0);
    const stringSlots: number[] = [];
    for (const [name, value] of entries) {
      let i = fnv1a(name, 0, name.length) & (size - 1);
      while (words[3 * i + 1] !== 0) i = (i + 1) & (size - 1);
      words[3 * i] = this.string(name);
      words[3 * i + 1] = name.length;
      words[3 * i + 2] = value;
      stringSlots.push(3 * i);
    }
    return { words, stringSlots, mask: size - 1 };
  }
}

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WasmProgram } from './wasm-program.js';

/**
 * The WebAssembly body reader (native/json-avro.c) with its program laid out in its memory:
 * one instance per schema registry. `load` copies a body in; `read` takes events from an offset
 * until one it declines, the end of the events, or a broken frame. Its columns and output are
 * views of the module's memory, valid until the next `load` or `read`.
 */

/** Why read() stopped (json-avro.c's STOP_ values). */
export const enum ReadStop {
  /** At an event it does not take: `stopAt` is where that event starts. */
  Declined = 0,
  /** After the events' closing bracket: `stopAt` is just past it. */
  End = 1,
  /** At a byte after an event that is neither a comma nor the closing bracket. */
  Frame = 2,
}

/** i32 columns per event (json-avro.c's COLUMNS): type index, idAt, payload start, payload end, text start, text end. */
export const WASM_COLUMNS = 6;

/** An event's JSON text is at least this long when the reader takes it: `{"type":"x","payload":{"a":0}}`. */
const MIN_EVENT_BYTES = 20;
/**
 * Events taken per read() at most: at this count it stops as at an event it declines, the
 * TypeScript reader takes that one, and read() goes on from the next. It bounds the room and
 * columns kept in memory (the gateway's batch limit is 1,000 events by default).
 */
const MAX_EVENTS_PER_READ = 1024;
const PAGE = 65536;

/** The parts of the WebAssembly API used here (lib.dom declares it; this project compiles without it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  memory: WasmMemory;
  __heap_base: { value: number };
  setProgram(program: number, types: number, mask: number, payloads: number): void;
  events(
    body: number,
    length: number,
    from: number,
    output: number,
    capacity: number,
    room: number,
    columns: number,
    clientTs: number,
    maxEvents: number,
  ): number;
  stopPos(): number;
  stopReason(): number;
}

let compiled: object | undefined;

/** The compiled module, shared by every instance. The .wasm sits in native/, next to its source, two levels up from here (src/ or dist/). */
function wasmModule(): object {
  compiled ??= new Module(readFileSync(join(__dirname, '..', '..', 'native', 'json-avro.wasm')));
  return compiled;
}

export class WasmBodyReader {
  private readonly exports: Exports;
  /** Where the memory past the program starts: the body, then the output, the columns and the clocks. */
  private readonly free: number;
  private bytes = new Uint8Array(0);
  private bodyAt = 0;
  private bodyLength = 0;
  private outputAt = 0;
  private capacity = 0;
  private columnsAt = 0;
  private clockAt = 0;
  private maxEvents = 0;
  /** After read(): why it stopped and where (see ReadStop). */
  stop: ReadStop = ReadStop.Declined;
  stopAt = 0;
  /** After read(): the events' columns (WASM_COLUMNS per event), client_ts (−1: null) and payload datums. */
  columns: Int32Array = new Int32Array(0);
  clientTs: Float64Array = new Float64Array(0);
  output: Uint8Array = new Uint8Array(0);

  constructor(program: WasmProgram) {
    const instance = new Instance(wasmModule(), {});
    this.exports = instance.exports as unknown as Exports;
    let at = this.exports.__heap_base.value;
    const stringsAt = at;
    at = align(at + program.strings.length);
    const tablesAt = program.tables.map((t) => {
      const here = at;
      at += 4 * t.words.length;
      return here;
    });
    const programAt = at;
    at += 4 * program.words.length;
    const payloadsAt = at;
    at = align(at + 4 * program.payloads.length);
    this.free = at;
    this.grow(at);
    this.bytes.set(program.strings, stringsAt);
    const words = new DataView(this.exports.memory.buffer);
    const put = (where: number, values: readonly number[]): void =>
      values.forEach((v, i) => words.setUint32(where + 4 * i, v >>> 0, true));
    program.tables.forEach((t, k) => {
      const relocated = t.words.slice();
      for (const slot of t.stringSlots) relocated[slot]! += stringsAt;
      put(tablesAt[k]!, relocated);
    });
    const relocated = program.words.slice();
    for (const slot of program.stringSlots) relocated[slot]! += stringsAt;
    for (const slot of program.tableSlots) relocated[slot] = tablesAt[relocated[slot]!]!;
    put(programAt, relocated);
    put(payloadsAt, program.payloads);
    const typeTable = program.tables.length - 1;
    this.exports.setProgram(programAt, tablesAt[typeTable]!, program.tables[typeTable]!.mask, payloadsAt);
  }

  /**
   * Copies `raw` in, with room for what read() may write: `room` bytes before each payload and
   * payloads up to twice the body's length (a double in Avro is 8 bytes, `,"d":1` is 6). false
   * when the memory cannot grow (the caller reads the body without it).
   */
  load(raw: Uint8Array, room: number): boolean {
    const maxEvents = Math.min(MAX_EVENTS_PER_READ, Math.floor(raw.length / MIN_EVENT_BYTES) + 1);
    const capacity = 2 * raw.length + room * maxEvents + 64;
    this.bodyAt = this.free;
    this.outputAt = align(this.bodyAt + raw.length);
    this.columnsAt = align(this.outputAt + capacity);
    this.clockAt = align(this.columnsAt + 4 * WASM_COLUMNS * maxEvents);
    try {
      this.grow(this.clockAt + 8 * maxEvents);
    } catch {
      return false; // RangeError: past the engine's limit
    }
    this.bytes.set(raw, this.bodyAt);
    this.bodyLength = raw.length;
    this.capacity = capacity;
    this.maxEvents = maxEvents;
    return true;
  }

  /** Takes events from body offset `from` (where an event starts); how many it took. */
  read(from: number, room: number): number {
    const e = this.exports;
    const n = e.events(
      this.bodyAt,
      this.bodyLength,
      from,
      this.outputAt,
      this.capacity,
      room,
      this.columnsAt,
      this.clockAt,
      this.maxEvents,
    );
    this.stop = e.stopReason() as ReadStop;
    this.stopAt = e.stopPos();
    const buffer = e.memory.buffer;
    this.columns = new Int32Array(buffer, this.columnsAt, WASM_COLUMNS * n);
    this.clientTs = new Float64Array(buffer, this.clockAt, n);
    const end = n === 0 ? 0 : this.columns[WASM_COLUMNS * (n - 1) + 3]!;
    this.output = this.bytes.subarray(this.outputAt, this.outputAt + end);
    return n;
  }

  private grow(bytes: number): void {
    const memory = this.exports.memory;
    if (bytes > memory.buffer.byteLength) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
    if (this.bytes.buffer !== memory.buffer) this.bytes = new Uint8Array(memory.buffer);
  }
}

function align(n: number): number {
  return (n + 7) & ~7;
}

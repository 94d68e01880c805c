import type { BufferPool } from './buffer-pool.js';
import {
  AvroWriter,
  buildWasmProgram,
  copyBytes as sharedCopyBytes,
  JsonBytes,
  JsonReader,
  isAnyCaseUuidBytesAt as sharedIsAnyCaseUuidBytesAt,
  MAX_EXACT_LONG as SHARED_MAX_EXACT_LONG,
  NameTable,
  NULL as SHARED_NULL,
  payloadTranscoderOf,
  ReadStop,
  WASM_COLUMNS,
  WasmBodyReader,
  type SchemaRegistry,
  type SchemaVersion,
  type Step,
} from '@hourglass/schemas';

/**
 * Bound once: an import from another workspace compiles to a getter read at every use, and these
 * are read for every event (the getters were 0.6% of the gateway's CPU in bench/gateway.js's profile).
 */
const isAnyCaseUuidBytesAt = sharedIsAnyCaseUuidBytesAt;
const MAX_EXACT_LONG = SHARED_MAX_EXACT_LONG;
const NULL = SHARED_NULL;
const copyBytes = sharedCopyBytes;

/**
 * The JSON route's body read in one pass, straight to Avro: `{"events":[...]}` whose plain events
 * (`type` before `payload`, each key once, no other key, an id shaped as a UUID or null,
 * client_ts null, epoch milliseconds or an ISO time, a payload the type's compiled step takes)
 * have their payload datums (meta excepted: the gateway fills it when it takes the
 * request) written back to back, with no object built per event (the id stays as bytes). Any other
 * event is handed, alone, to JSON.parse and kept as its value: prepareJsonEvent, the reference,
 * judges it, so a body is read once however many of its events are unusual. A body whose frame is
 * not plain (other keys, no events) goes whole to JSON.parse and prepareJson.
 */
export class TranscodedBatch {
  count = 0;
  /** The event's schema, or undefined for an event kept as JSON.parse's value (in `values`). */
  readonly versions: (SchemaVersion | undefined)[] = [];
  /**
   * Where the client's id (a UUID, either case) is in the body, or −1 for the gateway to assign
   * one; prepare (fast-path.ts) copies it in lower case.
   */
  readonly idAt: number[] = [];
  /** Epoch milliseconds, or −1 for null. */
  readonly clientTs: number[] = [];
  /** Where each event's payload datum is in `payloads`: [starts, ends); `room` bytes free before each. */
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  /** Where each event's JSON text is in the body: [textStarts, textEnds). */
  readonly textStarts: number[] = [];
  readonly textEnds: number[] = [];
  /** JSON.parse's value of each event not transcoded, by index (holes elsewhere). */
  readonly values: unknown[] = [];
  readonly payloads: AvroWriter;

  /** `room`: bytes left free before each payload, for its meta to be written there (see fast-path.ts). */
  constructor(
    readonly raw: Buffer,
    readonly room: number,
    payloadBuffer?: Buffer,
  ) {
    this.payloads = new AvroWriter(raw.length, payloadBuffer);
  }

  /** Leaves `room` bytes before the payload about to be written; where that payload starts. */
  payloadStart(): number {
    const w = this.payloads;
    w.ensure(this.room);
    w.pos += this.room;
    return w.pos;
  }

  /** As for an array of events: the route counts them. */
  get length(): number {
    return this.count;
  }

  /** Event `i` as JSON.parse reads it: the reference's input for an event the fast path hands back. */
  eventValue(i: number): unknown {
    if (this.versions[i] === undefined) return this.values[i];
    return JSON.parse(this.raw.toString('utf8', this.textStarts[i], this.textEnds[i]));
  }

  /** The reference's input for the whole body: its events as JSON.parse reads them. */
  parsedEvents(): unknown[] {
    return (JSON.parse(this.raw.toString('utf8')) as { events: unknown[] }).events;
  }
}

/**
 * Which reader takes the plain events: `wasm`, the WebAssembly reader (native/json-avro.c in
 * @hourglass/schemas) with this module's reader for the events it declines; `typescript`, this
 * module's reader alone. Both give the same batch (tests/unit/gateway/wasm-reader.test.ts); the
 * WebAssembly one takes about a third of the CPU (docs/performance.md, "The body reader in WebAssembly").
 */
export type BodyReader = 'wasm' | 'typescript';

/**
 * The body as the JSON route takes it: a TranscodedBatch, or else what JSON.parse returns (it
 * throws on bad JSON). `room`: bytes to leave free before each payload (metaRoom in fast-path.ts).
 */
export function readEventsBody(
  registry: SchemaRegistry,
  raw: Buffer,
  room = 0,
  reader: BodyReader = 'wasm',
  payloadBuffers?: BufferPool,
): unknown {
  return transcodeBody(typesOf(registry), raw, room, reader, payloadBuffers) ?? JSON.parse(raw.toString('utf8'));
}

interface TypeEntry {
  version: SchemaVersion;
  step: Step | undefined;
}

interface BodyTypes {
  /** The registry's types by name, each with its latest version's compiled payload step. */
  names: NameTable<TypeEntry>;
  /** The same by index: the WebAssembly reader names a type by its place here. */
  byIndex: TypeEntry[];
  wasm: WasmBodyReader;
}

const tables = new WeakMap<SchemaRegistry, BodyTypes>();

function typesOf(registry: SchemaRegistry): BodyTypes {
  let types = tables.get(registry);
  if (!types) {
    const names = registry.eventTypes();
    const byIndex = names.map((t) => {
      const version = registry.get(t).latest;
      return { version, step: payloadTranscoderOf(version) };
    });
    types = {
      names: new NameTable(names.map((t, i) => [Buffer.from(t, 'utf8'), byIndex[i]!] as const)),
      byIndex,
      wasm: new WasmBodyReader(buildWasmProgram(names.map((name, i) => ({ name, type: byIndex[i]!.version.type })))),
    };
    tables.set(registry, types);
  }
  return types;
}

const { CLOSE_ARRAY, CLOSE_OBJECT, COLON, COMMA, OPEN_ARRAY, OPEN_OBJECT, QUOTE } = JsonBytes;
const EVENTS = Buffer.from('events');
const TYPE = Buffer.from('"type"');
const ID = Buffer.from('"id"');
const CLIENT_TS = Buffer.from('"client_ts"');
const PAYLOAD = Buffer.from('"payload"');
const TYPE_KEY = Buffer.from('"type":');
const ID_KEY = Buffer.from('"id":');
const CLIENT_TS_KEY = Buffer.from('"client_ts":');
const PAYLOAD_KEY = Buffer.from('"payload":');

/**
 * The body transcoded, or undefined when its frame is not plain or JSON.parse refuses one of its
 * events. With `wasm`, it takes the events it can, and this module's reader each one it declines.
 */
function transcodeBody(
  types: BodyTypes,
  raw: Buffer,
  room: number,
  reader: BodyReader,
  payloadBuffers: BufferPool | undefined,
): TranscodedBatch | undefined {
  const r = new JsonReader(raw);
  if (!r.expect(OPEN_OBJECT) || !r.string() || !r.textIs(EVENTS) || !r.expect(COLON) || !r.expect(OPEN_ARRAY)) {
    return undefined;
  }
  if (r.peek() === CLOSE_ARRAY) return undefined; // no events: the reference answers
  const batch = new TranscodedBatch(raw, room, payloadBuffers?.take(raw.length));
  let wasm = reader === 'wasm' && types.wasm.load(raw, room) ? types.wasm : undefined;
  for (;;) {
    if (wasm !== undefined) {
      let taken: number;
      try {
        taken = wasm.read(r.pos, room);
      } catch {
        // a trap (it should have none): the TypeScript reader takes the rest of the body
        wasm = undefined;
        continue;
      }
      if (taken > 0) takeWasmEvents(wasm, batch, types.byIndex);
      r.pos = wasm.stopAt;
      if (wasm.stop === ReadStop.End) break;
      if (wasm.stop === ReadStop.Frame) return declined(batch, payloadBuffers);
    }
    const start = r.pos;
    const payloadsAt = batch.payloads.pos;
    if (!readEvent(r, types.names, batch)) {
      // not plain: nothing of it is kept, and JSON.parse reads this event alone
      r.pos = start;
      batch.payloads.pos = payloadsAt;
      if (!parseEvent(r, batch)) return declined(batch, payloadBuffers);
    }
    batch.textStarts[batch.count - 1] = start;
    batch.textEnds[batch.count - 1] = r.pos;
    const c = r.peek();
    r.pos++;
    if (c === CLOSE_ARRAY) break;
    if (c !== COMMA) return declined(batch, payloadBuffers);
  }
  return r.expect(CLOSE_OBJECT) && r.atEnd() ? batch : declined(batch, payloadBuffers);
}

/** A body the reader declines goes to JSON.parse whole: its batch, and the batch's payload buffer, are not used. */
function declined(batch: TranscodedBatch, payloadBuffers: BufferPool | undefined): undefined {
  payloadBuffers?.give(batch.payloads.buf);
  return undefined;
}

/** Appends the events the WebAssembly reader just took: their columns, and their datums in one copy. */
function takeWasmEvents(wasm: WasmBodyReader, batch: TranscodedBatch, byIndex: readonly TypeEntry[]): void {
  const { columns, clientTs, output } = wasm;
  const payloads = batch.payloads;
  const base = payloads.pos;
  payloads.ensure(output.length);
  payloads.pos = copyBytes(output, 0, output.length, payloads.buf, base);
  const { versions, idAt, starts, ends, textStarts, textEnds } = batch;
  const first = batch.count;
  for (let k = 0; k < clientTs.length; k++) {
    const n = first + k;
    const c = k * WASM_COLUMNS;
    versions[n] = byIndex[columns[c]!]!.version;
    idAt[n] = columns[c + 1]!;
    starts[n] = base + columns[c + 2]!;
    ends[n] = base + columns[c + 3]!;
    textStarts[n] = columns[c + 4]!;
    textEnds[n] = columns[c + 5]!;
    batch.clientTs[n] = clientTs[k]!;
  }
  batch.count = first + clientTs.length;
}

/**
 * The event at r.pos as JSON.parse's value, its end found by brackets and strings (skipValue);
 * false when JSON.parse refuses that text. The frame around the event being plain JSON, the
 * body is then valid JSON whatever skipValue took for the event's end, and JSON.parse of the
 * whole body would have held this very value at this index.
 */
function parseEvent(r: JsonReader, batch: TranscodedBatch): boolean {
  const start = r.pos;
  if (!r.skipValue()) return false;
  let value: unknown;
  try {
    value = JSON.parse(r.buf.toString('utf8', start, r.pos));
  } catch {
    return false; // the whole body to JSON.parse, which names it
  }
  const n = batch.count++;
  batch.versions[n] = undefined;
  batch.idAt[n] = -1;
  batch.clientTs[n] = -1;
  batch.starts[n] = batch.payloads.pos;
  batch.ends[n] = batch.payloads.pos;
  batch.values[n] = value;
  return true;
}

const SEEN_TYPE = 1;
const SEEN_PAYLOAD = 2;
const SEEN_ID = 4;
const SEEN_CLIENT_TS = 8;

/** One plain event object; false when it is not plain (the caller then rewinds and parses it). */
function readEvent(r: JsonReader, types: NameTable<TypeEntry>, batch: TranscodedBatch): boolean {
  if (!r.expect(OPEN_OBJECT)) return false;
  let seen = 0;
  let entry: TypeEntry | undefined;
  let idAt = -1;
  let clientTs = -1;
  // a payload before the type: its text [payloadAt, payloadEnd), transcoded once the type is known
  let payloadAt = -1;
  let payloadEnd = -1;
  let start = -1;
  for (;;) {
    const bit = keyOf(r);
    if (bit === 0) return false;
    if (bit === SEEN_TYPE) {
      if (!r.string() || (entry = types.get(r.buf, r.textStart, r.textEnd)) === undefined) return false;
    } else if (bit === SEEN_PAYLOAD) {
      if (entry !== undefined) {
        start = batch.payloadStart();
        if (!entry.step?.(r, batch.payloads)) return false;
      } else {
        r.peek();
        payloadAt = r.pos;
        if (!r.skipValue()) return false;
        payloadEnd = r.pos;
      }
    } else if (bit === SEEN_ID) {
      if (!r.literal(NULL) && (idAt = idTextAt(r)) === -1) return false;
    } else if ((clientTs = readClientTs(r)) === -2) {
      return false;
    }
    if ((seen & bit) !== 0) return false;
    seen |= bit;
    const c = r.peek();
    r.pos++;
    if (c === CLOSE_OBJECT) break;
    if (c !== COMMA) return false;
  }
  if ((seen & (SEEN_TYPE | SEEN_PAYLOAD)) !== (SEEN_TYPE | SEEN_PAYLOAD)) return false;
  if (payloadAt >= 0) {
    start = batch.payloadStart();
    if (!payloadAfterType(r, entry!, payloadAt, payloadEnd, batch)) return false;
  }
  const n = batch.count++;
  batch.versions[n] = entry!.version;
  batch.idAt[n] = idAt;
  batch.clientTs[n] = clientTs;
  batch.starts[n] = start;
  batch.ends[n] = batch.payloads.pos;
  return true;
}

/**
 * The event key at r.pos and its colon, as its SEEN_ bit; 0 for any other key (or none). The
 * compact form (`"type":`) is one comparison; whitespace before the colon takes a second.
 */
function keyOf(r: JsonReader): number {
  if (r.peek() !== QUOTE) return 0;
  if (r.quoted(TYPE_KEY)) return SEEN_TYPE;
  if (r.quoted(PAYLOAD_KEY)) return SEEN_PAYLOAD;
  if (r.quoted(ID_KEY)) return SEEN_ID;
  if (r.quoted(CLIENT_TS_KEY)) return SEEN_CLIENT_TS;
  let bit: number;
  if (r.quoted(TYPE)) bit = SEEN_TYPE;
  else if (r.quoted(PAYLOAD)) bit = SEEN_PAYLOAD;
  else if (r.quoted(ID)) bit = SEEN_ID;
  else if (r.quoted(CLIENT_TS)) bit = SEEN_CLIENT_TS;
  else return 0;
  return r.expect(COLON) ? bit : 0;
}

/**
 * Transcodes a payload read before its event's type (keys in sorted order, as many encoders
 * write them), then returns to the event's end. The step must end where skipValue did (bar
 * whitespace): anything else skipped after the value is not JSON.
 */
function payloadAfterType(r: JsonReader, entry: TypeEntry, at: number, end: number, batch: TranscodedBatch): boolean {
  const eventEnd = r.pos;
  r.pos = at;
  if (!entry.step?.(r, batch.payloads)) return false;
  r.peek();
  if (r.pos !== end) return false;
  r.pos = eventEnd;
  return true;
}

/** client_ts as prepareJson takes it (and the meta check after it): −1 for null, −2 when not plain. */
function readClientTs(r: JsonReader): number {
  if (r.literal(NULL)) return -1;
  let ms: number;
  if (r.peek() === QUOTE) {
    if (!r.string()) return -2;
    ms = Date.parse(r.buf.toString('utf8', r.textStart, r.textEnd));
  } else {
    if (!r.readNumber() || !Number.isSafeInteger(r.number)) return -2;
    ms = r.number;
  }
  return ms >= 0 && ms <= MAX_EXACT_LONG ? ms : -2; // NaN fails both
}

/**
 * A string of a UUID's shape (36 bytes, hex digits of either case and dashes where a UUID has
 * them): where its text starts, or −1 (the reference, given the event alone, names any other id).
 * Such bytes hold no quote, backslash or control character, so the string ends at byte 36.
 */
function idTextAt(r: JsonReader): number {
  if (r.peek() !== QUOTE) return -1;
  const at = r.pos + 1;
  if (r.buf[at + 36] !== QUOTE || !isAnyCaseUuidBytesAt(r.buf, at)) return -1;
  r.pos = at + 37;
  return at;
}

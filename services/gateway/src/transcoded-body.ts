import {
  AvroWriter,
  JsonBytes,
  JsonReader,
  MAX_EXACT_LONG,
  NULL,
  payloadTranscoderOf,
  type SchemaRegistry,
  type SchemaVersion,
  type Step,
} from '@hourglass/schemas';

/**
 * The JSON route's body read in one pass, straight to Avro: `{"events":[...]}` whose every
 * event is plain (`type` before `payload`, each key once, no other key, an id in canonical
 * lower case or null, client_ts null, epoch milliseconds or an ISO time, a payload the type's
 * compiled step takes). The payload datums (meta excepted: the gateway fills it when it takes
 * the request) are written back to back, with no objects built per event beyond the id string.
 * Anything else leaves the body to JSON.parse and prepareJson, the reference for every answer.
 */
export class TranscodedBatch {
  count = 0;
  readonly versions: SchemaVersion[] = [];
  /** The client's id, or undefined for the gateway to assign one. */
  readonly ids: (string | undefined)[] = [];
  /** Epoch milliseconds, or −1 for null. */
  readonly clientTs: number[] = [];
  /** Where each event's payload datum ends in `payloads`; it starts where the previous one ends. */
  readonly ends: number[] = [];
  readonly payloads: AvroWriter;

  constructor(readonly raw: Buffer) {
    this.payloads = new AvroWriter(raw.length);
  }

  /** As for an array of events: the route counts them. */
  get length(): number {
    return this.count;
  }

  /** The reference's input: the body's events as JSON.parse reads them. */
  parsedEvents(): unknown[] {
    return (JSON.parse(this.raw.toString('utf8')) as { events: unknown[] }).events;
  }
}

/** The body as the JSON route takes it: a TranscodedBatch, or else what JSON.parse returns (it throws on bad JSON). */
export function readEventsBody(registry: SchemaRegistry, raw: Buffer): unknown {
  return transcodeBody(typesOf(registry), raw) ?? JSON.parse(raw.toString('utf8'));
}

interface TypeEntry {
  name: Buffer;
  version: SchemaVersion;
  step: Step | undefined;
}

const tables = new WeakMap<SchemaRegistry, TypeEntry[]>();

function typesOf(registry: SchemaRegistry): TypeEntry[] {
  let table = tables.get(registry);
  if (!table) {
    table = registry.eventTypes().map((t) => {
      const version = registry.get(t).latest;
      return { name: Buffer.from(t, 'utf8'), version, step: payloadTranscoderOf(version) };
    });
    tables.set(registry, table);
  }
  return table;
}

const { CLOSE_ARRAY, CLOSE_OBJECT, COLON, COMMA, MINUS, OPEN_ARRAY, OPEN_OBJECT, QUOTE } = JsonBytes;
const EVENTS = Buffer.from('events');
const TYPE = Buffer.from('"type"');
const ID = Buffer.from('"id"');
const CLIENT_TS = Buffer.from('"client_ts"');
const PAYLOAD = Buffer.from('"payload"');

/** The body transcoded, or undefined when anything in it is not plain. */
export function transcodeBody(types: readonly TypeEntry[], raw: Buffer): TranscodedBatch | undefined {
  const r = new JsonReader(raw);
  if (!r.expect(OPEN_OBJECT) || !r.string() || !r.textIs(EVENTS) || !r.expect(COLON) || !r.expect(OPEN_ARRAY)) {
    return undefined;
  }
  if (r.peek() === CLOSE_ARRAY) return undefined; // no events: the reference answers
  const batch = new TranscodedBatch(raw);
  for (;;) {
    if (!readEvent(r, types, batch)) return undefined;
    const c = r.peek();
    r.pos++;
    if (c === CLOSE_ARRAY) break;
    if (c !== COMMA) return undefined;
  }
  return r.expect(CLOSE_OBJECT) && r.atEnd() ? batch : undefined;
}

const SEEN_TYPE = 1;
const SEEN_PAYLOAD = 2;
const SEEN_ID = 4;
const SEEN_CLIENT_TS = 8;

/** One event object; false when it is not plain (nothing of it is kept then: the whole body goes to the reference). */
function readEvent(r: JsonReader, types: readonly TypeEntry[], batch: TranscodedBatch): boolean {
  if (!r.expect(OPEN_OBJECT)) return false;
  let seen = 0;
  let entry: TypeEntry | undefined;
  let id: string | undefined;
  let clientTs = -1;
  for (;;) {
    if (r.peek() !== QUOTE) return false;
    let bit: number;
    if (r.quoted(TYPE)) {
      bit = SEEN_TYPE;
      if (!r.expect(COLON) || !r.string() || (entry = typeOf(types, r)) === undefined) return false;
    } else if (r.quoted(PAYLOAD)) {
      bit = SEEN_PAYLOAD;
      // the type names the schema, so it must come first
      if (!entry?.step || !r.expect(COLON) || !entry.step(r, batch.payloads)) return false;
    } else if (r.quoted(ID)) {
      bit = SEEN_ID;
      if (!r.expect(COLON)) return false;
      if (!r.literal(NULL)) {
        if (!r.string() || !isLowerCaseUuid(r)) return false;
        id = r.buf.toString('latin1', r.textStart, r.textEnd);
      }
    } else if (r.quoted(CLIENT_TS)) {
      bit = SEEN_CLIENT_TS;
      if (!r.expect(COLON) || (clientTs = readClientTs(r)) === -2) return false;
    } else {
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
  const n = batch.count++;
  batch.versions[n] = entry!.version;
  batch.ids[n] = id;
  batch.clientTs[n] = clientTs;
  batch.ends[n] = batch.payloads.pos;
  return true;
}

function typeOf(types: readonly TypeEntry[], r: JsonReader): TypeEntry | undefined {
  for (let i = 0; i < types.length; i++) if (r.textIs(types[i]!.name)) return types[i];
  return undefined;
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

/** Lower-case hex digits. */
const HEX = new Uint8Array(256);
for (const c of Buffer.from('0123456789abcdef')) HEX[c] = 1;

/** A UUID as canonicalUuid keeps it unchanged: 8-4-4-4-12 lower-case hex digits. */
function isLowerCaseUuid(r: JsonReader): boolean {
  const s = r.textStart;
  if (r.textEnd - s !== 36) return false;
  const b = r.buf;
  if (b[s + 8] !== MINUS || b[s + 13] !== MINUS || b[s + 18] !== MINUS || b[s + 23] !== MINUS) return false;
  let hex = 1;
  for (let i = 0; i < 8; i++) hex &= HEX[b[s + i]!]!;
  for (let i = 9; i < 13; i++) hex &= HEX[b[s + i]!]!;
  for (let i = 14; i < 18; i++) hex &= HEX[b[s + i]!]!;
  for (let i = 19; i < 23; i++) hex &= HEX[b[s + i]!]!;
  for (let i = 24; i < 36; i++) hex &= HEX[b[s + i]!]!;
  return hex === 1;
}

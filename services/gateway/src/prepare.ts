import { randomUUID } from 'node:crypto';
import { HourglassError } from '@hourglass/common';
import {
  buildRecord,
  checkDatum,
  compiledWriterOf,
  displayPath,
  metaType,
  type EventMeta,
  type SchemaRegistry,
  type SchemaVersion,
} from '@hourglass/schemas';
import { keyAllows, type ApiKey } from './api-keys.js';
import type { BatchAnswer } from './batch-answer.js';
import type { DatumArena } from './datum-arena.js';
import type { GatewayMetrics } from './metrics.js';

/**
 * Turns a request's events into Avro datums, each encoded exactly once, ready for the
 * bundler. Events that fail are rejected on the answer with a field path and a reason;
 * the rest are collected in parallel arrays (no per-event objects beyond the datum).
 */
export interface PrepareContext {
  registry: SchemaRegistry;
  gatewayId: string;
  maxEventBytes: number;
  metrics: GatewayMetrics;
  arena: DatumArena;
}

/**
 * Where a datum holds its event id: meta.event_id is the record's first field, a UUID (36 ASCII
 * bytes) after its length byte. The answer and the bundler read it there: no id string per event.
 */
export const EVENT_ID_AT = 1;
export const EVENT_ID_BYTES = 36;

/** The event id of the datum that starts at `start` of `source` (the bundler names a bundle by its first). */
export function datumEventId(source: Buffer, start = 0): string {
  return source.toString('latin1', start + EVENT_ID_AT, start + EVENT_ID_AT + EVENT_ID_BYTES);
}

export class PreparedEvents {
  // Sized for the whole request up front: growing the arrays event by event copied them
  // several times per request, garbage the young generation then had to scavenge.
  readonly writers: SchemaVersion[];
  /**
   * Each datum as a range [starts, ends) of a buffer (`sources`): the fast path's datums lie back
   * to back in one buffer, and a view (a Buffer object) per event was ~4% of the request thread's
   * busy time under full load (docs/performance.md, "Datums as ranges").
   */
  readonly sources: Buffer[];
  readonly starts: number[];
  readonly ends: number[];
  readonly indexes: number[];
  count = 0;
  bytes = 0;

  constructor(capacity: number) {
    this.writers = new Array<SchemaVersion>(capacity);
    this.sources = new Array<Buffer>(capacity);
    this.starts = new Array<number>(capacity);
    this.ends = new Array<number>(capacity);
    this.indexes = new Array<number>(capacity);
  }

  /** `datum` holds the event's id (EVENT_ID_AT). */
  push(writer: SchemaVersion, datum: Buffer, index: number): void {
    this.pushRange(writer, datum, 0, datum.length, index);
  }

  /** The datum is source[start, end); its id at start + EVENT_ID_AT. */
  pushRange(writer: SchemaVersion, source: Buffer, start: number, end: number, index: number): void {
    const n = this.count++;
    this.writers[n] = writer;
    this.sources[n] = source;
    this.starts[n] = start;
    this.ends[n] = end;
    this.indexes[n] = index;
    this.bytes += end - start;
  }

  /** Datum `j` as a Buffer of its own range (tests and rare paths; the bundler copies from the range). */
  datum(j: number): Buffer {
    return this.sources[j]!.subarray(this.starts[j], this.ends[j]);
  }
}

const DASH = 45;

/** The UUID in canonical lower case (the dedup key), or undefined when `s` is not a UUID. */
export function canonicalUuid(s: string): string | undefined {
  if (s.length !== 36) return undefined;
  let upper = false;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== DASH) return undefined;
    } else if (c >= 65 && c <= 70) {
      upper = true;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) {
      return undefined;
    }
  }
  return upper ? s.toLowerCase() : s;
}

/** A client id is kept when it is a UUID; absent means a new one. */
function eventIdOf(raw: unknown): string | undefined {
  if (raw === undefined || raw === null) return randomUUID();
  return typeof raw === 'string' ? canonicalUuid(raw) : undefined;
}

/** Epoch milliseconds, or an ISO 8601 / RFC 3339 string; null when absent. */
function clientTsOf(raw: unknown): number | null | undefined {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'number') return Number.isSafeInteger(raw) && raw >= 0 ? raw : undefined;
  if (typeof raw === 'string') {
    const ms = Date.parse(raw);
    return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
  }
  return undefined;
}

/** The meta prepareJsonEvent refills per event: one per request (the writer reads it at once and keeps nothing). */
export function requestMeta(ctx: PrepareContext, gatewayTs: number): EventMeta {
  return { event_id: '', gateway_ts: gatewayTs, client_ts: null, gateway_id: ctx.gatewayId };
}

/** The reference path for JSON events (the transcoder in fast-path.ts hands it what it does not take itself). */
export function prepareJson(
  ctx: PrepareContext,
  key: ApiKey,
  events: readonly unknown[],
  gatewayTs: number,
  answer: BatchAnswer,
): PreparedEvents {
  const out = new PreparedEvents(events.length);
  const meta = requestMeta(ctx, gatewayTs);
  for (let i = 0; i < events.length; i++) prepareJsonEvent(ctx, key, events[i], i, meta, out, answer);
  return out;
}

/**
 * The reference for one JSON event (`ev`, index `i` of its request): its datum pushed on `out`,
 * or its rejection on the answer. Longer than 80 lines on purpose: each rejection is a few
 * inline lines, in the order the checks run, with no closure allocated per event.
 */
export function prepareJsonEvent(
  ctx: PrepareContext,
  key: ApiKey,
  ev: unknown,
  i: number,
  meta: EventMeta,
  out: PreparedEvents,
  answer: BatchAnswer,
): void {
  const { registry, maxEventBytes, metrics, arena } = ctx;
  if (ev === null || typeof ev !== 'object' || Array.isArray(ev)) {
    answer.rejectEvent(i, { code: 'EVENT_INVALID', reason: 'an event must be a JSON object' });
    metrics.events('', 'rejected', 1);
    return;
  }
  const e = ev as Record<string, unknown>;
  const type = e.type;
  if (typeof type !== 'string') {
    answer.rejectEvent(i, { code: 'EVENT_INVALID', path: 'type', reason: 'is required: expected a string' });
    metrics.events('', 'rejected', 1);
    return;
  }
  const schemas = registry.tryGet(type);
  if (!schemas) {
    answer.rejectEvent(i, {
      code: 'SCHEMA_UNKNOWN_TYPE',
      path: 'type',
      reason: `unknown event type ${JSON.stringify(type.slice(0, 64))}`,
    });
    metrics.events('', 'rejected', 1);
    return;
  }
  if (!keyAllows(key, type)) {
    answer.rejectEvent(i, {
      code: 'HTTP_FORBIDDEN',
      path: 'type',
      reason: `the API key does not cover event type ${type}`,
    });
    metrics.events(type, 'rejected', 1);
    return;
  }
  let extra: string | undefined;
  for (const k in e) {
    if (k !== 'payload' && k !== 'type' && k !== 'id' && k !== 'client_ts') {
      extra = k;
      break;
    }
  }
  if (extra !== undefined) {
    answer.rejectEvent(i, {
      code: 'EVENT_INVALID',
      path: extra.slice(0, 64),
      reason: 'is not an event field (type, id, client_ts, payload)',
    });
    metrics.events(type, 'rejected', 1);
    return;
  }
  const id = eventIdOf(e.id);
  if (id === undefined) {
    answer.rejectEvent(i, {
      code: 'EVENT_INVALID',
      path: 'id',
      reason: 'must be a UUID (or absent, and the gateway assigns one)',
    });
    metrics.events(type, 'rejected', 1);
    return;
  }
  const clientTs = clientTsOf(e.client_ts);
  if (clientTs === undefined) {
    answer.rejectEvent(i, {
      code: 'EVENT_INVALID',
      path: 'client_ts',
      reason: 'must be epoch milliseconds or an ISO 8601 time',
    });
    metrics.events(type, 'rejected', 1);
    return;
  }
  const writer = schemas.latest;
  meta.event_id = id;
  meta.client_ts = clientTs;
  // The compiled writer validates and encodes without building the record; whatever it
  // declines (a bad event, or one too big for the arena) takes buildRecord, which names the problem.
  const compiled = compiledWriterOf(writer);
  let datum = compiled?.accepts(meta, e.payload) ? arena.encodeEvent(compiled, meta, e.payload as object) : undefined;
  if (datum === undefined) {
    const built = buildRecord(writer, meta, e.payload);
    if (!built.ok) {
      answer.rejectEvent(i, { code: 'EVENT_INVALID', path: built.path, reason: built.reason });
      metrics.events(type, 'rejected', 1);
      return;
    }
    datum = arena.encode(writer.type, built.record);
  }
  if (datum.length > maxEventBytes) {
    answer.rejectEvent(i, {
      code: 'HTTP_EVENT_TOO_LARGE',
      path: 'payload',
      reason: `encodes to ${datum.length} bytes, over the limit of ${maxEventBytes}`,
    });
    metrics.events(type, 'rejected', 1);
    return;
  }
  out.push(writer, datum, i);
}

export interface AvroDatumSpan {
  start: number;
  end: number;
  /** The first rule the datum breaks (its bytes still had a clear end): it is rejected alone. */
  problem?: { path: string; reason: string };
}

/** The gateway's rules for a datum: as on the JSON route, numbers are finite. */
const GATEWAY_RULES = { finiteNumbers: true };

/**
 * Splits a binary body into datums of `writer` (full records, meta included), checking each
 * one's bytes (see checkDatum: only canonical datums, the JSON route's value rules). A datum
 * that breaks a rule is rejected alone; a body that cannot be split is refused whole: no datum
 * boundary after the bad one can be trusted.
 */
export function splitDatums(writer: SchemaVersion, body: Buffer, maxEvents: number): AvroDatumSpan[] {
  const spans: AvroDatumSpan[] = [];
  let pos = 0;
  while (pos < body.length) {
    if (spans.length >= maxEvents) {
      throw new HourglassError('HTTP_BATCH_TOO_LARGE', `the body holds more than ${maxEvents} datums`);
    }
    const checked = checkDatum(writer.type, body, pos, GATEWAY_RULES);
    if (checked.end < 0) {
      throw new HourglassError(
        'HTTP_BAD_REQUEST',
        `datum ${spans.length} (at byte ${pos}) is truncated or has a union index out of range for ${writer.eventType} v${writer.version}`,
      );
    }
    const span: AvroDatumSpan = { start: pos, end: checked.end };
    if (checked.problem) span.problem = { path: displayPath(checked.problem.path), reason: checked.problem.reason };
    spans.push(span);
    pos = checked.end;
  }
  if (spans.length === 0) throw new HourglassError('HTTP_BAD_REQUEST', 'the body holds no datums');
  return spans;
}

/** Why a datum's meta cannot be kept (the JSON route's rules for id and client_ts), or undefined. */
function avroMetaProblem(meta: EventMeta): { path: string; reason: string } | undefined {
  if (meta.event_id !== '' && canonicalUuid(meta.event_id) === undefined) {
    return { path: 'meta.event_id', reason: 'must be a UUID, or empty for the gateway to assign one' };
  }
  if (meta.client_ts !== null && meta.client_ts < 0) {
    return { path: 'meta.client_ts', reason: 'must be null or epoch milliseconds (not negative)' };
  }
  return undefined;
}

/**
 * Re-stamps each datum's meta (gateway_ts, gateway_id; event_id kept when it is a UUID,
 * assigned when empty) and keeps the payload bytes exactly as sent.
 */
export function prepareAvro(
  ctx: PrepareContext,
  writer: SchemaVersion,
  body: Buffer,
  spans: readonly AvroDatumSpan[],
  gatewayTs: number,
  answer: BatchAnswer,
): PreparedEvents {
  const out = new PreparedEvents(spans.length);
  const { gatewayId, maxEventBytes, metrics, arena } = ctx;
  for (let i = 0; i < spans.length; i++) {
    const { start, end } = spans[i]!;
    const decoded = spans[i]!.problem ? undefined : metaType.decode(body, start);
    const meta = decoded?.value as EventMeta | undefined;
    const problem = spans[i]!.problem ?? (meta && avroMetaProblem(meta));
    if (problem || !decoded || !meta) {
      answer.rejectEvent(i, { code: 'EVENT_INVALID', ...(problem ?? { path: 'meta', reason: 'cannot be read' }) });
      metrics.events(writer.eventType, 'rejected', 1);
      continue;
    }
    const id = meta.event_id === '' ? randomUUID() : canonicalUuid(meta.event_id)!;
    const datum = arena.encodeWithTail(
      metaType,
      { event_id: id, gateway_ts: gatewayTs, client_ts: meta.client_ts, gateway_id: gatewayId },
      body.subarray(decoded.offset, end),
    );
    if (datum.length > maxEventBytes) {
      answer.rejectEvent(i, {
        code: 'HTTP_EVENT_TOO_LARGE',
        path: 'payload',
        reason: `encodes to ${datum.length} bytes, over the limit of ${maxEventBytes}`,
      });
      metrics.events(writer.eventType, 'rejected', 1);
      continue;
    }
    out.push(writer, datum, i);
  }
  return out;
}

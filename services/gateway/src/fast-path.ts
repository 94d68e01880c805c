import { randomUUID } from 'node:crypto';
import {
  MAX_EXACT_LONG,
  copyBytes as sharedCopyBytes,
  longSize as sharedLongSize,
  textProblem,
  writeLong as sharedWriteLong,
  type EventMeta,
} from '@hourglass/schemas';
import { keyAllows, type ApiKey } from './api-keys.js';
import type { BatchAnswer } from './batch-answer.js';
import { PreparedEvents, prepareJson, prepareJsonEvent, requestMeta, type PrepareContext } from './prepare.js';
import { TranscodedBatch } from './transcoded-body.js';

/** Bound once: an import from another workspace compiles to a getter read at every use (see transcoded-body.ts). */
const copyBytes = sharedCopyBytes;
const longSize = sharedLongSize;
const writeLong = sharedWriteLong;

/**
 * The JSON route's events, prepared: a transcoded body (see transcoded-body.ts) gets its meta
 * written in front of each payload datum, in the room the body reader left there (metaRoom),
 * so the payload is never copied. An event the fast path does
 * not answer itself (one the body reader did not transcode, a type the key does not cover, an
 * event over the size limit) goes alone, as JSON.parse reads it, to prepareJsonEvent, the
 * reference; an unusual gateway id or clock sends the whole body to prepareJson.
 */
export function prepareEvents(
  ctx: PrepareContext,
  key: ApiKey,
  events: readonly unknown[] | TranscodedBatch,
  gatewayTs: number,
  answer: BatchAnswer,
): PreparedEvents {
  if (!(events instanceof TranscodedBatch)) return prepareJson(ctx, key, events, gatewayTs, answer);
  return (
    prepareTranscoded(ctx, key, events, gatewayTs, answer) ??
    prepareJson(ctx, key, events.parsedEvents(), gatewayTs, answer)
  );
}

/** The route's events: a transcoded batch, or the array of a `{"events":[...]}` body with at least one; else undefined. */
export function eventsOf(body: unknown): readonly unknown[] | TranscodedBatch | undefined {
  if (body instanceof TranscodedBatch) return body;
  const events =
    body !== null && typeof body === 'object' && !Array.isArray(body)
      ? (body as { events?: unknown }).events
      : undefined;
  return Array.isArray(events) && events.length > 0 ? events : undefined;
}

/** event_id is a 36-character UUID: its length as an Avro varint. */
const UUID_LENGTH_VARINT = 72;
const UUID_BYTES = 1 + 36;

let lastGatewayId = '';
let lastGatewayIdBytes: Buffer | undefined;

/** The gateway id's UTF-8 bytes; undefined when it has none (a lone surrogate: the reference names it). */
function gatewayIdBytes(gatewayId: string): Buffer | undefined {
  if (gatewayId !== lastGatewayId || lastGatewayIdBytes === undefined) {
    lastGatewayId = gatewayId;
    lastGatewayIdBytes = textProblem(gatewayId) === undefined ? Buffer.from(gatewayId, 'utf8') : undefined;
  }
  return lastGatewayIdBytes;
}

/**
 * The bytes the body reader leaves before each payload (readEventsBody's `room`) so that its
 * meta can be written there, in place, with no copy of the payload: the largest meta with this
 * gateway id (gateway_ts and client_ts as 10-byte varints). 0 when the id has no UTF-8 form.
 */
export function metaRoom(gatewayId: string): number {
  const id = gatewayIdBytes(gatewayId);
  return id ? UUID_BYTES + MAX_VARINT + 1 + MAX_VARINT + longSize(id.length) + id.length : 0;
}

const MAX_VARINT = 10;

function prepareTranscoded(
  ctx: PrepareContext,
  key: ApiKey,
  batch: TranscodedBatch,
  gatewayTs: number,
  answer: BatchAnswer,
): PreparedEvents | undefined {
  const gatewayId = gatewayIdBytes(ctx.gatewayId);
  if (!gatewayId || !Number.isSafeInteger(gatewayTs) || Math.abs(gatewayTs) > MAX_EXACT_LONG) return undefined;
  const { count, versions, idAt, clientTs, starts, ends, raw, room } = batch;
  // meta without client_ts: event_id, gateway_ts, gateway_id
  const fixed = UUID_BYTES + longSize(gatewayTs) + longSize(gatewayId.length) + gatewayId.length;
  const out = new PreparedEvents(count);
  const payloads = batch.payloads.buf;
  let meta: EventMeta | undefined; // the reference's, made for the first event it judges
  for (let i = 0; i < count; i++) {
    const version = versions[i];
    const ts = clientTs[i]!;
    const start = starts[i]!;
    const end = ends[i]!;
    const metaSize = fixed + (ts === -1 ? 1 : 1 + longSize(ts));
    if (version === undefined || !keyAllows(key, version.eventType) || metaSize + end - start > ctx.maxEventBytes) {
      meta ??= requestMeta(ctx, gatewayTs);
      prepareJsonEvent(ctx, key, batch.eventValue(i), i, meta, out, answer);
      continue;
    }
    // the meta in the room before the payload; else (another gateway id than the room was made for) a copy
    let datum = payloads;
    let from = start - metaSize;
    let to = end;
    if (metaSize > room) {
      datum = ctx.arena.alloc(metaSize + end - start);
      from = 0;
      to = datum.length;
      copyBytes(payloads, start, end, datum, metaSize);
    }
    datum[from] = UUID_LENGTH_VARINT;
    const at = idAt[i]!;
    if (at >= 0) {
      // the client's id, a UUID (the body reader checked it): copied in lower case, the id canonicalUuid returns;
      // | 0x20 lowers a UUID's letters and leaves its digits and dashes as they are
      for (let c = 0; c < 36; c++) datum[from + 1 + c] = raw[at + c]! | 0x20;
    } else {
      const id = randomUUID();
      for (let c = 0; c < 36; c++) datum[from + 1 + c] = id.charCodeAt(c);
    }
    let pos = writeLong(datum, from + UUID_BYTES, gatewayTs);
    if (ts === -1) {
      datum[pos++] = 0; // union branch 0: null
    } else {
      datum[pos++] = 2; // union branch 1 (zigzag): the long
      pos = writeLong(datum, pos, ts);
    }
    pos = writeLong(datum, pos, gatewayId.length);
    copyBytes(gatewayId, 0, gatewayId.length, datum, pos);
    out.pushRange(version, datum, from, to, i);
  }
  return out;
}

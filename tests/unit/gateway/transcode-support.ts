import { isUtf8 } from 'node:buffer';
import path from 'node:path';
import { SchemaRegistry } from '@hourglass/schemas';
import type { ApiKey } from '../../../services/gateway/src/api-keys';
import { BatchAnswer } from '../../../services/gateway/src/batch-answer';
import { DatumArena } from '../../../services/gateway/src/datum-arena';
import { eventsOf, metaRoom, prepareEvents } from '../../../services/gateway/src/fast-path';
import { GatewayMetrics } from '../../../services/gateway/src/metrics';
import { OutstandingBudget } from '../../../services/gateway/src/outstanding';
import {
  datumEventId,
  prepareJson,
  type PrepareContext,
  type PreparedEvents,
} from '../../../services/gateway/src/prepare';
import { TranscodedBatch, readEventsBody } from '../../../services/gateway/src/transcoded-body';

/**
 * The JSON route twice, in process: the reference (JSON.parse, the route's checks, prepareJson,
 * as on main) and the fast path (readEventsBody, eventsOf, prepareEvents, as the route runs now).
 * Each gives what the client would see and what would be stored: the refusal of the whole body,
 * or the answer and every datum handed to the bundler.
 */
export const registry = SchemaRegistry.load(path.join(__dirname, '../../../schemas'));
export const MAX_EVENTS = 1000;

export interface Setting {
  key: ApiKey;
  maxEventBytes: number;
  gatewayTs: number;
  gatewayId: string;
  /** Bytes the body reader leaves before each payload; default metaRoom(gatewayId), as the route does. */
  room?: number;
  /** The schemas; default the repository's. */
  registry?: SchemaRegistry;
}

export const defaultSetting: Setting = {
  key: { name: 'k', sha256: '', types: undefined, ratePerSecond: 1e9 },
  maxEventBytes: 65536,
  gatewayTs: 1_767_225_600_000,
  gatewayId: 'gw-1',
};

export type Outcome =
  | { refused: string }
  | { answer: string; status: number; writers: string[]; datums: Buffer[]; ids: string[]; indexes: number[] };

function contextOf(s: Setting): PrepareContext {
  const schemas = s.registry ?? registry;
  const metrics = new GatewayMetrics(schemas.eventTypes(), new OutstandingBudget(1e12, 1e12));
  return {
    registry: schemas,
    gatewayId: s.gatewayId,
    maxEventBytes: s.maxEventBytes,
    metrics,
    arena: new DatumArena(),
  };
}

function settled(prepared: PreparedEvents, answer: BatchAnswer): Outcome {
  const { count, writers, sources, starts, indexes } = prepared;
  for (let j = 0; j < count; j++) answer.expectDatum(indexes[j]!, sources[j]!, starts[j]!);
  for (let j = 0; j < count; j++) answer.settle(indexes[j]!, undefined);
  return {
    answer: answer.toBody().toString('utf8'),
    status: answer.statusCode(),
    writers: writers.slice(0, count).map((w) => w.fingerprint),
    datums: Array.from({ length: count }, (_, j) => Buffer.from(prepared.datum(j))),
    ids: Array.from({ length: count }, (_, j) => datumEventId(prepared.datum(j))),
    indexes: indexes.slice(0, count),
  };
}

function routeChecks(events: readonly unknown[] | TranscodedBatch | undefined): string | undefined {
  if (events === undefined) return 'HTTP_BAD_REQUEST empty';
  if (events.length > MAX_EVENTS) return `HTTP_BATCH_TOO_LARGE ${events.length}`;
  return undefined;
}

/** main's route: JSON.parse, then prepareJson. */
export function referenceRoute(raw: Buffer, s: Setting = defaultSetting): Outcome {
  if (!isUtf8(raw)) return { refused: 'utf8' };
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return { refused: 'HTTP_BAD_REQUEST json' };
  }
  const events =
    body !== null && typeof body === 'object' && !Array.isArray(body)
      ? (body as { events?: unknown }).events
      : undefined;
  const list = Array.isArray(events) && events.length > 0 ? (events as unknown[]) : undefined;
  const refused = routeChecks(list);
  if (refused || !list) return { refused: refused! };
  const answer = new BatchAnswer(list.length);
  return settled(prepareJson(contextOf(s), s.key, list, s.gatewayTs, answer), answer);
}

/**
 * What the fast path took: bodies it read itself, and of their events those it transcoded and
 * those it handed to JSON.parse alone; `mixed` counts bodies holding both kinds.
 */
export interface FastStats {
  transcoded: number;
  transcodedEvents?: number;
  parsedEvents?: number;
  mixed?: number;
}

function count(stats: FastStats, batch: TranscodedBatch): void {
  stats.transcoded++;
  let parsed = 0;
  for (let i = 0; i < batch.count; i++) if (batch.versions[i] === undefined) parsed++;
  stats.parsedEvents = (stats.parsedEvents ?? 0) + parsed;
  stats.transcodedEvents = (stats.transcodedEvents ?? 0) + batch.count - parsed;
  if (parsed > 0 && parsed < batch.count) stats.mixed = (stats.mixed ?? 0) + 1;
}

/** The route now: the transcoder first; `stats` counts what it took. */
export function fastRoute(raw: Buffer, s: Setting = defaultSetting, stats?: FastStats): Outcome {
  if (!isUtf8(raw)) return { refused: 'utf8' };
  let body: unknown;
  try {
    body = readEventsBody(s.registry ?? registry, raw, s.room ?? metaRoom(s.gatewayId));
  } catch {
    return { refused: 'HTTP_BAD_REQUEST json' };
  }
  if (stats && body instanceof TranscodedBatch) count(stats, body);
  const events = eventsOf(body);
  const refused = routeChecks(events);
  if (refused || !events) return { refused: refused! };
  const answer = new BatchAnswer(events.length);
  return settled(prepareEvents(contextOf(s), s.key, events, s.gatewayTs, answer), answer);
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The two outcomes with the ids the gateway generated (random on each path) replaced by the
 * reference's, after checking each is a UUID the body did not hold: then they must be equal.
 */
export function aligned(raw: Buffer, fast: Outcome, reference: Outcome): Outcome {
  if ('refused' in fast || 'refused' in reference) return fast;
  if (fast.ids.length !== reference.ids.length) return fast;
  const text = raw.toString('utf8');
  let answer = fast.answer;
  const datums = fast.datums.map((d) => Buffer.from(d));
  const ids = fast.ids.map((id, j) => {
    const ref = reference.ids[j]!;
    if (id === ref || !UUID_TEXT.test(id) || text.includes(id) || text.includes(ref)) return id;
    answer = answer.replace(id, ref);
    datums[j]!.write(ref, 1, 'latin1'); // event_id: its length byte, then 36 ASCII bytes
    return ref;
  });
  return { ...fast, answer, datums, ids };
}

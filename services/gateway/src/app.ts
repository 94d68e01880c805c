import { isUtf8 } from 'node:buffer';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type HookHandlerDoneFunction,
} from 'fastify';
import { SpanKind, context, propagation, trace } from '@opentelemetry/api';
import {
  Defaults,
  HourglassError,
  createLogger,
  installTelemetry,
  systemClock,
  type Clock,
  type Logger,
} from '@hourglass/common';
import { SchemaRegistry, type SchemaVersion } from '@hourglass/schemas';
import { KeyRing, anonymousKey, keyAllows, readApiKeysFile, type ApiKey } from './api-keys.js';
import { BatchAnswer } from './batch-answer.js';
import { addBeaconParsers, installCors, keyOfRequest as findKey, originRefusal } from './browser.js';
import { decodeContent } from './body.js';
import { Bundler } from './bundler.js';
import { NewestVersionEncoder } from './reencode.js';
import type { GatewayConfig } from './config.js';
import { classify, sendError, statusOf } from './http-errors.js';
import { GatewayMetrics } from './metrics.js';
import { OutstandingBudget } from './outstanding.js';
import { prepareAvro, splitDatums, type PrepareContext, type PreparedEvents } from './prepare.js';
import type { MessagePublisher, PubSubPublisherOptions } from './publisher.js';
import { answerClientError, answerFrameworkError } from './protocol-errors.js';
import { RateLimiter } from './rate-limiter.js';
import { TopicWatch } from './readiness.js';
import { ThreadedPublisher } from './threaded-publisher.js';
import { RequestTrace } from './traceparent.js';
import { DatumArena } from './datum-arena.js';
import { eventsOf, prepareEvents } from './fast-path.js';
import { readEventsBody } from './transcoded-body.js';

export interface GatewayOptions {
  config: GatewayConfig;
  /** Default: loaded from config.schemasDir. */
  registry?: SchemaRegistry;
  /** Source of gateway_ts and of rate-limit refills. */
  clock?: Clock;
  logger?: Logger;
  /** Default: Pub/Sub (the emulator when PUBSUB_EMULATOR_HOST is set). */
  publisher?: MessagePublisher;
  /** Default: read from config.apiKeysFile when auth is enabled. */
  apiKeys?: readonly ApiKey[];
}

export interface Gateway {
  readonly app: FastifyInstance;
  readonly config: GatewayConfig;
  readonly readiness: TopicWatch;
  /** Events and bytes in open bundles or in flight to Pub/Sub. */
  readonly outstanding: Readonly<OutstandingBudget>;
  /** Resolves after the first topic check (it never fails: a miss only makes /readyz say 503). */
  checked: Promise<void>;
  /** Stops accepting, publishes what is open, answers in-flight requests, closes Pub/Sub. */
  close(): Promise<void>;
}

export const SCHEMA_VERSION_HEADER = 'hourglass-schema-version';
export const SCHEMA_FINGERPRINT_HEADER = 'hourglass-schema-fingerprint';
export const AVRO_CONTENT_TYPE = 'avro/binary';

/** Builds the gateway: a fastify instance with every route, its Pub/Sub publisher and its timers. */
export async function buildGateway(options: GatewayOptions): Promise<Gateway> {
  const { config } = options;
  const logger = options.logger ?? createLogger('hourglass-gateway');
  const clock = options.clock ?? systemClock;
  const registry = options.registry ?? SchemaRegistry.load(config.schemasDir);
  const eventTypes = registry.eventTypes();
  for (const t of config.unbundledTypes) {
    if (!registry.has(t)) {
      throw new HourglassError('CONFIG_INVALID', `HOURGLASS_UNBUNDLED_TYPES names unknown event type "${t}"`, {
        path: 'HOURGLASS_UNBUNDLED_TYPES',
      });
    }
  }
  const keys =
    config.auth === 'disabled'
      ? undefined
      : new KeyRing(options.apiKeys ?? readApiKeysFile(config.apiKeysFile ?? '', eventTypes, config.rateLimitPerKey));
  const anonymous = anonymousKey(config.rateLimitPerKey);
  if (!keys)
    logger.warn('HOURGLASS_AUTH=disabled: every request is accepted without an API key (local development only)');

  const telemetry = installTelemetry();
  const publisherOptions = {
    projectId: config.projectId,
    prefix: config.prefix,
    publishTimeout: config.publishTimeout,
    batchMaxMessages: config.pubsubBatchMaxMessages,
    batchMaxDelay: config.pubsubBatchMaxDelay,
  };
  const publisher = options.publisher ?? defaultPublisher(publisherOptions, config.publishInWorker);
  const budget = new OutstandingBudget(config.maxOutstandingBytes, config.maxOutstandingEvents);
  const metrics = new GatewayMetrics(eventTypes, budget);
  const bundler = new Bundler({
    publisher,
    budget,
    clock,
    metrics,
    logger,
    maxEvents: config.bundleMaxEvents,
    maxBytes: config.bundleMaxBytes,
    linger: config.bundleLinger,
    codec: config.bundleCodec,
    publishTimeout: config.publishTimeout,
    unbundledTypes: new Set(config.unbundledTypes),
    newest: new NewestVersionEncoder(registry, config.unbundledTypes),
  });
  const limiter = new RateLimiter(clock);
  const readiness = new TopicWatch(publisher, eventTypes, config.readinessInterval, logger);
  const prepareContext: PrepareContext = {
    registry,
    gatewayId: config.gatewayId,
    maxEventBytes: config.maxEventBytes,
    metrics,
    arena: new DatumArena(),
  };
  const tracer = trace.getTracer('hourglass-gateway');
  const keyOfRequest = new WeakMap<object, ApiKey>();
  let draining = false;

  const app = Fastify({
    logger: false,
    bodyLimit: config.maxBodyBytes,
    requestTimeout: config.requestReceiveTimeout,
    // Requests that arrive while closing are answered by our own hook (SHUTTING_DOWN, Connection: close).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Errors before any route runs, in our error shape (protocol-errors.ts).
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
  });

  app.setErrorHandler((error, req, reply) => {
    const { code, message } = classify(error);
    if (statusOf(code) >= 500) logger.error({ err: error, url: req.url }, 'request failed');
    return sendError(reply, code, message);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, 'HTTP_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]?.slice(0, 100)}`),
  );

  app.get('/healthz', (_req, reply) => reply.type('application/json').send('{"status":"ok"}'));
  app.get('/readyz', (_req, reply) => {
    const state = draining ? { ready: false, reason: 'shutting down' } : readiness.current;
    return reply
      .code(state.ready ? 200 : 503)
      .type('application/json')
      .send(JSON.stringify(state));
  });
  app.get('/metrics', async (_req, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(await telemetry.renderMetrics()),
  );

  /** Drain, auth and overload checks run before the body is read (answering here skips `done`). */
  const admit = (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (draining) {
      sendError(reply, 'SHUTTING_DOWN', 'the gateway is shutting down; retry (another instance)', {
        connection: 'close',
        'retry-after': '1',
      });
      return;
    }
    const key = keys ? findKey(keys, req) : anonymous;
    if (!key) {
      sendError(reply, 'HTTP_UNAUTHENTICATED', 'missing or unknown API key (Authorization: Bearer <key>)', {
        'www-authenticate': 'Bearer',
      });
      return;
    }
    const refused = originRefusal(key, req.headers.origin);
    if (refused) {
      sendError(reply, 'ORIGIN_NOT_ALLOWED', refused);
      return;
    }
    if (budget.full()) {
      sendError(reply, 'OVERLOADED', 'too many events in flight to Pub/Sub; retry shortly', { 'retry-after': '1' });
      return;
    }
    keyOfRequest.set(req.raw, key);
    done();
  };
  const countResponse =
    (route: string) =>
    (_req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
      metrics.request(route, reply.statusCode);
      done();
    };

  const rateLimited = (reply: FastifyReply, key: ApiKey, events: number): FastifyReply | undefined => {
    const decision = limiter.take(key.name, key.ratePerSecond, events);
    if (decision.ok) return undefined;
    return sendError(reply, 'HTTP_RATE_LIMITED', `API key ${key.name} exceeds ${key.ratePerSecond} events/s`, {
      'retry-after': String(decision.retryAfterSeconds),
    });
  };

  /**
   * Hands prepared events to the bundler; false when the outstanding budget is full. Not part
   * of the async function that awaits the answer: an awaiting frame keeps its parameters, and
   * `prepared` (a Buffer view and an id per event) was then promoted to the old generation.
   */
  const passToBundler = (
    prepared: PreparedEvents,
    answer: BatchAnswer,
    gatewayTs: number,
    trace: RequestTrace,
  ): boolean => {
    const n = prepared.count;
    if (n === 0) return true;
    if (!budget.tryReserve(prepared.bytes, n)) return false;
    const { writers, datums, ids, indexes } = prepared;
    for (let j = 0; j < n; j++) answer.expect(indexes[j]!, ids[j]!);
    for (let j = 0; j < n; j++) {
      bundler.add(writers[j]!, datums[j]!, ids[j]!, gatewayTs, trace, answer, indexes[j]!);
    }
    return true;
  };

  /** Answers once every event handed over has settled (the handover ack). */
  const answerWhenSettled = async (reply: FastifyReply, answer: BatchAnswer): Promise<FastifyReply> => {
    await answer.settled();
    reply.code(answer.statusCode()).type('application/json');
    if (answer.retry > 0) reply.header('retry-after', '1');
    if (draining) reply.header('connection', 'close');
    return reply.send(answer.toBody());
  };

  /** No await in here: this frame, and `prepared` with it, ends before the answer waits. */
  const handover = async (
    reply: FastifyReply,
    prepared: PreparedEvents,
    answer: BatchAnswer,
    gatewayTs: number,
    trace: RequestTrace,
  ): Promise<FastifyReply> => {
    if (!passToBundler(prepared, answer, gatewayTs, trace)) {
      return sendError(reply, 'OVERLOADED', 'too many events in flight to Pub/Sub; retry shortly', {
        'retry-after': '1',
      });
    }
    return answerWhenSettled(reply, answer);
  };

  const startSpan = (req: FastifyRequest, name: string) =>
    tracer.startSpan(name, { kind: SpanKind.SERVER }, propagation.extract(context.active(), req.headers));

  /**
   * Both routes' common step: prepares the batch inside the request's span and hands it over;
   * the span ends with the answer. No await in here, and the routes call it without awaiting:
   * an awaiting frame keeps its locals and parameters (the parsed body, the prepared events)
   * until the answer, and the bodies of the requests in flight were then promoted by the GC.
   */
  const ingest = (
    req: FastifyRequest,
    reply: FastifyReply,
    spanName: string,
    size: number,
    prepare: (gatewayTs: number, answer: BatchAnswer) => PreparedEvents,
  ): Promise<FastifyReply> => {
    const span = startSpan(req, spanName);
    let handedOver: Promise<FastifyReply>;
    try {
      const gatewayTs = clock.now();
      const trace = new RequestTrace(span.spanContext(), req.headers.traceparent);
      const answer = new BatchAnswer(size);
      handedOver = handover(reply, prepare(gatewayTs, answer), answer, gatewayTs, trace);
    } catch (e) {
      span.end();
      throw e;
    }
    return handedOver.finally(() => span.end());
  };

  // Browsers and apps: CORS with publishable keys (docs/http-api.md, "Browsers and apps").
  if (keys) installCors(app, keys, Defaults.corsMaxAge);

  // JSON batches (and beacons: the same batch as text/plain or a form field).
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    addBeaconParsers(scope, config.maxDecompressedBytes);
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, async (req: FastifyRequest, body: Buffer) => {
      const raw = await decodeContent(body, req.headers['content-encoding'], config.maxDecompressedBytes);
      // JSON text is UTF-8: decoding invalid bytes would store U+FFFD in their place
      if (!isUtf8(raw)) throw invalidUtf8(raw);
      try {
        return readEventsBody(registry, raw); // a TranscodedBatch when plain, else JSON.parse's value
      } catch {
        throw new HourglassError('HTTP_BAD_REQUEST', 'the body is not valid JSON');
      }
    });
    scope.addHook('onRequest', admit);
    scope.addHook('onResponse', countResponse('json'));
    scope.post('/v1/events', (req, reply) => {
      const key = keyOfRequest.get(req.raw)!;
      const events = eventsOf(req.body);
      req.body = undefined;
      if (events === undefined) {
        return sendError(reply, 'HTTP_BAD_REQUEST', 'the body must be {"events":[...]} with at least one event');
      }
      if (events.length > config.maxEventsPerBatch) {
        return sendError(
          reply,
          'HTTP_BATCH_TOO_LARGE',
          `${events.length} events in one batch; the limit is ${config.maxEventsPerBatch}`,
        );
      }
      if (rateLimited(reply, key, events.length)) return reply;
      return ingest(req, reply, 'POST /v1/events', events.length, (gatewayTs, answer) =>
        prepareEvents(prepareContext, key, events, gatewayTs, answer),
      );
    });
  });

  // Avro datums of one type and version, for internal high-volume producers.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(AVRO_CONTENT_TYPE, { parseAs: 'buffer' }, async (req: FastifyRequest, body: Buffer) =>
      decodeContent(body, req.headers['content-encoding'], config.maxDecompressedBytes),
    );
    scope.addHook('onRequest', admit);
    scope.addHook('onResponse', countResponse('avro'));
    scope.post<{ Params: { type: string } }>('/v1/events/:type', async (req, reply) => {
      const key = keyOfRequest.get(req.raw)!;
      const eventType = req.params.type;
      const schemas = registry.tryGet(eventType);
      if (!schemas) {
        return sendError(reply, 'SCHEMA_UNKNOWN_TYPE', `unknown event type ${JSON.stringify(eventType.slice(0, 64))}`);
      }
      if (!keyAllows(key, eventType)) {
        return sendError(reply, 'HTTP_FORBIDDEN', `the API key does not cover event type ${eventType}`);
      }
      if (key.origins) return sendError(reply, 'HTTP_FORBIDDEN', 'publishable keys send JSON to POST /v1/events');
      const writer = writerOf(schemas.versions, req.headers);
      if (typeof writer === 'string') return sendError(reply, 'HTTP_BAD_REQUEST', writer);
      if (!Buffer.isBuffer(req.body)) {
        return sendError(reply, 'HTTP_UNSUPPORTED_MEDIA_TYPE', `send Content-Type: ${AVRO_CONTENT_TYPE}`);
      }
      const body = req.body;
      const spans = splitDatums(writer, body, config.maxEventsPerBatch);
      if (rateLimited(reply, key, spans.length)) return reply;
      return ingest(req, reply, 'POST /v1/events/:type', spans.length, (gatewayTs, answer) =>
        prepareAvro(prepareContext, writer, body, spans, gatewayTs, answer),
      );
    });
  });

  app.addHook('preClose', async () => {
    draining = true;
    readiness.stop();
    bundler.drain();
  });
  app.addHook('onClose', async () => {
    await bundler.idle();
    await publisher.close();
  });

  const checked = readiness.start();
  await app.ready();
  return {
    app,
    config,
    readiness,
    outstanding: budget,
    checked,
    close: () => app.close(),
  };
}

/**
 * The Pub/Sub client in a worker thread, or in this thread. Loaded lazily: with the worker,
 * the request thread never loads the Pub/Sub library (tens of MB of RSS saved).
 */
function defaultPublisher(options: PubSubPublisherOptions, inWorker: boolean): MessagePublisher {
  if (inWorker) return new ThreadedPublisher(options);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PubSubPublisher } = require('./publisher.js') as typeof import('./publisher.js');
  return new PubSubPublisher(options);
}

const VERSION_TEXT = /^[1-9][0-9]{0,5}$/;

/** Where the first invalid UTF-8 sequence of `raw` starts: decoded and re-encoded, the bytes differ there. */
function invalidUtf8(raw: Buffer): HourglassError {
  const again = Buffer.from(raw.toString('utf8'));
  let at = 0;
  while (at < raw.length && raw[at] === again[at]) at++;
  return new HourglassError('HTTP_BAD_REQUEST', `the body is not valid UTF-8 (an invalid byte sequence at byte ${at})`);
}

/** The writer version named by the schema headers; a string says what is wrong. */
function writerOf(
  versions: readonly SchemaVersion[],
  headers: Record<string, string | string[] | undefined>,
): SchemaVersion | string {
  const fingerprint = headers[SCHEMA_FINGERPRINT_HEADER];
  const version = headers[SCHEMA_VERSION_HEADER];
  if (typeof fingerprint === 'string') {
    const found = versions.find((v) => v.fingerprint === fingerprint.trim().toLowerCase());
    return found ?? `no version of this type has schema fingerprint ${fingerprint.slice(0, 64)}`;
  }
  if (typeof version === 'string') {
    if (!VERSION_TEXT.test(version)) return `${SCHEMA_VERSION_HEADER} must be a version number such as 1`;
    const n = Number(version);
    const found = versions.find((v) => v.version === n);
    return found ?? `no version ${version.slice(0, 16)} of this type (it has v1..v${versions.length})`;
  }
  return `name the writer schema with the ${SCHEMA_VERSION_HEADER} or ${SCHEMA_FINGERPRINT_HEADER} header`;
}

import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { ApiKey } from '../api-keys.js';
import { BatchAnswer } from '../batch-answer.js';
import type { GatewayDeps } from '../deps.js';
import { sendError } from '../http-errors.js';
import type { PreparedEvents } from '../prepare.js';
import { endRequestSpan, inValidateSpan, startRequestSpan } from '../spans.js';
import { RequestTrace } from '../traceparent.js';
import { keyOfRequest, originRefusal } from './browser.js';

/**
 * The steps both ingest routes (JSON and Avro) share: admission before the body is read,
 * the rate limit, and the handover of prepared events to the bundler with the answer that
 * waits for them. One instance per route scope; it holds nothing per request but the key.
 */
export class Ingestion {
  private readonly keys = new WeakMap<object, ApiKey>();

  constructor(private readonly deps: GatewayDeps) {}

  /** onRequest: drain, auth and overload checks run before the body is read (answering here skips `done`). */
  readonly admit = (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const { keys, anonymous, budget } = this.deps;
    if (this.deps.draining) {
      sendError(reply, 'SHUTTING_DOWN', 'the gateway is shutting down; retry (another instance)', {
        connection: 'close',
        'retry-after': '1',
      });
      return;
    }
    const key = keys ? keyOfRequest(keys, req) : anonymous;
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
    this.keys.set(req.raw, key);
    done();
  };

  /** The key `admit` let in. */
  keyOf(req: FastifyRequest): ApiKey {
    return this.keys.get(req.raw)!;
  }

  /** onResponse: counts the answer under the route's name. */
  countResponse(route: string): (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void {
    const { metrics } = this.deps;
    return (_req, reply, done) => {
      metrics.request(route, reply.statusCode);
      done();
    };
  }

  /** Answers 429 and returns the reply when `key` may not send `events` more now; undefined when it may. */
  rateLimited(reply: FastifyReply, key: ApiKey, events: number): FastifyReply | undefined {
    const decision = this.deps.limiter.take(key.name, key.ratePerSecond, events);
    if (decision.ok) return undefined;
    return sendError(reply, 'HTTP_RATE_LIMITED', `API key ${key.name} exceeds ${key.ratePerSecond} events/s`, {
      'retry-after': String(decision.retryAfterSeconds),
    });
  }

  /**
   * Both routes' common step: prepares the batch (in a `validate` span when traced) and hands
   * it over; the request's span, if any, ends with the answer. No await in here, and the
   * routes call it without awaiting: an awaiting frame keeps its locals and parameters (the
   * parsed body, the prepared events) until the answer, and the bodies of the requests in
   * flight were then promoted by the GC.
   */
  ingest(
    req: FastifyRequest,
    reply: FastifyReply,
    spanName: string,
    size: number,
    prepare: (gatewayTs: number, answer: BatchAnswer) => PreparedEvents,
  ): Promise<FastifyReply> {
    const span = startRequestSpan(req, spanName, size); // undefined while tracing is off
    let handedOver: Promise<FastifyReply>;
    try {
      const gatewayTs = this.deps.clock.now();
      const requestTrace = new RequestTrace(span, req.headers.traceparent);
      const answer = new BatchAnswer(size);
      const prepared = span ? inValidateSpan(span, () => prepare(gatewayTs, answer)) : prepare(gatewayTs, answer);
      handedOver = this.handover(reply, prepared, answer, gatewayTs, requestTrace);
    } catch (e) {
      if (span) span.span.end();
      throw e;
    }
    return span ? handedOver.finally(() => endRequestSpan(span, reply)) : handedOver;
  }

  /** No await in here: this frame, and `prepared` with it, ends before the answer waits. */
  private async handover(
    reply: FastifyReply,
    prepared: PreparedEvents,
    answer: BatchAnswer,
    gatewayTs: number,
    requestTrace: RequestTrace,
  ): Promise<FastifyReply> {
    if (!this.passToBundler(prepared, answer, gatewayTs, requestTrace)) {
      return sendError(reply, 'OVERLOADED', 'too many events in flight to Pub/Sub; retry shortly', {
        'retry-after': '1',
      });
    }
    return this.answerWhenSettled(reply, answer);
  }

  /**
   * Hands prepared events to the bundler; false when the outstanding budget is full. Not part
   * of the async function that awaits the answer: an awaiting frame keeps its parameters, and
   * `prepared` (a Buffer view and an id per event) was then promoted to the old generation.
   */
  private passToBundler(
    prepared: PreparedEvents,
    answer: BatchAnswer,
    gatewayTs: number,
    requestTrace: RequestTrace,
  ): boolean {
    const n = prepared.count;
    if (n === 0) return true;
    const { budget, bundler } = this.deps;
    if (!budget.tryReserve(prepared.bytes, n)) return false;
    const { writers, sources, starts, ends, indexes } = prepared;
    for (let j = 0; j < n; j++) answer.expectDatum(indexes[j]!, sources[j]!, starts[j]!);
    for (let j = 0; j < n; j++) {
      bundler.addRange(writers[j]!, sources[j]!, starts[j]!, ends[j]!, gatewayTs, requestTrace, answer, indexes[j]!);
    }
    return true;
  }

  /** Answers once every event handed over has settled (the handover ack). Its frame holds only the reply and the answer. */
  private async answerWhenSettled(reply: FastifyReply, answer: BatchAnswer): Promise<FastifyReply> {
    await answer.settled();
    reply.code(answer.statusCode()).type('application/json');
    if (answer.retry > 0) reply.header('retry-after', '1');
    if (this.deps.draining) reply.header('connection', 'close');
    return reply.send(answer.toBody());
  }
}

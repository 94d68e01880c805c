import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, propagation, trace } from '@opentelemetry/api';
import { activeTracer } from '@hourglass/common';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The gateway's spans, only while tracing is on (activeTracer): `<route>` (the request,
 * SERVER, continuing the caller's `traceparent` header), its child `validate`, and
 * `publish <type>` (PRODUCER), the publish of the bundle the request opened. The bundle's
 * `traceparent` attribute names the publish span: the consumer's spans continue from it.
 */
export const GATEWAY_TRACER = 'hourglass-gateway';

export interface RequestSpan {
  readonly tracer: Tracer;
  readonly span: Span;
}

/** The request's span, or undefined while tracing is off (then no span object exists). */
export function startRequestSpan(req: FastifyRequest, route: string, events: number): RequestSpan | undefined {
  const tracer = activeTracer(GATEWAY_TRACER);
  if (!tracer) return undefined;
  const span = tracer.startSpan(
    route,
    {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': req.method, 'http.route': route, 'hourglass.event_count': events },
    },
    req.headers.traceparent === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, req.headers),
  );
  return { tracer, span };
}

export function endRequestSpan(request: RequestSpan, reply: FastifyReply): void {
  request.span.setAttribute('http.response.status_code', reply.statusCode);
  if (reply.statusCode >= 500) request.span.setStatus({ code: SpanStatusCode.ERROR });
  request.span.end();
}

/** Runs `validate` inside a `validate` span that counts the events it kept. */
export function inValidateSpan<T extends { count: number }>(request: RequestSpan, validate: () => T): T {
  if (!request.span.isRecording()) return validate(); // not sampled: its children would not be either
  const span = request.tracer.startSpan('validate', {}, trace.setSpan(ROOT_CONTEXT, request.span));
  try {
    const prepared = validate();
    span.setAttribute('hourglass.valid_count', prepared.count);
    return prepared;
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
    throw e;
  } finally {
    span.end();
  }
}

/**
 * The publish span of a bundle the request opens, started when it opens (it covers the linger);
 * undefined when the request is not sampled (the bundle then names the request's span).
 */
export function startPublishSpan(request: RequestSpan, eventType: string): Span | undefined {
  if (!request.span.isRecording()) return undefined;
  return request.tracer.startSpan(
    `publish ${eventType}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'gcp_pubsub',
        'messaging.operation.type': 'send',
        'hourglass.event_type': eventType,
      },
    },
    trace.setSpan(ROOT_CONTEXT, request.span),
  );
}

/** Ends a bundle's publish span with what was sent and how it ended (a problem code, or the message id). */
export function endPublishSpan(
  span: Span,
  sent: { events: number; bytes: number },
  outcome: { messageId?: string; problem?: string },
): void {
  span.setAttributes({ 'hourglass.event_count': sent.events, 'messaging.message.body.size': sent.bytes });
  if (outcome.messageId) span.setAttribute('messaging.message.id', outcome.messageId);
  if (outcome.problem) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.problem });
  span.end();
}

import { randomBytes } from 'node:crypto';
import { INVALID_SPAN_CONTEXT, type Span, type SpanContext, isSpanContextValid } from '@opentelemetry/api';
import { type RequestSpan, startPublishSpan } from './spans.js';

/**
 * The W3C traceparent a bundle carries in its message attributes. With tracing on it is
 * the context of the bundle's publish span (spans.ts); without one (the default) the gateway
 * continues the caller's trace id from its `traceparent` header, or starts a new trace,
 * so subscribers can still correlate a message with the request that produced it.
 * Computed only for the request that opens a bundle.
 */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);

export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, '0')}`;
}

export class RequestTrace {
  constructor(
    private readonly request: RequestSpan | undefined,
    private readonly incoming: string | string[] | undefined,
  ) {}

  /**
   * Called by the request that opens a bundle: the traceparent the bundle carries, and with
   * tracing on the bundle's publish span, whose context that traceparent is.
   */
  openBundle(eventType: string): { traceparent: string; publishSpan: Span | undefined } {
    if (!this.request)
      return { traceparent: traceparentFor(INVALID_SPAN_CONTEXT, this.incoming), publishSpan: undefined };
    const publishSpan = startPublishSpan(this.request, eventType);
    return { traceparent: formatTraceparent((publishSpan ?? this.request.span).spanContext()), publishSpan };
  }
}

/** Random bytes for ids, drawn a few KB at a time: one getrandom call per bundle showed in profiles. */
const POOL_IDS = 256;
let pool = Buffer.alloc(0);
let poolPos = 0;

function random24Hex(): string {
  if (poolPos >= pool.length) {
    pool = randomBytes(24 * POOL_IDS);
    poolPos = 0;
  }
  const hex = pool.toString('hex', poolPos, poolPos + 24);
  poolPos += 24;
  return hex;
}

export function traceparentFor(span: SpanContext, incoming: string | string[] | undefined): string {
  if (isSpanContextValid(span)) return formatTraceparent(span);
  const random = random24Hex();
  const spanId = random.slice(0, 16);
  const m = typeof incoming === 'string' ? TRACEPARENT.exec(incoming.trim()) : null;
  if (m && m[1] !== ZERO_TRACE) return `00-${m[1]}-${spanId}-${m[3]}`;
  return `00-${random.slice(16)}-${spanId}-00`;
}

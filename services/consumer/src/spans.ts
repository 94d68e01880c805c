import {
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanContext,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { Defaults, activeTracer, parseTraceparent } from '@hourglass/common';
import { Attr } from '@hourglass/schemas';
import { type IntervalWindow, windowLabel } from '@hourglass/bucket-format';
import type { InboundMessage } from './source/inbound-message.js';

/**
 * The consumer's spans, only while tracing is on (activeTracer): `receive <type>` (CONSUMER),
 * a child of the span named by the message's `traceparent` attribute (the gateway's publish
 * span; no span when that one is not sampled); `stage <type>`, one per staged part file whose
 * messages include a recorded one, a child of the first such receive span and linked to the others; `finalize <type>`, one per
 * closed window, linked to the stage spans of that window this replica recorded (at most
 * Defaults.traceLinksPerWindow, kept in memory: lost with the process).
 */
export const CONSUMER_TRACER = 'hourglass-consumer';
const MAX_STAGE_LINKS = 128;
/** Windows whose stage spans are kept for a finalize span (a replica stages into few at once). */
const MAX_WINDOWS = 16;

/** The receive span of one message, or undefined while tracing is off. */
export function startReceiveSpan(eventType: string, message: InboundMessage): Span | undefined {
  const tracer = activeTracer(CONSUMER_TRACER);
  if (!tracer) return undefined;
  const parent = parseTraceparent(message.attributes[Attr.traceparent]);
  if (parent && !isSampled(parent)) return undefined; // parent-based sampling would not record it
  return tracer.startSpan(
    `receive ${eventType}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'gcp_pubsub',
        'messaging.operation.type': 'receive',
        'messaging.message.id': message.id,
        'hourglass.event_type': eventType,
        ...(message.deliveryAttempt
          ? { 'messaging.gcp_pubsub.message.delivery_attempt': message.deliveryAttempt }
          : {}),
      },
    },
    parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT,
  );
}

/** Ends a receive span; returns its context when it was recorded (for the stage span), else undefined. */
export function endReceiveSpan(span: Span, events: number, late: number): SpanContext | undefined {
  span.setAttributes({ 'hourglass.event_count': events, 'hourglass.late_count': late });
  span.end();
  return isSampled(span.spanContext()) ? span.spanContext() : undefined;
}

/** Adds a recorded receive span to a part file's list (bounded: the link limit). */
export function noteReceived(list: SpanContext[] | undefined, received: SpanContext): SpanContext[] {
  const out = list ?? [];
  if (out.length < MAX_STAGE_LINKS && out[out.length - 1] !== received) out.push(received);
  return out;
}

/** The stage span of a part file holding recorded messages: child of the first, linked to the rest. */
export function startStageSpan(
  eventType: string,
  received: readonly SpanContext[],
  file: { name: string; events: number; messages: number; late: boolean },
): Span | undefined {
  const tracer = activeTracer(CONSUMER_TRACER);
  if (!tracer || received.length === 0) return undefined;
  return tracer.startSpan(
    `stage ${eventType}`,
    {
      links: received.slice(1).map((context): Link => ({ context })),
      attributes: {
        'hourglass.event_type': eventType,
        'hourglass.staged_file': file.name,
        'hourglass.event_count': file.events,
        'hourglass.message_count': file.messages,
        'hourglass.late': file.late,
      },
    },
    trace.setSpanContext(ROOT_CONTEXT, received[0]!),
  );
}

export function endSpan(span: Span | undefined, error?: unknown): void {
  if (!span) return;
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
  span.end();
}

/** The stage spans this replica recorded, per window, for the window's finalize span to link. */
export class WindowTraceLinks {
  private readonly byWindow = new Map<number, SpanContext[]>();

  add(window: IntervalWindow, staged: SpanContext): void {
    let list = this.byWindow.get(window.start);
    if (!list) {
      // another replica may close the window: forget the oldest windows rather than grow
      if (this.byWindow.size >= MAX_WINDOWS) this.byWindow.delete(this.byWindow.keys().next().value!);
      this.byWindow.set(window.start, (list = []));
    }
    if (list.length < Defaults.traceLinksPerWindow) list.push(staged);
  }

  /** The window's links, forgotten once taken (the window closes once). */
  take(window: IntervalWindow): SpanContext[] {
    const list = this.byWindow.get(window.start) ?? [];
    this.byWindow.delete(window.start);
    return list;
  }
}

/** The finalize span of a window, or undefined while tracing is off. */
export function startFinalizeSpan(
  eventType: string,
  window: IntervalWindow,
  links: WindowTraceLinks,
): Span | undefined {
  const tracer = activeTracer(CONSUMER_TRACER);
  if (!tracer) return undefined;
  return tracer.startSpan(
    `finalize ${eventType}`,
    {
      links: links.take(window).map((context): Link => ({ context })),
      attributes: { 'hourglass.event_type': eventType, 'hourglass.window': windowLabel(window) },
    },
    ROOT_CONTEXT,
  );
}

function isSampled(sc: SpanContext): boolean {
  return (sc.traceFlags & 1) === 1;
}

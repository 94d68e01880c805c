import { metrics, type Attributes, type Histogram, type Meter, type MetricOptions } from '@opentelemetry/api';
import type { OutstandingBudget } from './outstanding.js';

export type EventResult = 'accepted' | 'rejected' | 'retry';

/** Label used for event types the registry does not know, so clients cannot blow up cardinality. */
const UNKNOWN_TYPE = '_unknown';

/**
 * Gateway instruments, through @opentelemetry/api only. Attribute objects are built
 * once per type and result, because the hot path records once per bundle or request.
 * The two counters are counted here, keyed by those objects, and observed when metrics are
 * read: a synchronous Counter.add hashes its attributes on every call (1.6 µs a request in a
 * profile of bench/gateway.js), a Map keyed by the same object costs a lookup.
 */
export class GatewayMetrics {
  private readonly eventCounts = new Map<Attributes, number>();
  private readonly requestCounts = new Map<Attributes, number>();
  private readonly publishLatencyHistogram: Histogram;
  private readonly bundleEventsHistogram: Histogram;
  private readonly bundleBytesHistogram: Histogram;
  private readonly bundleAgeHistogram: Histogram;
  private readonly resultAttrs = new Map<string, Record<EventResult, Attributes>>();
  private readonly typeAttrs = new Map<string, Attributes>();
  private readonly requestAttrs = new Map<string, Map<number, Attributes>>();

  constructor(eventTypes: readonly string[], budget: OutstandingBudget) {
    const meter = metrics.getMeter('hourglass-gateway');
    observeCounts(meter, 'hourglass_gateway_events', this.eventCounts, {
      description: 'Events answered, by event type and result (accepted, rejected, retry)',
    });
    observeCounts(meter, 'hourglass_gateway_requests', this.requestCounts, {
      description: 'HTTP requests to the ingestion routes, by route and status code',
    });
    this.publishLatencyHistogram = meter.createHistogram('hourglass_gateway_publish_latency', {
      description: 'Time from handing a bundle to Pub/Sub to its ack, in milliseconds',
      unit: 'ms',
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000] },
    });
    this.bundleEventsHistogram = meter.createHistogram('hourglass_gateway_bundle_events', {
      description: 'Events per Pub/Sub message',
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
    });
    this.bundleBytesHistogram = meter.createHistogram('hourglass_gateway_bundle_bytes', {
      description: 'Bytes of Pub/Sub message data per bundle',
      unit: 'By',
      advice: { explicitBucketBoundaries: [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304] },
    });
    this.bundleAgeHistogram = meter.createHistogram('hourglass_gateway_bundle_age', {
      description: "Milliseconds from a bundle's first event to its sending: the linger it waited (linger.ts)",
      unit: 'ms',
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 250, 300, 500] },
    });
    meter
      .createObservableGauge('hourglass_gateway_outstanding_bytes', {
        description: 'Event bytes held in open bundles or in flight to Pub/Sub',
        unit: 'By',
      })
      .addCallback((r) => r.observe(budget.bytes));
    meter
      .createObservableGauge('hourglass_gateway_outstanding_events', {
        description: 'Events held in open bundles or in flight to Pub/Sub',
      })
      .addCallback((r) => r.observe(budget.events));
    for (const t of [...eventTypes, UNKNOWN_TYPE]) {
      this.typeAttrs.set(t, { event_type: t });
      this.resultAttrs.set(t, {
        accepted: { event_type: t, result: 'accepted' },
        rejected: { event_type: t, result: 'rejected' },
        retry: { event_type: t, result: 'retry' },
      });
    }
  }

  events(eventType: string, result: EventResult, count: number): void {
    const attrs = this.resultAttrs.get(eventType) ?? this.resultAttrs.get(UNKNOWN_TYPE)!;
    addTo(this.eventCounts, attrs[result], count);
  }

  request(route: string, status: number): void {
    let byStatus = this.requestAttrs.get(route);
    if (!byStatus) this.requestAttrs.set(route, (byStatus = new Map()));
    let attrs = byStatus.get(status);
    if (!attrs) byStatus.set(status, (attrs = { route, status }));
    addTo(this.requestCounts, attrs, 1);
  }

  publishLatency(eventType: string, ms: number): void {
    this.publishLatencyHistogram.record(ms, this.attrsOf(eventType));
  }

  bundle(eventType: string, events: number, bytes: number, ageMs: number): void {
    const attrs = this.attrsOf(eventType);
    this.bundleEventsHistogram.record(events, attrs);
    this.bundleBytesHistogram.record(bytes, attrs);
    this.bundleAgeHistogram.record(ageMs, attrs);
  }

  private attrsOf(eventType: string): Attributes {
    return this.typeAttrs.get(eventType) ?? this.typeAttrs.get(UNKNOWN_TYPE)!;
  }
}

/** A counter counted in `counts` (by attribute object) and reported when metrics are read. */
function observeCounts(meter: Meter, name: string, counts: Map<Attributes, number>, options: MetricOptions): void {
  meter.createObservableCounter(name, options).addCallback((r) => counts.forEach((n, attrs) => r.observe(n, attrs)));
}

function addTo(counts: Map<Attributes, number>, attrs: Attributes, n: number): void {
  counts.set(attrs, (counts.get(attrs) ?? 0) + n);
}

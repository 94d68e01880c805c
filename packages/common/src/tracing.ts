import {
  type Attributes,
  type Context,
  type Link,
  type SpanContext,
  type SpanKind,
  TraceFlags,
  type Tracer,
  propagation,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator, parseTraceParent } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { type ConfigOf, loadConfig } from './config.js';
import { Defaults } from './defaults.js';

/**
 * Traces, off unless HOURGLASS_TRACE_ENDPOINT names an OTLP/HTTP (JSON) traces URL. The one
 * place that touches the tracing SDK: services ask `activeTracer()`, which is undefined while
 * tracing is off, so the hot path then creates no span at all (not even a no-op one).
 * Sampling is parent-based: a trace the caller sampled (its `traceparent` header, or the one a
 * Pub/Sub message carries) is recorded, a new one with HOURGLASS_TRACE_SAMPLE_RATIO, and a
 * span linked to a recorded one always (LinkedOrRatioSampler).
 */
export const traceSettings = {
  endpoint: {
    env: 'HOURGLASS_TRACE_ENDPOINT',
    default: undefined as string | undefined,
    expect: 'an http(s) URL of an OTLP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces',
    parse: (raw: string): string | undefined => (/^https?:\/\/[^/\s]+(\/\S*)?$/.test(raw) ? raw : undefined),
  },
  sampleRatio: {
    env: 'HOURGLASS_TRACE_SAMPLE_RATIO',
    default: Defaults.traceSampleRatio as number,
    expect: 'a number from 0 to 1',
    parse: (raw: string): number | undefined => {
      const n = /^\s*(0|1|0?\.\d+|1\.0*)\s*$/.test(raw) ? Number(raw) : NaN;
      return n >= 0 && n <= 1 ? n : undefined;
    },
  },
};
export type TraceConfig = ConfigOf<typeof traceSettings>;

/** Reads and validates the trace settings (CONFIG_INVALID names the bad one). */
export function loadTraceConfig(env: Record<string, string | undefined> = process.env): TraceConfig {
  return loadConfig(traceSettings, env);
}

export interface Tracing {
  readonly enabled: boolean;
  /** Exports what has ended so far. */
  flush(): Promise<void>;
  /** Flushes and uninstalls: `activeTracer()` is undefined again. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  serviceName: string;
  exporter: SpanExporter;
  sampleRatio: number;
  /** Export each span as it ends (tests) instead of in batches. */
  immediate?: boolean;
}

let provider: BasicTracerProvider | undefined;
const tracers = new Map<string, Tracer>();

const off: Tracing = { enabled: false, flush: () => Promise.resolve(), shutdown: () => Promise.resolve() };

/** Starts tracing from the settings: the OTLP exporter when an endpoint is set, else nothing. */
export function startTracing(serviceName: string, config: TraceConfig): Tracing {
  if (!config.endpoint) return off;
  const exporter = new OTLPTraceExporter({ url: config.endpoint });
  return installTracing({ serviceName, exporter, sampleRatio: config.sampleRatio });
}

/** Installs a tracer provider exporting to `exporter` (one per process; a second install replaces the first). */
export function installTracing(options: TracingOptions): Tracing {
  if (provider) void uninstall();
  const processor = options.immediate
    ? new SimpleSpanProcessor(options.exporter)
    : new BatchSpanProcessor(options.exporter);
  const installed = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    sampler: new ParentBasedSampler({ root: new LinkedOrRatioSampler(options.sampleRatio) }),
    spanProcessors: [processor],
  });
  trace.setGlobalTracerProvider(installed);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  provider = installed;
  return {
    enabled: true,
    flush: () => installed.forceFlush(),
    shutdown: () => (provider === installed ? uninstall() : installed.shutdown()),
  };
}

/**
 * For spans that start a trace: recorded when a link points at a recorded span (a window's
 * finalize links the staged writes of sampled traces, and should be found from them), else
 * with the configured ratio.
 */
class LinkedOrRatioSampler implements Sampler {
  private readonly ratio: TraceIdRatioBasedSampler;

  constructor(sampleRatio: number) {
    this.ratio = new TraceIdRatioBasedSampler(sampleRatio);
  }

  shouldSample(
    context: Context,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    if (links.some((l) => (l.context.traceFlags & TraceFlags.SAMPLED) !== 0)) {
      return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    }
    return this.ratio.shouldSample(context, traceId);
  }

  toString(): string {
    return `LinkedOrRatio{${this.ratio.toString()}}`;
  }
}

async function uninstall(): Promise<void> {
  const installed = provider;
  provider = undefined;
  tracers.clear();
  trace.disable();
  propagation.disable();
  await installed?.shutdown();
}

/** The tracer named `name`, or undefined while tracing is off: callers then create no span. */
export function activeTracer(name: string): Tracer | undefined {
  if (!provider) return undefined;
  let tracer = tracers.get(name);
  if (!tracer) {
    tracer = provider.getTracer(name);
    tracers.set(name, tracer);
  }
  return tracer;
}

/** The remote span context a W3C `traceparent` value names, or undefined when it is malformed. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  return value ? (parseTraceParent(value) ?? undefined) : undefined;
}

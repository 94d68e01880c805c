import { randomBytes, randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { provisionTopology } from '@hourglass/cli';
import {
  Defaults,
  ManualClock,
  activeTracer,
  installTracing,
  isHourglassError,
  loadTraceConfig,
  seconds,
  sha256Hex,
  silentLogger,
  startTracing,
} from '@hourglass/common';
import { type RunningConsumer, consumerConfig, startConsumer } from '@hourglass/consumer';
import { FAST_CONSUMER } from '../consumer/support';
import { buildGateway, defaultGatewayConfig, type Gateway } from '@hourglass/gateway';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore } from '@hourglass/storage';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Traces across the pipeline (issue 17 part 4): one event through the gateway and the consumer,
 * real Pub/Sub emulator and a directory store, spans caught by an in-memory exporter. The
 * gateway's spans and the consumer's share one trace id, joined by the bundle's `traceparent`.
 */
process.env.METADATA_SERVER_DETECTION = 'none';

const TYPE = 'page_viewed';
const T0 = Date.UTC(2026, 0, 15, 10, 30, 0);
const registry = SchemaRegistry.load('schemas');
const TOKEN = 'trace-test-key';

interface Pipeline {
  gateway: Gateway;
  consumer: RunningConsumer;
  clock: ManualClock;
  stop(): Promise<void>;
}

async function startPipeline(): Promise<Pipeline> {
  const prefix = `t-trace-${randomBytes(3).toString('hex')}`;
  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE], ackDeadline: seconds(10) });
  const clock = new ManualClock(T0);
  const gateway = await buildGateway({
    config: defaultGatewayConfig({ prefix, auth: 'enabled', gatewayId: 'gw-trace' }),
    registry,
    clock,
    logger: silentLogger,
    apiKeys: [{ name: 'trace', sha256: sha256Hex(TOKEN), types: undefined, ratePerSecond: 1_000_000 }],
  });
  await gateway.checked;
  const config = consumerConfig({
    prefix,
    eventTypes: [TYPE],
    replicaId: 'solo',
    host: '127.0.0.1',
    port: 0,
    ...FAST_CONSUMER,
  });
  const store = new LocalDirectoryStore(mkdtempSync(join(tmpdir(), 'hourglass-traces-')));
  const consumer = await startConsumer(config, { clock, store, logger: silentLogger, autoTick: false });
  return {
    gateway,
    consumer,
    clock,
    stop: async () => {
      await consumer.stop();
      await gateway.close();
    },
  };
}

async function sendOne(gateway: Gateway, headers: Record<string, string> = {}): Promise<void> {
  const res = await gateway.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    payload: JSON.stringify({
      events: [
        {
          type: TYPE,
          id: randomUUID(),
          payload: { user_id: null, page: 'home', referrer: null, duration_ms: 1200, platform: 'WEB' },
        },
      ],
    }),
  });
  expect(res.json()).toMatchObject({ accepted: 1 });
}

/** Ticks the consumer (100 ms of its clock a step) until the window of T0 is closed with `records` events. */
async function closeFirstWindow(p: Pipeline, records = 1): Promise<void> {
  const deadline = Date.now() + 45_000;
  while (!p.consumer.closedWindows().some((c) => c.window.start === T0 && c.records === records)) {
    if (Date.now() > deadline) throw new Error('the window did not close within 45 s');
    p.clock.advance(p.consumer.status().every((s) => s.stats.acked >= records) ? 2_000 : 100);
    await p.consumer.tick();
    await new Promise((r) => setTimeout(r, 50));
  }
}

const named = (spans: ReadableSpan[], name: string): ReadableSpan[] => spans.filter((s) => s.name === name);

function onlyOne(spans: ReadableSpan[], name: string): ReadableSpan {
  const found = named(spans, name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0]!;
}

describe('traces', () => {
  test('one event: gateway request → validate → publish, consumer receive → stage in the same trace, finalize linked', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = installTracing({ serviceName: 'test', exporter, sampleRatio: 1, immediate: true });
    let spans: ReadableSpan[] = [];
    const p = await startPipeline();
    try {
      await sendOne(p.gateway);
      await closeFirstWindow(p);
    } finally {
      await p.stop();
      spans = [...exporter.getFinishedSpans()]; // shutting down clears the in-memory exporter
      await tracing.shutdown();
    }
    const request = onlyOne(spans, 'POST /v1/events');
    const validate = onlyOne(spans, 'validate');
    const publish = onlyOne(spans, `publish ${TYPE}`);
    const receive = onlyOne(spans, `receive ${TYPE}`);
    const stage = onlyOne(spans, `stage ${TYPE}`);
    const finalize = onlyOne(spans, `finalize ${TYPE}`);
    const traceId = request.spanContext().traceId;
    for (const s of [validate, publish, receive, stage]) expect(s.spanContext().traceId).toBe(traceId);
    const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
    expect(parentOf(request)).toBeUndefined();
    expect(parentOf(validate)).toBe(request.spanContext().spanId);
    expect(parentOf(publish)).toBe(request.spanContext().spanId);
    expect(parentOf(receive)).toBe(publish.spanContext().spanId); // across Pub/Sub, via the traceparent attribute
    expect(parentOf(stage)).toBe(receive.spanContext().spanId);
    expect(finalize.links.map((l) => l.context.spanId)).toEqual([stage.spanContext().spanId]);
    expect(finalize.links[0]!.context.traceId).toBe(traceId);
    expect(publish.attributes).toMatchObject({ 'hourglass.event_count': 1, 'messaging.system': 'gcp_pubsub' });
    expect(publish.attributes['messaging.message.id']).toEqual(receive.attributes['messaging.message.id']);
    expect(stage.attributes).toMatchObject({ 'hourglass.event_count': 1, 'hourglass.message_count': 1 });
    expect(finalize.attributes).toMatchObject({ 'hourglass.record_count': 1, 'hourglass.created': true });
  });

  test("sampled at 0, a caller's sampled traceparent is still followed end to end; an unsampled request records nothing", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = installTracing({ serviceName: 'test', exporter, sampleRatio: 0, immediate: true });
    let spans: ReadableSpan[] = [];
    const callerTrace = randomBytes(16).toString('hex');
    const p = await startPipeline();
    try {
      await sendOne(p.gateway); // no traceparent: a new trace, not sampled at ratio 0
      await sendOne(p.gateway, { traceparent: `00-${callerTrace}-${randomBytes(8).toString('hex')}-01` });
      await closeFirstWindow(p, 2);
    } finally {
      await p.stop();
      spans = [...exporter.getFinishedSpans()]; // shutting down clears the in-memory exporter
      await tracing.shutdown();
    }
    const names = spans.map((s) => s.name).sort();
    expect(names).toEqual(
      ['POST /v1/events', 'validate', `publish ${TYPE}`, `receive ${TYPE}`, `stage ${TYPE}`, `finalize ${TYPE}`].sort(),
    );
    for (const s of spans.filter((x) => !x.name.startsWith('finalize'))) {
      expect(s.spanContext().traceId).toBe(callerTrace);
    }
    // the finalize span starts its own trace but is recorded because it links a recorded stage span
    expect(onlyOne(spans, `finalize ${TYPE}`).links[0]!.context.traceId).toBe(callerTrace);
  });

  test('with tracing off no span is made, even with a tracer provider registered globally by someone else', async () => {
    expect(startTracing('test', loadTraceConfig({})).enabled).toBe(false);
    expect(activeTracer('hourglass-gateway')).toBeUndefined();
    const exporter = new InMemorySpanExporter();
    const foreign = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(foreign);
    const p = await startPipeline();
    try {
      await sendOne(p.gateway);
      await closeFirstWindow(p);
    } finally {
      await p.stop();
      trace.disable();
      await foreign.shutdown();
    }
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual([]);
  });

  test('trace settings are validated: an endpoint must be an http(s) URL, the ratio within 0..1', () => {
    expect(loadTraceConfig({})).toEqual({ endpoint: undefined, sampleRatio: Defaults.traceSampleRatio });
    expect(
      loadTraceConfig({
        HOURGLASS_TRACE_ENDPOINT: 'http://127.0.0.1:4318/v1/traces',
        HOURGLASS_TRACE_SAMPLE_RATIO: '0.25',
      }),
    ).toEqual({ endpoint: 'http://127.0.0.1:4318/v1/traces', sampleRatio: 0.25 });
    for (const env of [
      { HOURGLASS_TRACE_ENDPOINT: 'collector:4318' },
      { HOURGLASS_TRACE_SAMPLE_RATIO: '1.5' },
      { HOURGLASS_TRACE_SAMPLE_RATIO: '1%' },
    ]) {
      let error: unknown;
      try {
        loadTraceConfig(env);
      } catch (e) {
        error = e;
      }
      expect(isHourglassError(error, 'CONFIG_INVALID')).toBe(true);
    }
  });
});

import { metrics } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';

/**
 * The only place that touches the OpenTelemetry SDK. Everything else instruments with
 * `@opentelemetry/api` (metrics.getMeter, trace.getTracer). `/metrics` routes call
 * `renderMetrics()` to get Prometheus text from the same exporter.
 */
export interface Telemetry {
  renderMetrics(): Promise<string>;
  shutdown(): Promise<void>;
}

let installed: { exporter: PrometheusExporter; provider: MeterProvider } | undefined;

export function installTelemetry(): Telemetry {
  if (!installed) {
    // preventServerStart: the service's own HTTP server serves /metrics.
    const exporter = new PrometheusExporter({ preventServerStart: true });
    const provider = new MeterProvider({ readers: [exporter] });
    metrics.setGlobalMeterProvider(provider);
    installed = { exporter, provider };
  }
  const { exporter } = installed;
  const serializer = new PrometheusSerializer();
  return {
    async renderMetrics() {
      const { resourceMetrics } = await exporter.collect();
      return serializer.serialize(resourceMetrics);
    },
    async shutdown() {
      /* the global provider lives as long as the process */
    },
  };
}

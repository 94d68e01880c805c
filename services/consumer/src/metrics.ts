import { type Counter, type Histogram, type ObservableGauge, metrics } from '@opentelemetry/api';

/**
 * The consumer's instruments, through @opentelemetry/api only (the SDK is wired by
 * installTelemetry() in @hourglass/common, which must run before this is created).
 */
export interface ConsumerMetrics {
  stagedEvents: Counter;
  stagedBytes: Counter;
  lateEvents: Counter;
  duplicatesDropped: Counter;
  deadLettered: Counter;
  replayedEvents: Counter;
  replayedMessages: Counter;
  storeErrors: Counter;
  overheld: Counter;
  windowsClosed: Counter;
  finalizePaused: Counter;
  closeDelay: Histogram;
  finalizeDuration: Histogram;
  stageLatency: Histogram;
  watermarkLag: ObservableGauge;
  heldEvents: ObservableGauge;
}

export function createConsumerMetrics(): ConsumerMetrics {
  const meter = metrics.getMeter('hourglass-consumer');
  return {
    stagedEvents: meter.createCounter('hourglass_consumer_events_staged', {
      description: 'Events written to durable staged part files (label late=true for late events)',
    }),
    stagedBytes: meter.createCounter('hourglass_consumer_staged_bytes', {
      description: 'Bytes of staged part files written',
      unit: 'By',
    }),
    lateEvents: meter.createCounter('hourglass_consumer_events_late', {
      description: 'Events routed to a later window because their own window had closed',
    }),
    duplicatesDropped: meter.createCounter('hourglass_consumer_events_duplicate', {
      description: 'Staged copies dropped at finalize because their event_id was already kept',
    }),
    deadLettered: meter.createCounter('hourglass_consumer_messages_deadlettered', {
      description: 'Undecodable messages written to _deadletter and acked',
    }),
    replayedEvents: meter.createCounter('hourglass_consumer_events_replayed', {
      description: 'Events of acked messages re-published by `hourglass deadletter replay` (attribute replay_of)',
    }),
    replayedMessages: meter.createCounter('hourglass_consumer_messages_replayed', {
      description: 'Acked messages re-published by `hourglass deadletter replay` (attribute replay_of)',
    }),
    storeErrors: meter.createCounter('hourglass_consumer_store_errors', {
      description: 'Object store operations that failed (staging, leases, finalize)',
    }),
    overheld: meter.createCounter('hourglass_consumer_messages_overheld', {
      description: 'Messages settled after the Pub/Sub client stopped extending their deadline (staging was stuck)',
    }),
    windowsClosed: meter.createCounter('hourglass_consumer_windows_closed', {
      description: 'Windows this replica finalized (manifest written)',
    }),
    finalizePaused: meter.createCounter('hourglass_consumer_finalize_paused_seconds', {
      description:
        'Time finalize slept to leave the CPU to staging while messages arrived late (close/finalize-pacer.ts)',
      unit: 's',
    }),
    closeDelay: meter.createHistogram('hourglass_consumer_window_close_delay_seconds', {
      description: 'Time from a window becoming closable by the clock (end + grace) to its manifest',
      unit: 's',
      advice: { explicitBucketBoundaries: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] },
    }),
    finalizeDuration: meter.createHistogram('hourglass_consumer_finalize_duration_seconds', {
      description: 'Time to finalize one window',
      unit: 's',
      advice: { explicitBucketBoundaries: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] },
    }),
    stageLatency: meter.createHistogram('hourglass_consumer_stage_latency_seconds', {
      description:
        'Per acked message: clock minus the oldest gateway_ts in it, when its events are durable (gateway receive to staged)',
      unit: 's',
      advice: { explicitBucketBoundaries: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300] },
    }),
    watermarkLag: meter.createObservableGauge('hourglass_consumer_watermark_lag_seconds', {
      description: 'Clock minus the global watermark of each event type',
      unit: 's',
    }),
    heldEvents: meter.createObservableGauge('hourglass_consumer_held_events', {
      description: 'Events received but not yet in a durable staged file',
    }),
  };
}

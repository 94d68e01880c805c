export {
  startConsumer,
  subscriberClientFor,
  type ConsumerDeps,
  type RunningConsumer,
  type TypeStatus,
} from './consumer.js';
export {
  consumerConfig,
  consumerSettings,
  defaultReplicaId,
  checkConsumerConfig,
  graceFor,
  loadConsumerConfig,
  consumerParts,
  typeScope,
  type CloseConfig,
  type ConsumerConfig,
  type ConsumerParts,
  type SourceConfig,
  type StageConfig,
  type TypeScope,
  type WatermarkConfig,
} from './config.js';
export { ReplicaWatermark, type ReplicaWatermarkOptions } from './watermark/replica-watermark.js';
export { EventIdSet } from './finalize/id-set.js';
export { finalizeWindow } from './finalize/publish.js';
export { runOneOpenShardJob } from './finalize/shard-jobs.js';
export { finalizeEarly } from './finalize/early.js';
export { cleanupStaging } from './finalize/cleanup.js';
export type { ClosedTail, EarlySegments, FinalizeContext, FinalizeStep } from './finalize/context.js';
export { Stager, type InboundMessage, type StagerStats } from './stage/stager.js';
export { writeCursor, writeReplicaLease } from './coordination.js';
export { createConsumerMetrics, type ConsumerMetrics } from './metrics.js';
export { TypeRuntime, type TypeRuntimeOptions, type WindowClosed } from './type-runtime.js';
export { crashHookFromEnv } from './test-hooks.js';
export { UnaryPullSource, type UnaryPullOptions } from './source/unary-pull.js';
export { LONG_POLL_EMPTY_FLOOR_MS } from './source/poll-pacing.js';
export { AckBatcher } from './source/ack-batcher.js';
export { FlowBudget } from './source/flow-budget.js';
export { StreamingSource, type StreamingSourceOptions } from './source/streaming-source.js';
export * from './notify/index.js';

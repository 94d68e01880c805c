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
  type ConsumerConfig,
} from './config.js';
export * from './watermark.js';
export { EventIdSet } from './id-set.js';
export {
  finalizeEarly,
  finalizeWindow,
  cleanupStaging,
  type ClosedTail,
  type EarlySegments,
  type FinalizeContext,
  type FinalizeStep,
} from './finalize.js';
export { Stager, type InboundMessage, type StagerOptions, type StagerStats } from './stager.js';
export { writeCursor, writeLease } from './coordination.js';
export { createConsumerMetrics, type ConsumerMetrics } from './metrics.js';
export { TypeRuntime, type TypeRuntimeOptions, type WindowClosed } from './type-runtime.js';
export { crashHookFromEnv } from './test-hooks.js';
export { UnaryPullSource, LONG_POLL_EMPTY_FLOOR_MS, type UnaryPullOptions } from './unary-pull.js';
export { FlowBudget } from './flow-budget.js';
export { StreamingSource, type StreamingSourceOptions } from './streaming-source.js';

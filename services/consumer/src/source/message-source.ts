import { type PubSub, v1 } from '@google-cloud/pubsub';
import type { Logger } from '@hourglass/common';
import type { SourceConfig } from '../config.js';
import type { FlowBudget } from './flow-budget.js';
import type { InboundMessage } from './inbound-message.js';
import { StreamingSource, type StreamingSourceOptions, streamingOptions } from './streaming-source.js';
import { shortPollFloorMs } from './poll-pacing.js';
import { UnaryPullSource } from './unary-pull.js';

/** What the consumer needs of a subscription reader, whichever pull mode. */
export interface MessageSource {
  start(handle: (m: InboundMessage) => void): void;
  /**
   * Stops reading; held messages are released (nacked). Resolves to how many messages it left to
   * come back to other readers unstaged: those nacked, a long poll's cancelled in flight (its
   * messages may have been leased), or undefined when it cannot tell (streaming pull).
   */
  close(): Promise<number | undefined>;
  /** Called when the subscription becomes readable (a Pull answered) or stops being so. */
  onHealth(listener: (healthy: boolean) => void): void;
  /** Back pressure: no new messages until resume() (held ones keep their leases). */
  pause(reason: string): void;
  resume(): void;
  /** Why the subscription cannot be read now (the replica is not ready), or undefined. */
  problem(): string | undefined;
  /** Why only a restart would help (the replica is not live), or undefined. */
  liveness(): string | undefined;
}

/** The generated client with the same endpoint and credentials as `pubsub` (emulator included). */
export async function subscriberClientFor(pubsub: PubSub): Promise<v1.SubscriberClient> {
  const { port, ...rest } = await pubsub.getClientConfig();
  return new v1.SubscriberClient({ ...rest, ...(port !== undefined ? { port: Number(port) } : {}) });
}

/**
 * A reader of subscription `name` in the configured pull mode. Unary: a client (gRPC channel) per
 * subscription, closed with its source, sharing the process's flow budget.
 */
export async function openSource(
  pubsub: PubSub,
  name: string,
  config: SourceConfig,
  budget: FlowBudget,
  subscriptions: number,
  log: Logger,
): Promise<MessageSource> {
  const logger = log.child({ subscription: name });
  if (config.pull === 'streaming') {
    const options = streamingShare(config, subscriptions);
    return new StreamingSource(pubsub.subscription(name, streamingOptions(options)), options, logger);
  }
  const subscription = pubsub.subscription(name).name;
  return new UnaryPullSource(
    await subscriberClientFor(pubsub),
    {
      subscription,
      budget,
      ackDeadlineMs: config.ackDeadlineMs,
      redeliveryBoundMs: config.redeliveryBoundMs,
      maxExtensionMs: config.maxExtensionMs,
      pullBatch: config.pullBatch,
      pullWaitMs: config.pullWaitMs,
      longPoll: config.longPoll,
      shortPollFloorMs: shortPollFloorMs(subscriptions),
    },
    log.child({ subscription }),
  );
}

/**
 * Streaming pull: the SDK's flow control is per subscription, so the process budget is split
 * evenly between the subscriptions (a bound, not shared as in unary mode).
 */
function streamingShare(config: SourceConfig, subscriptions: number): StreamingSourceOptions {
  return {
    deadAfterMs: config.deadAfterMs,
    maxMessages: Math.max(1, Math.floor(config.flowMaxMessages / subscriptions)),
    maxBytes: Math.max(1024, Math.floor(config.flowMaxBytes / subscriptions)),
    ackDeadlineMs: config.ackDeadlineMs,
    maxExtensionMs: config.maxExtensionMs,
  };
}

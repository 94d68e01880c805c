import { PubSub, type ClientConfig, type Topic } from '@google-cloud/pubsub';
import { resourceNames, type Duration } from '@hourglass/common';
import type { EncodedBundle } from '@hourglass/schemas';

/** Where bundles go: one Pub/Sub topic per event type. */
export interface MessagePublisher {
  /** Resolves with the message id once Pub/Sub acked the message. */
  publish(eventType: string, message: EncodedBundle): Promise<string>;
  /** True when the type's topic exists; throws when Pub/Sub cannot be asked. */
  topicExists(eventType: string): Promise<boolean>;
  topicName(eventType: string): string;
  close(): Promise<void>;
}

export interface PubSubPublisherOptions {
  projectId: string;
  prefix: string;
  publishTimeout: Duration;
  batchMaxMessages: number;
  batchMaxDelay: Duration;
  /** host:port of a Pub/Sub emulator; default: PUBSUB_EMULATOR_HOST, else Google Cloud. */
  apiEndpoint?: string;
}

/** Pub/Sub's request size cap is 10 MB; the client library itself caps batches at 9 MiB. */
const CLIENT_BATCH_MAX_BYTES = 9 * 1024 * 1024;
const GRPC_NOT_FOUND = 5;

export class PubSubPublisher implements MessagePublisher {
  private readonly pubsub: PubSub;
  private readonly topics = new Map<string, Topic>();

  constructor(private readonly options: PubSubPublisherOptions) {
    const config: ClientConfig & Record<string, unknown> = {
      projectId: options.projectId,
      ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
      // Reconnect quickly after Pub/Sub (or the emulator) comes back; grpc's default backoff grows to 2 minutes.
      'grpc.max_reconnect_backoff_ms': 2000,
    };
    this.pubsub = new PubSub(config);
  }

  private topic(eventType: string): Topic {
    let topic = this.topics.get(eventType);
    if (!topic) {
      topic = this.pubsub.topic(this.topicName(eventType), {
        // Our bundles already batch events: the client may merge bundles that are ready together, but must not wait.
        batching: {
          maxMessages: this.options.batchMaxMessages,
          maxMilliseconds: this.options.batchMaxDelay,
          maxBytes: CLIENT_BATCH_MAX_BYTES,
        },
        // Retries inside the client stop at the publish timeout, so a publish settles about when we answer `retry`.
        gaxOpts: { timeout: this.options.publishTimeout },
      });
      this.topics.set(eventType, topic);
    }
    return topic;
  }

  topicName(eventType: string): string {
    return resourceNames(this.options.prefix, eventType).topic;
  }

  publish(eventType: string, message: EncodedBundle): Promise<string> {
    return this.topic(eventType).publishMessage({ data: message.data, attributes: message.attributes });
  }

  async topicExists(eventType: string): Promise<boolean> {
    try {
      await this.topic(eventType).getMetadata({ timeout: 5000 });
      return true;
    } catch (e) {
      if ((e as { code?: number }).code === GRPC_NOT_FOUND) return false;
      throw e;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.topics.values()].map((t) => t.flush()));
    await this.pubsub.close();
  }
}

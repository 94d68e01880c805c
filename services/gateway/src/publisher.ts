import { PubSub, type ClientConfig, type Topic, v1 } from '@google-cloud/pubsub';
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

/** Messages waiting for one publish RPC to one topic. */
interface TopicBatch {
  readonly topic: string;
  readonly messages: { data: Buffer; attributes: Record<string, string> }[];
  readonly waiters: { resolve(id: string): void; reject(e: Error): void }[];
  bytes: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Publishes through the generated (gapic) client of @google-cloud/pubsub, the one its
 * Topic.publishMessage uses underneath, with the same per-topic batching (up to
 * batchMaxMessages messages, batchMaxDelay, 9 MiB), the same call options (retries end
 * at publishTimeout) and the same emulator and channel settings. Our messages are
 * already bundles, so the Topic layer's per-message work (a promisified request and a
 * deep copy of it per RPC, flow control, tracing hooks) was a fifth of the client's CPU.
 */
export class PubSubPublisher implements MessagePublisher {
  private readonly pubsub: PubSub;
  private readonly topics = new Map<string, Topic>();
  private readonly batches = new Map<string, TopicBatch>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly callOptions: { isBundling: boolean; timeout: number };
  private client: Promise<v1.PublisherClient> | undefined;
  private closed = false;

  constructor(private readonly options: PubSubPublisherOptions) {
    const config: ClientConfig & Record<string, unknown> = {
      projectId: options.projectId,
      ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
      // Reconnect quickly after Pub/Sub (or the emulator) comes back; grpc's default backoff grows to 2 minutes.
      'grpc.max_reconnect_backoff_ms': 2000,
    };
    this.pubsub = new PubSub(config);
    // Retries inside the client stop at the publish timeout, so a publish settles about when we answer `retry`.
    // No gax bundling (it would hold each RPC up to 10 ms): the batching above is the one Topic applies.
    this.callOptions = { isBundling: false, timeout: options.publishTimeout };
  }

  private topic(eventType: string): Topic {
    let topic = this.topics.get(eventType);
    if (!topic) {
      topic = this.pubsub.topic(this.topicName(eventType));
      this.topics.set(eventType, topic);
    }
    return topic;
  }

  topicName(eventType: string): string {
    return resourceNames(this.options.prefix, eventType).topic;
  }

  publish(eventType: string, message: EncodedBundle): Promise<string> {
    if (this.closed) return Promise.reject(new Error('publisher is closed'));
    let batch = this.batches.get(eventType);
    if (batch && batch.bytes + message.data.length > CLIENT_BATCH_MAX_BYTES) {
      this.flush(eventType, batch);
      batch = undefined;
    }
    if (!batch) {
      batch = { topic: this.topic(eventType).name, messages: [], waiters: [], bytes: 0, timer: undefined };
      this.batches.set(eventType, batch);
    }
    const open = batch;
    const acked = new Promise<string>((resolve, reject) => open.waiters.push({ resolve, reject }));
    open.messages.push({ data: message.data, attributes: message.attributes });
    open.bytes += message.data.length;
    if (open.messages.length >= this.options.batchMaxMessages) this.flush(eventType, open);
    else open.timer ??= setTimeout(() => this.flush(eventType, open), this.options.batchMaxDelay);
    return acked;
  }

  private flush(eventType: string, batch: TopicBatch): void {
    if (this.batches.get(eventType) === batch) this.batches.delete(eventType);
    if (batch.timer) clearTimeout(batch.timer);
    const { waiters } = batch;
    const rpc = this.publisherClient()
      .then((client) => client.publish({ topic: batch.topic, messages: batch.messages }, this.callOptions))
      .then(
        ([response]) => {
          const ids = response.messageIds ?? [];
          for (let i = 0; i < waiters.length; i++) waiters[i]!.resolve(ids[i] ?? '');
          waiters.length = 0;
          batch.messages.length = 0;
        },
        (e: unknown) => {
          const err = e instanceof Error ? e : new Error(String(e));
          for (const w of waiters) w.reject(err);
        },
      );
    this.inFlight.add(rpc);
    void rpc.finally(() => this.inFlight.delete(rpc));
  }

  /** The generated client with PubSub's own settings (emulator, endpoint, channel options). */
  private publisherClient(): Promise<v1.PublisherClient> {
    this.client ??= this.pubsub
      .getClientConfig()
      .then(
        ({ port, ...rest }) =>
          new v1.PublisherClient({ ...rest, ...(port !== undefined ? { port: Number(port) } : {}) }),
      );
    return this.client;
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
    if (this.closed) return;
    this.closed = true;
    for (const [eventType, batch] of [...this.batches]) this.flush(eventType, batch);
    await Promise.allSettled([...this.inFlight]);
    await (await this.client)?.close();
    await this.pubsub.close();
  }
}

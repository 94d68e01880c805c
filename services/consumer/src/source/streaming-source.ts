import { Duration, type Message, type Subscription, type SubscriberOptions } from '@google-cloud/pubsub';
import type { Logger } from '@hourglass/common';
import { HealthSignal } from './health-signal.js';
import type { InboundMessage } from './inbound-message.js';

/**
 * nodejs-pubsub's streaming Subscriber behind the consumer's source interface
 * (`HOURGLASS_PULL=streaming`). The SDK retries a stream that ends with a retryable status, but
 * a non-retryable end (NOT_FOUND, PERMISSION_DENIED, …) closes the subscriber for good: this
 * source reopens it with a backoff (1 s doubling to 60 s) for as long as the process runs, and
 * reports a liveness failure when it has not been open for `deadAfterMs`.
 */
export interface StreamingSourceOptions {
  maxMessages: number;
  maxBytes: number;
  ackDeadlineMs: number;
  maxExtensionMs: number;
  /** Liveness fails when the stream has been closed (reopens failing) this long. */
  deadAfterMs: number;
}

const REOPEN_MIN_MS = 1000;
const REOPEN_MAX_MS = 60_000;
/** A reopened stream without an error for this long counts as healthy (it may simply have no messages). */
const SETTLED_MS = 10_000;

export function streamingOptions(o: StreamingSourceOptions): SubscriberOptions {
  const ackDeadline = Duration.from({ milliseconds: o.ackDeadlineMs });
  return {
    // A message is a bundle of up to ~100 events: these bound memory whatever the backlog.
    flowControl: { maxMessages: o.maxMessages, maxBytes: o.maxBytes, allowExcessMessages: false },
    // The client keeps extending a held message's deadline by exactly the subscription's ack
    // deadline (the lease promises others that, plus the redelivery allowance), and gives up after
    // maxAckExtension (staging takes seconds; the stuck-write check logs long before).
    minAckDeadline: ackDeadline,
    maxAckDeadline: ackDeadline,
    maxExtensionTime: Duration.from({ milliseconds: o.maxExtensionMs }),
  };
}

export class StreamingSource {
  error: Error | undefined;
  private closing = false;
  /** When the stream last closed on its own (this.now()); undefined while open. */
  private downSince: number | undefined;
  private reopenMs = REOPEN_MIN_MS;
  private reopenTimer: NodeJS.Timeout | undefined;
  private settledTimer: NodeJS.Timeout | undefined;
  private readonly health = new HealthSignal();
  private pausedBy: string | undefined;
  /** Streams reopened after a non-retryable end (tests read it). */
  reopened = 0;

  constructor(
    private readonly sub: Subscription,
    private readonly options: StreamingSourceOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(handle: (m: InboundMessage) => void): void {
    this.sub.on('message', (m: Message) => {
      this.markOpen();
      handle(inbound(m));
    });
    this.sub.on('error', (e: Error) => {
      this.error = e;
      this.health.set(false);
      this.log.error({ err: e }, 'subscription error');
    });
    this.sub.on('close', () => this.closedByStream());
    this.armSettled();
  }

  onHealth(listener: (healthy: boolean) => void): void {
    this.health.listen(listener);
  }

  private markOpen(): void {
    this.error = undefined;
    this.downSince = undefined;
    this.reopenMs = REOPEN_MIN_MS;
    if (this.pausedBy === undefined) this.health.set(true);
  }

  /** Healthy once the stream has run SETTLED_MS without an error. */
  private armSettled(): void {
    clearTimeout(this.settledTimer);
    this.settledTimer = setTimeout(() => {
      if (this.sub.isOpen && !this.closing) this.markOpen();
    }, SETTLED_MS);
    this.settledTimer.unref();
  }

  private closedByStream(): void {
    if (this.closing) return;
    this.downSince ??= this.now();
    this.health.set(false);
    clearTimeout(this.settledTimer);
    const delay = this.reopenMs;
    this.reopenMs = Math.min(REOPEN_MAX_MS, this.reopenMs * 2);
    this.log.warn({ err: this.error, reopenInMs: delay }, 'subscriber stream closed; reopening');
    this.reopenTimer = setTimeout(() => {
      if (this.closing) return;
      this.reopened++;
      this.sub.open();
      this.armSettled();
    }, delay);
  }

  problem(): string | undefined {
    if (this.pausedBy !== undefined) return `not pulling: ${this.pausedBy}`;
    if (this.downSince !== undefined) return `stream closed: ${this.error?.message ?? 'reopening'}`;
    if (this.error) return `stream error: ${this.error.message}`;
    if (!this.health.value) return 'stream not open yet';
    return undefined;
  }

  liveness(): string | undefined {
    if (this.closing || this.downSince === undefined) return undefined;
    const down = this.now() - this.downSince;
    if (down < this.options.deadAfterMs) return undefined;
    return `streaming pull closed for ${Math.round(down / 1000)} s: ${this.error?.message ?? 'cannot reopen'}`;
  }

  /**
   * Back pressure: the SDK's flow control already stops a stream whose messages stay held; the
   * source only reports itself unhealthy meanwhile, so the watermark does not take the silence
   * for an idle subscription.
   */
  pause(reason: string): void {
    this.pausedBy = reason;
    this.health.set(false);
  }

  resume(): void {
    if (this.pausedBy === undefined) return;
    this.pausedBy = undefined;
    this.armSettled();
  }

  /** The client nacks what it holds and cannot say what else was leased to the stream: undefined. */
  async close(): Promise<number | undefined> {
    this.closing = true;
    clearTimeout(this.reopenTimer);
    clearTimeout(this.settledTimer);
    await this.sub.close();
    return undefined;
  }
}

function inbound(m: Message): InboundMessage {
  return {
    id: m.id,
    data: m.data,
    attributes: m.attributes,
    publishTime: m.publishTime,
    deliveryAttempt: m.deliveryAttempt,
    ack: () => m.ack(),
    nack: () => m.nack(),
  };
}

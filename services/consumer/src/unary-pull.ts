import { type CallOptions, type ServiceError, type protos, v1 } from '@google-cloud/pubsub';
import type { Logger } from '@hourglass/common';
import type { InboundMessage } from './stager.js';

/**
 * A subscription read with unary Pull RPCs, with its own flow control, lease extension and
 * batched acks — the mechanisms nodejs-pubsub's streaming Subscriber provides, for the pull
 * mode whose redelivery we can test.
 *
 * Why not StreamingPull: on the SDK's Pub/Sub emulator, messages outstanding on a streaming pull
 * whose process is SIGKILLed are never redelivered (none of 1,000 within 240 s, ack deadline
 * 10 s, in a 60-line experiment without Hourglass), so a killed consumer loses them for good on
 * the emulator. Messages leased by a unary Pull come back at their ack deadline (all 200 held
 * by a killed puller arrived 10.0 s after the kill). Cloud Pub/Sub redelivers after the ack
 * deadline in both modes; unary pull is the one the kill tests exercise everywhere.
 */
export interface UnaryPullOptions {
  /** Full name: projects/<project>/subscriptions/<name>. */
  subscription: string;
  /** Flow control: unsettled messages held at once. */
  maxMessages: number;
  /** Flow control: unsettled bytes held at once. */
  maxBytes: number;
  /** Deadline each lease extension asks for (the subscription's ack deadline). */
  ackDeadlineMs: number;
  /** After this, a held message is no longer extended: Pub/Sub redelivers it. */
  maxExtensionMs: number;
  /** Messages asked for per Pull (Pub/Sub returns at most 1,000). */
  pullBatch: number;
  /** How long one Pull waits for messages before it is repeated (the server long-polls). */
  pullWaitMs: number;
  /**
   * false: every Pull returns at once (returnImmediately) and an empty answer is retried after a
   * short backoff. On the emulator a Pull left pending by a killed process keeps taking messages
   * that are redelivered, so the emulator gets no long polls (see consumer.ts).
   */
  longPoll: boolean;
}

interface Held {
  ackId: string;
  bytes: number;
  receivedAt: number;
}

type ReceivedMessage = protos.google.pubsub.v1.IReceivedMessage;
/**
 * The generated client's inner Pull: the public `pull()` wraps it in `.then()` for logging, which
 * drops google-gax's `cancel()`, and closing a client does not end a call in flight — so a long
 * poll could only be stopped by its deadline, which this emulator punishes (see pullWait).
 */
type PullCall = (
  request: protos.google.pubsub.v1.IPullRequest,
  options: CallOptions,
) => Promise<[protos.google.pubsub.v1.IPullResponse]> & { cancel(): void };

/** gRPC status codes this loop handles by name. */
const DEADLINE_EXCEEDED = 4;
const INVALID_ARGUMENT = 3;
/** Acks and nacks are sent in batches at most this often... */
const SETTLE_FLUSH_MS = 50;
/** ...and at most this many ids per request (Pub/Sub's request size limit allows ~2,500). */
const SETTLE_BATCH = 1000;
/**
 * Call options of acks, nacks and extensions: one bounded try each, without gax's own retries
 * (sendBatch retries twice). With gax's defaults an unreachable Pub/Sub held a consumer's
 * shutdown for the 30 s its supervisor allows (`make demo`, Ctrl-C stops the emulator too);
 * an ack that is not sent only means a redelivery, which finalize deduplicates.
 */
const SETTLE_CALL = { timeout: 10_000, retry: null };
/** Backoff after a failed Pull, doubling up to the max. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;
/** Without long polls: after an empty answer, wait this long before the next Pull, doubling up to the max. */
const EMPTY_MIN_MS = 20;
const EMPTY_MAX_MS = 250;

export class UnaryPullSource {
  private readonly held = new Map<string, Held>();
  private heldBytes = 0;
  private readonly acks: string[] = [];
  private readonly nacks: string[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private leaseTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  private capacityFreed: (() => void) | undefined;
  private cancelPull: (() => void) | undefined;
  private readonly routingHeader: Record<string, string>;
  /** The last Pull error while pulls keep failing; cleared by the next successful Pull. */
  error: Error | undefined;

  constructor(
    private readonly client: v1.SubscriberClient,
    private readonly options: UnaryPullOptions,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    // what the public pull() adds: lets Cloud Pub/Sub route the request to the subscription's region
    this.routingHeader = { 'x-goog-request-params': `subscription=${encodeURIComponent(options.subscription)}` };
  }

  private pull: Promise<PullCall> | undefined;

  private pullCall(): Promise<PullCall> {
    this.pull ??= this.client.initialize().then(() => this.client.innerApiCalls.pull as PullCall);
    return this.pull;
  }

  start(handle: (m: InboundMessage) => void): void {
    if (this.loop) return;
    this.leaseTimer = setInterval(() => void this.extendLeases(), Math.max(1000, this.options.ackDeadlineMs / 3));
    this.leaseTimer.unref();
    this.loop = this.pullLoop(handle);
  }

  /** Messages delivered and not yet acked or nacked. */
  get outstanding(): number {
    return this.held.size;
  }

  private async pullLoop(handle: (m: InboundMessage) => void): Promise<void> {
    let retryMs = RETRY_MIN_MS;
    let emptyMs = EMPTY_MIN_MS;
    while (!this.closed) {
      const room = Math.min(this.options.pullBatch, this.options.maxMessages - this.held.size);
      if (room <= 0 || this.heldBytes >= this.options.maxBytes) {
        await new Promise<void>((resolve) => (this.capacityFreed = resolve));
        continue;
      }
      let received: ReceivedMessage[];
      try {
        const call = (await this.pullCall())(
          { subscription: this.options.subscription, maxMessages: room, returnImmediately: !this.options.longPoll },
          { timeout: this.options.pullWaitMs, retry: null, otherArgs: { headers: this.routingHeader } },
        );
        this.cancelPull = () => call.cancel();
        const [response] = await call.finally(() => (this.cancelPull = undefined));
        received = response.receivedMessages ?? [];
        this.error = undefined;
        retryMs = RETRY_MIN_MS;
        if (received.length === 0 && !this.options.longPoll) {
          await this.idle(emptyMs);
          emptyMs = Math.min(EMPTY_MAX_MS, emptyMs * 2);
          continue;
        }
        emptyMs = EMPTY_MIN_MS;
      } catch (e) {
        if ((e as ServiceError).code === DEADLINE_EXCEEDED) continue; // an empty long poll
        if (this.closed) break;
        this.error = e as Error;
        this.logger.warn({ err: e, subscription: this.options.subscription, retryMs }, 'pull failed; retrying');
        await new Promise((r) => setTimeout(r, retryMs));
        retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
        continue;
      }
      for (const r of received) {
        if (!r.ackId || !r.message) continue;
        if (this.closed) {
          this.settle(r.ackId, false);
          continue;
        }
        const message = this.inbound(r);
        try {
          handle(message);
        } catch (e) {
          // never let one message stop the loop: it comes back and, if it keeps failing, dead-letters
          this.logger.error({ err: e, messageId: message.id }, 'message handler failed; nacking');
          message.nack();
        }
      }
    }
  }

  /** A pause between short polls that close() cuts short. */
  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.cancelPull = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private inbound(r: ReceivedMessage): InboundMessage {
    const ackId = r.ackId!;
    const m = r.message!;
    const data = Buffer.from(m.data ?? new Uint8Array());
    const held: Held = { ackId, bytes: data.length, receivedAt: this.now() };
    this.held.set(ackId, held);
    this.heldBytes += held.bytes;
    const seconds = Number(m.publishTime?.seconds ?? 0);
    const publishTime = m.publishTime
      ? new Date(seconds * 1000 + Math.floor((m.publishTime.nanos ?? 0) / 1e6))
      : undefined;
    return {
      id: m.messageId ?? ackId,
      data,
      attributes: { ...(m.attributes ?? {}) },
      ...(publishTime ? { publishTime } : {}),
      ...(r.deliveryAttempt ? { deliveryAttempt: r.deliveryAttempt } : {}),
      ack: () => this.settle(ackId, true),
      nack: () => this.settle(ackId, false),
    };
  }

  private settle(ackId: string, ok: boolean): void {
    const held = this.held.get(ackId);
    if (held) {
      this.held.delete(ackId);
      this.heldBytes -= held.bytes;
      const wake = this.capacityFreed;
      this.capacityFreed = undefined;
      wake?.();
    }
    (ok ? this.acks : this.nacks).push(ackId);
    if (this.acks.length + this.nacks.length >= SETTLE_BATCH) void this.flush();
    else this.flushTimer ??= setTimeout(() => void this.flush(), SETTLE_FLUSH_MS);
  }

  /** Sends queued acks and nacks (a nack is a deadline of 0: redeliver now). */
  private flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const acks = this.acks.splice(0);
    const nacks = this.nacks.splice(0);
    this.flushing = this.flushing.then(async () => {
      const subscription = this.options.subscription;
      await this.send('ack', acks, (ackIds) => this.client.acknowledge({ subscription, ackIds }, SETTLE_CALL));
      await this.send('nack', nacks, (ackIds) =>
        this.client.modifyAckDeadline({ subscription, ackIds, ackDeadlineSeconds: 0 }, SETTLE_CALL),
      );
    });
    return this.flushing;
  }

  /** Sends `ackIds` in requests of at most SETTLE_BATCH ids. */
  private async send(what: string, ackIds: string[], call: (ids: string[]) => Promise<unknown>): Promise<void> {
    for (let i = 0; i < ackIds.length; i += SETTLE_BATCH)
      await this.sendBatch(what, ackIds.slice(i, i + SETTLE_BATCH), call);
  }

  /**
   * One settle request with a retry. A batch holding an expired ack id fails as a whole
   * (INVALID_ARGUMENT): then each id is sent alone, and the expired ones are dropped — their
   * messages were redelivered, and a second staged copy is dropped at finalize.
   */
  private async sendBatch(what: string, ackIds: string[], call: (ids: string[]) => Promise<unknown>): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await call(ackIds);
        return;
      } catch (e) {
        if ((e as ServiceError).code === INVALID_ARGUMENT && ackIds.length > 1) {
          let expired = 0;
          for (const id of ackIds) await call([id]).catch(() => expired++);
          if (expired > 0) this.logger.warn({ expired, what }, 'settling expired ack ids: their messages come back');
          return;
        }
        if (attempt === 2) {
          this.logger.warn({ err: e, what, ids: ackIds.length }, 'settle failed: these messages come back');
          return;
        }
        await new Promise((r) => setTimeout(r, RETRY_MIN_MS * 2 ** attempt));
      }
    }
  }

  /** Keeps every held message's deadline at the ack deadline, until its maximum extension. */
  private async extendLeases(): Promise<void> {
    const now = this.now();
    const ackIds: string[] = [];
    for (const h of this.held.values()) if (now - h.receivedAt < this.options.maxExtensionMs) ackIds.push(h.ackId);
    const ackDeadlineSeconds = Math.ceil(this.options.ackDeadlineMs / 1000);
    await this.send('extend', ackIds, (ids) =>
      this.client.modifyAckDeadline(
        { subscription: this.options.subscription, ackIds: ids, ackDeadlineSeconds },
        SETTLE_CALL,
      ),
    );
  }

  /**
   * Stops pulling, sends every queued ack, releases (nacks) what is still held, closes the
   * client. The long poll in flight is cancelled first: nacked messages handed to it would
   * only come back at their deadline.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.capacityFreed?.();
    this.cancelPull?.();
    await this.loop?.catch(() => undefined);
    for (const ackId of [...this.held.keys()]) this.settle(ackId, false);
    await this.flush();
    await this.client.close();
  }
}

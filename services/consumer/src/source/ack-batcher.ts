import type { ServiceError, v1 } from '@google-cloud/pubsub';
import type { Logger } from '@hourglass/common';

/** gRPC status: a batch holding an expired ack id fails as a whole. */
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
/** Backoff between a settle request's tries, doubling (as a failed Pull's). */
const SETTLE_RETRY_MIN_MS = 100;

/** A unary-pull subscription's acks, nacks and lease extensions, sent in batches. */
export class AckBatcher {
  private readonly acks: string[] = [];
  private readonly nacks: string[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** Ids in an extension request not answered yet. */
  private readonly extending = new Set<string>();
  /**
   * Ids nacked while their extension was in flight: Pub/Sub may apply the two in either order,
   * and an extension applied last would hold the message for another deadline instead of
   * handing it back. The nack is sent again once the extension is answered.
   */
  private readonly nackedWhileExtending = new Set<string>();

  constructor(
    private readonly client: v1.SubscriberClient,
    private readonly subscription: string,
    private readonly logger: Logger,
  ) {}

  /** Queues an ack (ok) or a nack; sent within SETTLE_FLUSH_MS, or at once when a batch is full. */
  queue(ackId: string, ok: boolean): void {
    (ok ? this.acks : this.nacks).push(ackId);
    if (!ok && this.extending.has(ackId)) this.nackedWhileExtending.add(ackId);
    if (this.acks.length + this.nacks.length >= SETTLE_BATCH) void this.flush();
    else this.flushTimer ??= setTimeout(() => void this.flush(), SETTLE_FLUSH_MS);
  }

  /** Sends queued acks and nacks (a nack is a deadline of 0: redeliver now). */
  flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const acks = this.acks.splice(0);
    const nacks = this.nacks.splice(0);
    this.flushing = this.flushing.then(async () => {
      const subscription = this.subscription;
      await this.send('ack', acks, (ackIds) => this.client.acknowledge({ subscription, ackIds }, SETTLE_CALL));
      await this.send('nack', nacks, (ackIds) =>
        this.client.modifyAckDeadline({ subscription, ackIds, ackDeadlineSeconds: 0 }, SETTLE_CALL),
      );
    });
    return this.flushing;
  }

  /**
   * Sets the deadline of `ackIds` to `ackDeadlineSeconds` from now. Each request (of at most
   * SETTLE_BATCH ids) leaves out the ids no longer `held` when it is sent: one acked or nacked
   * since the list was made must not be extended.
   */
  extend(ackIds: string[], ackDeadlineSeconds: number, held: (ackId: string) => boolean = () => true): Promise<void> {
    return this.send('extend', ackIds, async (ids) => {
      const live = ids.filter(held);
      if (live.length === 0) return;
      for (const id of live) this.extending.add(id);
      try {
        await this.client.modifyAckDeadline(
          { subscription: this.subscription, ackIds: live, ackDeadlineSeconds },
          SETTLE_CALL,
        );
      } finally {
        for (const id of live) {
          this.extending.delete(id);
          if (this.nackedWhileExtending.delete(id)) this.queue(id, false);
        }
      }
    });
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
        await new Promise((r) => setTimeout(r, SETTLE_RETRY_MIN_MS * 2 ** attempt));
      }
    }
  }
}

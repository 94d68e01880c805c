import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ServiceError, v1 } from '@google-cloud/pubsub';
import type { Logger } from '@hourglass/common';
import { FlowBudget } from './flow-budget.js';
import { AckBatcher } from './ack-batcher.js';
import { HealthSignal } from './health-signal.js';
import { LONG_POLL_EMPTY_FLOOR_MS, PAUSED_RECHECK_MS, PollPacing } from './poll-pacing.js';
import type { InboundMessage } from './inbound-message.js';
import { PullCalls, type ReceivedMessage } from './pull-calls.js';

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
  /** Flow control: unsettled messages (and bytes) held at once, shared with the process's other subscriptions. */
  budget: FlowBudget;
  /** Deadline each lease extension asks for (the subscription's ack deadline). */
  ackDeadlineMs: number;
  /**
   * How long after a failed Pull the messages in an answer it lost may still come back: the ack
   * deadline plus Pub/Sub's redelivery delay (HOURGLASS_REDELIVERY_ALLOWANCE; default: the ack
   * deadline alone). The source is not caught up before this has passed since the last failure.
   */
  redeliveryBoundMs?: number;
  /** After this, a held message is no longer extended: Pub/Sub redelivers it. */
  maxExtensionMs: number;
  /** Messages asked for per Pull (Pub/Sub returns at most 1,000). */
  pullBatch: number;
  /** How long one Pull waits for messages before it is repeated (the server long-polls). */
  pullWaitMs: number;
  /**
   * false: every Pull returns at once (returnImmediately) and an empty answer is retried after a
   * short backoff. On the emulator a Pull left pending by a killed process keeps taking messages
   * that are redelivered, so the emulator gets no long polls (see SourceConfig.longPoll in config.ts).
   */
  longPoll: boolean;
  /**
   * Short polls: the least wait after an answer with fewer messages than asked (default 20 ms;
   * shortPollFloorMs() scales it with the process's subscriptions; poll-pacing.ts).
   */
  shortPollFloorMs?: number;
}

interface Held {
  ackId: string;
  bytes: number;
  receivedAt: number;
}

/** What one reserved Pull came to: no room (or closed), an answer, or a failure. */
type PullOutcome =
  | { kind: 'none' }
  | { kind: 'answered'; received: ReceivedMessage[]; room: number; pausesAtSend: number }
  | { kind: 'failed'; error: unknown; pausesAtSend: number };
/** A message's data as a Buffer over the same bytes (protobufjs gives a Buffer in Node; a Uint8Array elsewhere). */
function bytesOf(data: Uint8Array | string | null | undefined): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data ?? '', 'base64');
}

/** gRPC status codes this loop handles by name. */
const DEADLINE_EXCEEDED = 4;
/** A short poll (returnImmediately) unanswered this long: Pub/Sub is not answering, the source is unhealthy. */
const SHORT_POLL_ANSWER_MS = 5000;
/** A Pull still in flight this long after its own deadline: the loop is stuck (liveness). */
const STUCK_MARGIN_MS = 60_000;

export class UnaryPullSource {
  private readonly held = new Map<string, Held>();
  private readonly settler: AckBatcher;
  private leaseTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  /** The Pulls in flight: at most two, the one awaited and the one sent ahead. */
  private readonly calls: PullCalls;
  /** Cuts short every wait: a pause between polls, a flow-budget reservation. */
  private readonly waitCancels = new Set<() => void>();
  /** The last Pull error while pulls keep failing; cleared by the next successful Pull. */
  error: Error | undefined;
  /** Back pressure: set while the store fails (no Pull until resume()). */
  private paused: { reason: string; resume: () => void; resumed: Promise<void> } | undefined;
  /** Why the loop ended though close() was not called (it never should). */
  private stoppedBy: unknown;
  private loopEnded = false;
  /**
   * Readable and caught up: true once a Pull found nothing more waiting (a short poll answered
   * empty, a long poll with fewer messages than it asked for), until a Pull fails, goes unanswered, or the source is paused.
   * After an outage the backlog must drain first: messages pulled from it come in no particular
   * order, and the watermark must not pass the ones still waiting (see ReplicaWatermark).
   */
  private readonly health = new HealthSignal();
  /** A Pull has succeeded since the source started. */
  private answered = false;
  /** How many times pause() took effect: a Pull sent before the latest pause proves nothing after it. */
  private pauses = 0;
  /** When a Pull last failed (this.now()). */
  private failedAt = -Infinity;

  constructor(
    private readonly client: v1.SubscriberClient,
    private readonly options: UnaryPullOptions,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.settler = new AckBatcher(client, options.subscription, logger);
    this.calls = new PullCalls(client, options.subscription, options, now);
  }

  start(handle: (m: InboundMessage) => void): void {
    if (this.loop) return;
    this.leaseTimer = setInterval(() => void this.extendLeases(), Math.max(1000, this.options.ackDeadlineMs / 3));
    this.leaseTimer.unref();
    this.loop = this.pullLoop(handle).then(
      () => {
        this.loopEnded = true;
      },
      (e: unknown) => {
        this.loopEnded = true;
        this.stoppedBy = e;
        this.logger.error({ err: e, subscription: this.options.subscription }, 'pull loop stopped');
      },
    );
  }

  /** Calls `listener` whenever the source turns healthy (a Pull succeeded) or unhealthy. */
  onHealth(listener: (healthy: boolean) => void): void {
    this.health.listen(listener);
  }

  /** Why the subscription cannot be read now (readiness), or undefined. */
  problem(): string | undefined {
    if (this.paused) return `not pulling: ${this.paused.reason}`;
    if (this.error) return `pull failing: ${this.error.message}`;
    if (!this.answered) return 'no successful Pull yet';
    return undefined;
  }

  /** Why the loop can no longer work without a restart (liveness), or undefined. */
  liveness(): string | undefined {
    if (this.closed) return undefined;
    if (this.loopEnded)
      return `pull loop stopped: ${String((this.stoppedBy as Error | undefined)?.message ?? this.stoppedBy)}`;
    const sent = this.calls.oldestSentAt();
    if (sent !== undefined && this.now() - sent > this.options.pullWaitMs + STUCK_MARGIN_MS) {
      return `a Pull has been in flight for ${Math.round((this.now() - sent) / 1000)} s, past its deadline`;
    }
    return undefined;
  }

  /**
   * Back pressure: no new Pull until resume() (the messages held keep their leases extended).
   * Used while the store fails, so what waits stays in Pub/Sub rather than in memory.
   */
  pause(reason: string): void {
    if (this.paused || this.closed) return;
    let resume!: () => void;
    const resumed = new Promise<void>((r) => (resume = r));
    this.paused = { reason, resume, resumed };
    this.pauses++;
    this.health.set(false);
    this.logger.warn({ subscription: this.options.subscription, reason }, 'pulling paused');
  }

  resume(): void {
    const paused = this.paused;
    if (!paused) return;
    this.paused = undefined;
    paused.resume();
    this.logger.info({ subscription: this.options.subscription }, 'pulling resumed');
  }

  /** Messages delivered and not yet acked or nacked. */
  get outstanding(): number {
    return this.held.size;
  }

  /**
   * Pulls and delivers until close(). After an answer with messages, the next Pull is sent before
   * the answer is handed to the stager, so Pub/Sub prepares it while this process stages: the
   * emulator answers a short poll with at most 100 messages, 4-10 ms a Pull, and one at a time
   * this thread sat idle 26% of a warm 1 M event drain. At most two Pulls are in flight, and the
   * loop handles the answer to the one sent ahead only after delivering the answer before it, so
   * a drained answer still means every message dequeued before it is in the stager (drained()).
   */
  private async pullLoop(handle: (m: InboundMessage) => void): Promise<void> {
    const pacing = new PollPacing(this.options.longPoll, this.options.shortPollFloorMs);
    let ahead: Promise<PullOutcome> | undefined;
    // after close(), a Pull sent ahead is still answered: its messages are handed back (deliver)
    while (!this.closed || ahead) {
      if (this.paused && !ahead) {
        await Promise.race([this.paused.resumed, this.idle(PAUSED_RECHECK_MS)]);
        continue;
      }
      const outcome = await (ahead ?? this.reserveAndPull());
      ahead = undefined;
      if (outcome.kind === 'none') continue;
      if (outcome.kind === 'failed') {
        const e = outcome.error;
        if ((e as ServiceError).code === DEADLINE_EXCEEDED) {
          this.drained(outcome.pausesAtSend); // an empty long poll: nothing was waiting
          await this.idle(LONG_POLL_EMPTY_FLOOR_MS); // an empty long poll
          continue;
        }
        if (this.closed) break;
        this.error = e as Error;
        this.failedAt = this.now();
        this.health.set(false);
        const retryMs = pacing.afterFailure();
        this.logger.warn({ err: e, subscription: this.options.subscription, retryMs }, 'pull failed; retrying');
        await this.idle(retryMs);
        continue;
      }
      const { received, room } = outcome;
      pacing.answered();
      const valid = received.filter((r) => r.ackId && r.message);
      // drained, nothing more was waiting: a short poll answered empty (the emulator may answer a
      // short poll with part of a backlog), a long poll with fewer messages than it asked for
      if (this.options.longPoll ? received.length < room : received.length === 0) this.drained(outcome.pausesAtSend);
      let bytes = 0;
      for (const r of valid) bytes += r.message!.data?.length ?? 0;
      this.options.budget.received(room, valid.length, bytes);
      if (valid.length === 0) {
        await this.idle(pacing.afterEmpty());
        continue;
      }
      // a process of many subscriptions: a drained short poll waits its share before the next
      const wait = pacing.afterMessages(received.length < room);
      if (wait === 0 && !this.closed && !this.paused) {
        ahead = this.reserveAndPull();
        await nextTurn(); // the Pull is on its way (its sending takes a few promise turns) before staging blocks
      }
      this.deliver(valid, handle);
      if (wait > 0) await this.idle(wait);
    }
  }

  /** Reserves room in the flow budget, then sends one Pull for it. */
  private async reserveAndPull(): Promise<PullOutcome> {
    const reservation = this.options.budget.reserve(this.options.pullBatch);
    this.waitCancels.add(reservation.cancel);
    const room = await reservation.granted;
    this.waitCancels.delete(reservation.cancel);
    // paused while waiting for room (a Pull sent ahead may wait for it): no Pull until resume()
    if (room === 0 || this.closed || this.paused) {
      this.options.budget.received(room, 0, 0);
      return { kind: 'none' };
    }
    const pausesAtSend = this.pauses;
    try {
      return { kind: 'answered', received: await this.pullOnce(room), room, pausesAtSend };
    } catch (error) {
      this.options.budget.received(room, 0, 0);
      return { kind: 'failed', error, pausesAtSend };
    }
  }

  /**
   * A Pull found nothing more waiting: the source is caught up, unless
   *  - it is paused, or was paused after that Pull was sent: what piled up in Pub/Sub meanwhile is
   *    unread (a short poll in flight at pause() answered empty, and the store outage that caused
   *    the pause then ended with the replica "idle": its watermark jumped over the backlog, which
   *    came in late: 16,860 events in tests/faults/store-outage.test.ts);
   *  - a Pull failed less than `redeliveryBoundMs` ago: its lost answer may have held messages,
   *    which come back only after their ack deadline, when Pub/Sub gets to redeliver them (the
   *    emulator some seconds after it: pull-outage counted 191 late events with the plain deadline).
   */
  private drained(pausesAtSend: number): void {
    if (this.paused || pausesAtSend !== this.pauses) return;
    const bound = this.options.redeliveryBoundMs ?? this.options.ackDeadlineMs;
    if (this.now() - this.failedAt >= bound) this.health.set(true);
  }

  /** One Pull of at most `room` messages; marks the source healthy when it answers. */
  private async pullOnce(room: number): Promise<ReceivedMessage[]> {
    // a short poll answers at once: one that does not means Pub/Sub is unreachable or frozen
    const unanswered = this.options.longPoll
      ? undefined
      : setTimeout(() => this.health.set(false), SHORT_POLL_ANSWER_MS);
    try {
      const received = await this.calls.send(room);
      this.error = undefined;
      this.answered = true;
      return received;
    } finally {
      clearTimeout(unanswered);
    }
  }

  private deliver(received: ReceivedMessage[], handle: (m: InboundMessage) => void): void {
    for (const r of received) {
      if (this.closed) {
        this.track(r);
        this.settle(r.ackId!, false);
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

  /** A pause between short polls that close() cuts short. */
  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cut = (): void => {
        clearTimeout(timer);
        this.waitCancels.delete(cut);
        resolve();
      };
      const timer = setTimeout(cut, ms);
      this.waitCancels.add(cut);
    });
  }

  /** Counts a received message as held (the budget already has it). */
  private track(r: ReceivedMessage): void {
    this.held.set(r.ackId!, { ackId: r.ackId!, bytes: r.message!.data?.length ?? 0, receivedAt: this.now() });
  }

  private inbound(r: ReceivedMessage): InboundMessage {
    const ackId = r.ackId!;
    const m = r.message!;
    // a view of the Pull's answer, not a copy: the flow budget already counts these bytes, held until acked
    const data = bytesOf(m.data);
    this.track(r);
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
      this.options.budget.release(held.bytes);
    }
    this.settler.queue(ackId, ok);
  }

  /** Keeps every held message's deadline at the ack deadline, until its maximum extension. */
  private async extendLeases(): Promise<void> {
    const now = this.now();
    const ackIds: string[] = [];
    for (const h of this.held.values()) if (now - h.receivedAt < this.options.maxExtensionMs) ackIds.push(h.ackId);
    await this.settler.extend(ackIds, Math.ceil(this.options.ackDeadlineMs / 1000), (id) => this.held.has(id));
  }

  /**
   * Stops pulling, sends every queued ack, releases (nacks) what is still held, closes the
   * client. A long poll in flight is cancelled first: nacked messages handed to it would only
   * come back at their deadline. Short polls in flight are answered, and their messages nacked.
   */
  async close(): Promise<number | undefined> {
    if (this.closed) return 0;
    this.closed = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.paused?.resume();
    for (const cancel of [...this.waitCancels]) cancel();
    // a long poll cancelled in flight may have had messages leased to it: they come back at their
    // deadline. A short poll answers at once: the loop hands its messages back (deliver), unless
    // Pub/Sub does not answer within SHORT_POLL_ANSWER_MS.
    const cut = this.options.longPoll ? this.calls.size : 0;
    await this.calls.stop(this.options.longPoll ? 0 : SHORT_POLL_ANSWER_MS);
    await this.loop?.catch(() => undefined);
    const released = this.held.size;
    for (const ackId of [...this.held.keys()]) this.settle(ackId, false);
    await this.settler.flush();
    await this.client.close();
    return released + cut;
  }
}

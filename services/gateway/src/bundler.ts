import type { Span } from '@opentelemetry/api';
import type { Clock, Duration, Logger } from '@hourglass/common';
import { encodeConcatenated, type BundleCodec, type SchemaVersion } from '@hourglass/schemas';
import type { BatchAnswer, EventProblem } from './batch-answer.js';
import type { GatewayMetrics } from './metrics.js';
import type { OutstandingBudget } from './outstanding.js';
import type { NewestVersionEncoder } from './reencode.js';
import type { MessagePublisher } from './publisher.js';
import { BufferPool } from './buffer-pool.js';
import { datumEventId } from './prepare.js';
import { AdaptiveLinger } from './linger.js';
import { endPublishSpan } from './spans.js';
import type { RequestTrace } from './traceparent.js';

/**
 * Packs events of one writer schema, from any number of concurrent requests, into one
 * Pub/Sub message (encodeBundle) and settles every member with the message's result.
 *
 * The publish deadline counts from the earliest member's gateway_ts: an event whose
 * publish has not been acked within `publishTimeout` of its receive time is answered
 * `retry`, never `accepted`, even if the ack arrives a moment later. The consumer's
 * idle watermark relies on exactly this bound.
 */
export interface BundlerOptions extends BundlingConfig {
  publisher: MessagePublisher;
  budget: OutstandingBudget;
  clock: Clock;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Re-encodes unbundled types' older versions to the newest (their topic schema's only revision). */
  newest?: NewestVersionEncoder;
}

/** The bundler's settings (from the gateway's config: gatewayParts in config.ts). */
export interface BundlingConfig {
  maxEvents: number;
  maxBytes: number;
  /** The base linger; a type whose bundles stay small waits longer, up to maxLinger (linger.ts). */
  linger: Duration;
  maxLinger: Duration;
  /** Events a bundle should gather before a longer linger stops paying off. */
  lingerTargetEvents: number;
  codec: BundleCodec;
  publishTimeout: Duration;
  /** Types published one event per message (plain Avro, for a topic schema or a BigQuery subscription). */
  unbundledTypes: ReadonlySet<string>;
}

class OpenBundle {
  /**
   * The members' datums, copied back to back as they join (bytes [0, bytes)): the message's data
   * with no per-event views to keep or concatenate. Grown by doubling; sized from the type's last bundle.
   */
  data: Buffer;
  readonly answers: BatchAnswer[] = [];
  readonly indexes: number[] = [];
  bytes = 0;
  minGatewayTs = Number.MAX_SAFE_INTEGER;
  timer: NodeJS.Timeout | undefined;
  /** Events from requests other than the opener's, and those that came once the base linger had passed. */
  joined = 0;
  joinedAfterBase = 0;

  constructor(
    readonly writer: SchemaVersion,
    readonly maxEvents: number,
    readonly linger: Duration,
    readonly openedAt: number,
    readonly opener: BatchAnswer,
    readonly firstEventId: string,
    readonly traceparent: string,
    /** With tracing on: the span from this bundle's opening to its publish's end. */
    readonly publishSpan: Span | undefined,
    /** Its first buffer (from the bundler's pool). */
    data: Buffer,
  ) {
    this.data = data;
  }

  append(source: Buffer, start: number, end: number, buffers: BufferPool): void {
    const need = this.bytes + end - start;
    if (need > this.data.length) {
      const grown = buffers.take(Math.max(need, 2 * this.data.length));
      this.data.copy(grown, 0, 0, this.bytes);
      buffers.give(this.data);
      this.data = grown;
    }
    this.bytes += source.copy(this.data, this.bytes, start, end);
  }
}

/** A new bundle's first buffer: its type's last bundle size and a quarter more, within these bounds. */
const MIN_BUNDLE_CAPACITY = 1024;
const MAX_BUNDLE_CAPACITY = 1024 * 1024;
/** Bundle buffers kept for reuse: about the bundles of 150 busy types in flight at once. */
const BUNDLE_BUFFERS_BYTES = 16 * 1024 * 1024;
/** What a settled bundle holds instead of its buffer (given back to the pool, or left to the GC). */
const EMPTY_DATA = Buffer.alloc(0);

const TIMEOUT_PROBLEM_REASON = 'Pub/Sub did not ack within the publish timeout; retry with the same id';

export class Bundler {
  private readonly open = new Map<string, OpenBundle>();
  private readonly lingers: AdaptiveLinger;
  /** Each writer's last bundle size in bytes (the next one's first buffer). */
  private readonly lastBytes = new Map<string, number>();
  /** Bundle buffers back from settled publishes, for the next bundles. */
  private readonly buffers = new BufferPool(BUNDLE_BUFFERS_BYTES);
  private inFlight = 0;
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  private lastFailureLog = 0;
  private failuresSinceLog = 0;
  private readonly timeoutProblem: EventProblem = { code: 'PUBLISH_TIMEOUT', reason: TIMEOUT_PROBLEM_REASON };
  private readonly flushOnLinger = (bundle: OpenBundle): void => {
    bundle.timer = undefined;
    if (this.open.get(bundle.writer.fingerprint) === bundle) this.flush(bundle);
  };

  constructor(private readonly options: BundlerOptions) {
    this.lingers = new AdaptiveLinger({
      base: options.linger,
      max: options.maxLinger,
      targetEvents: options.lingerTargetEvents,
    });
  }

  /** Adds one encoded event; its result arrives through `answer.settle(index, ...)`. */
  add(
    writer: SchemaVersion,
    datum: Buffer,
    gatewayTs: number,
    trace: RequestTrace,
    answer: BatchAnswer,
    index: number,
  ): void {
    this.addRange(writer, datum, 0, datum.length, gatewayTs, trace, answer, index);
  }

  /** As add(), the datum being source[start, end): its bytes are copied into the bundle. */
  addRange(
    writer: SchemaVersion,
    source: Buffer,
    start: number,
    end: number,
    gatewayTs: number,
    trace: RequestTrace,
    answer: BatchAnswer,
    index: number,
  ): void {
    const newest =
      this.options.newest?.empty === false
        ? this.options.newest.toNewest(writer, source.subarray(start, end))
        : undefined;
    if (newest) {
      writer = newest.writer;
      source = newest.datum;
      start = 0;
      end = source.length;
    }
    const key = writer.fingerprint;
    let bundle = this.open.get(key);
    // The linger is a bound, not only a timer: while the event loop works through a burst
    // of requests its timers wait, so a bundle whose linger has run out by the clock goes
    // now, before the next event joins it.
    if (
      bundle &&
      (bundle.bytes + end - start > this.options.maxBytes || gatewayTs - bundle.minGatewayTs >= bundle.linger)
    ) {
      this.flush(bundle);
      bundle = undefined;
    }
    if (!bundle) {
      const maxEvents = this.options.unbundledTypes.has(writer.eventType) ? 1 : this.options.maxEvents;
      const { traceparent, publishSpan } = trace.openBundle(writer.eventType);
      const firstEventId = datumEventId(source, start);
      const last = maxEvents === 1 ? end - start : (this.lastBytes.get(key) ?? 0) * 1.25;
      const capacity = Math.min(MAX_BUNDLE_CAPACITY, Math.max(MIN_BUNDLE_CAPACITY, end - start, Math.ceil(last)));
      const linger = this.lingers.lingerFor(key);
      bundle = new OpenBundle(
        writer,
        maxEvents,
        linger,
        gatewayTs,
        answer,
        firstEventId,
        traceparent,
        publishSpan,
        this.buffers.take(capacity),
      );
      this.open.set(key, bundle);
      if (maxEvents > 1 && !this.draining && linger > 0) {
        bundle.timer = setTimeout(this.flushOnLinger, linger, bundle);
      }
    } else if (answer !== bundle.opener) {
      bundle.joined++;
      if (gatewayTs - bundle.openedAt >= this.options.linger) bundle.joinedAfterBase++;
    }
    bundle.append(source, start, end, this.buffers);
    bundle.answers.push(answer);
    bundle.indexes.push(index);
    if (gatewayTs < bundle.minGatewayTs) bundle.minGatewayTs = gatewayTs;
    if (bundle.answers.length >= bundle.maxEvents || this.draining || bundle.linger === 0) this.flush(bundle);
  }

  /** Shutdown: send every open bundle now and stop lingering. */
  drain(): void {
    this.draining = true;
    for (const bundle of [...this.open.values()]) this.flush(bundle);
  }

  /** Resolves when no bundle is open or in flight. */
  idle(): Promise<void> {
    if (this.open.size === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private flush(bundle: OpenBundle): void {
    if (this.open.get(bundle.writer.fingerprint) === bundle) this.open.delete(bundle.writer.fingerprint);
    if (bundle.timer) clearTimeout(bundle.timer);
    const { clock, metrics, budget } = this.options;
    const eventType = bundle.writer.eventType;
    const count = bundle.answers.length;
    const data = bundle.data;
    const deadline = bundle.minGatewayTs + this.options.publishTimeout;
    const remaining = deadline - clock.now();
    if (remaining <= 0) {
      // Already too late to be acked within the bound: publishing would only make a duplicate.
      budget.release(bundle.bytes, count);
      this.settle(bundle, this.timeoutProblem);
      this.buffers.give(data);
      this.endSpan(bundle, count, this.timeoutProblem);
      this.checkIdle();
      return;
    }
    let encoded;
    try {
      encoded = encodeConcatenated({
        writer: bundle.writer,
        raw: bundle.data.subarray(0, bundle.bytes),
        count,
        firstEventId: bundle.firstEventId,
        minGatewayTs: bundle.minGatewayTs,
        codec: bundle.maxEvents === 1 ? 'null' : this.options.codec,
        traceparent: bundle.traceparent,
      });
    } catch (e) {
      this.options.logger.error({ err: e, eventType }, 'bundle encoding failed');
      budget.release(bundle.bytes, count);
      const problem: EventProblem = { code: 'INTERNAL', reason: 'internal error; retry with the same id' };
      this.settle(bundle, problem);
      this.buffers.give(data);
      this.endSpan(bundle, count, problem);
      this.checkIdle();
      return;
    }
    const startedAt = clock.now();
    const age = startedAt - bundle.openedAt;
    if (bundle.maxEvents > 1) {
      this.lastBytes.set(bundle.writer.fingerprint, bundle.bytes);
      const { linger, joined, joinedAfterBase } = bundle;
      if (!this.draining) this.lingers.observe(bundle.writer.fingerprint, { linger, age, joined, joinedAfterBase });
    }
    metrics.bundle(eventType, count, encoded.data.length, age);
    this.inFlight++;
    let answered = false;
    const timer = setTimeout(() => {
      answered = true;
      this.settle(bundle, this.timeoutProblem);
    }, remaining);
    const done = (problem: EventProblem | undefined, messageId?: string): void => {
      this.endSpan(bundle, count, problem, messageId);
      clearTimeout(timer);
      budget.release(bundle.bytes, count);
      this.inFlight--;
      const now = clock.now();
      if (problem === undefined) metrics.publishLatency(eventType, now - startedAt);
      if (!answered) {
        answered = true;
        // An ack that comes after the deadline is not good enough for an `accepted` answer.
        this.settle(bundle, problem ?? (now > deadline ? this.timeoutProblem : undefined));
      }
      // The publish has settled: the client no longer reads the message's data, a view of this buffer.
      this.buffers.give(data);
      this.checkIdle();
    };
    let publishing: Promise<string>;
    try {
      publishing = this.options.publisher.publish(eventType, encoded);
    } catch (e) {
      publishing = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    publishing.then(
      (messageId) => done(undefined, messageId),
      (e: unknown) => {
        this.logPublishFailure(e, eventType, count);
        done({
          code: 'PUBLISH_FAILED',
          reason: `Pub/Sub did not accept the publish${grpcStatusName(e)}; retry with the same id`,
        });
      },
    );
  }

  /** During an outage every bundle fails: log the first failure, then one line per second with a count. */
  private logPublishFailure(e: unknown, eventType: string, events: number): void {
    const now = Date.now();
    this.failuresSinceLog++;
    if (now - this.lastFailureLog < 1000) return;
    const grpcCode = (e as { code?: unknown }).code;
    const message = e instanceof Error ? e.message.slice(0, 300) : String(e).slice(0, 300);
    this.options.logger.warn(
      { eventType, events, grpcCode, failedPublishes: this.failuresSinceLog, error: message },
      'publish failed',
    );
    this.lastFailureLog = now;
    this.failuresSinceLog = 0;
  }

  private settle(bundle: OpenBundle, problem: EventProblem | undefined): void {
    const { answers, indexes } = bundle;
    for (let i = 0; i < answers.length; i++) answers[i]!.settle(indexes[i]!, problem);
    this.options.metrics.events(bundle.writer.eventType, problem ? 'retry' : 'accepted', answers.length);
    answers.length = 0;
    indexes.length = 0;
    bundle.data = EMPTY_DATA;
  }

  private endSpan(bundle: OpenBundle, events: number, problem: EventProblem | undefined, messageId?: string): void {
    if (!bundle.publishSpan) return;
    endPublishSpan(bundle.publishSpan, { events, bytes: bundle.bytes }, { messageId, problem: problem?.code });
  }

  private checkIdle(): void {
    if (this.open.size > 0 || this.inFlight > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

const GRPC_STATUS_NAMES: Record<number, string> = {
  1: 'CANCELLED',
  2: 'UNKNOWN',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  16: 'UNAUTHENTICATED',
};

/** Only the gRPC status name goes to clients: enough to tell outage from misconfiguration, no internals. */
function grpcStatusName(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  const name = typeof code === 'number' ? GRPC_STATUS_NAMES[code] : undefined;
  return name ? ` (${name})` : '';
}

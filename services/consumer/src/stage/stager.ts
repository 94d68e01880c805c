import type { SpanContext } from '@opentelemetry/api';
import type { Clock, Logger } from '@hourglass/common';
import { HourglassError } from '@hourglass/common';
import type { SchemaRegistry } from '@hourglass/schemas';
import { type ObjectStore, byteLengthOf, joinedBytes } from '@hourglass/storage';
import {
  GroupedOcfWriter,
  assignWindow,
  schemaTextOf,
  syncMarkerFor,
  stagedFileName,
  type IntervalWindow,
  routeEvent,
} from '@hourglass/bucket-format';
import type { StageConfig, TypeScope } from '../config.js';
import type { ConsumerMetrics } from '../metrics.js';
import type { InboundMessage } from '../source/inbound-message.js';
import { WindowTraceLinks, endReceiveSpan, endSpan, noteReceived, startReceiveSpan, startStageSpan } from '../spans.js';
import type { ReplicaWatermark } from '../watermark/replica-watermark.js';
import { Acknowledger, type MessageTracker } from './ack-tracker.js';
import { deadLetter } from './dead-letter.js';
import { type DecodedMessage, MessageDecoder } from './decode.js';
import { type StagerStats, newStagerStats } from './stats.js';
import { ReceiveLag } from './receive-lag.js';
import { WriteRetry } from './write-retry.js';

export type { InboundMessage } from '../source/inbound-message.js';
export type { StagerStats } from './stats.js';

/**
 * Staging for one event type on one replica: decode each Pub/Sub message, route its events
 * to windows, append them to in-memory part files (grouped by event id hash), and write each part file to
 * `_staging/...` when it reaches its event, byte or age limit. A message is acked only when
 * every part file holding one of its events is durable (end-to-end acknowledgement, ack-tracker.ts).
 * A write that fails for a temporary reason (store down, lease not renewable) is retried with a
 * backoff while its messages stay held (write-retry.ts): nothing is nacked for it. Undecodable
 * messages go to `_deadletter/` and are acked (dead-letter.ts).
 */

export interface StagerDeps {
  store: ObjectStore;
  registry: SchemaRegistry;
  clock: Clock;
  logger: Logger;
  metrics: ConsumerMetrics;
  watermark: ReplicaWatermark;
  /** The last window known closed for the type (routing never targets it or anything before). */
  lastClosed: () => IntervalWindow | undefined;
  /** Resolves when this replica's lease counts for others; rejects with LEASE_EXPIRED if it cannot. */
  ensureLease: () => Promise<void>;
  /** Told each message's receive lag (receive-lag.ts), so finalize gives way while staging falls behind. */
  pacer?: { observe(lagMs: number): void };
}

interface PartBuffer {
  window: IntervalWindow;
  late: boolean;
  /** Datums grouped by the hash of their event id, for shard jobs' ranged reads (grouped-ocf.ts in bucket-format). */
  writer: GroupedOcfWriter;
  events: number;
  minTs: number;
  openedAt: number;
  /** When its write started (clock ms). */
  flushedAt: number;
  trackers: MessageTracker[];
  /** With tracing on: the recorded receive spans of its messages (the stage span's parent and links). */
  received: SpanContext[] | undefined;
}

export class Stager {
  readonly stats: StagerStats = newStagerStats();
  /** Stage spans recorded per window, for the finalize span's links (spans.ts). */
  readonly traceLinks = new WindowTraceLinks();
  private readonly open = new Map<string, PartBuffer>();
  private readonly writing = new Set<PartBuffer>();
  private readonly writes = new Set<Promise<void>>();
  /** Extra watermark holds (e.g. an orphan being moved): gateway_ts → count. */
  private readonly holds = new Map<number, number>();
  private seq = 0;
  private draining = false;
  private readonly decoder: MessageDecoder;
  private readonly acknowledger: Acknowledger;
  private readonly retry: WriteRetry;
  private readonly receiveLag = new ReceiveLag();

  constructor(
    private readonly scope: TypeScope,
    private readonly config: StageConfig,
    private readonly deps: StagerDeps,
  ) {
    const { eventType } = scope;
    const { clock, logger, metrics } = deps;
    this.decoder = new MessageDecoder(eventType, deps.registry, clock);
    this.acknowledger = new Acknowledger({
      eventType,
      maxHoldMs: config.maxHoldMs,
      clock,
      logger,
      metrics,
      stats: this.stats,
    });
    this.retry = new WriteRetry({
      eventType,
      writeAttempts: config.writeAttempts,
      draining: () => this.draining,
      logger,
      metrics,
      stats: this.stats,
    });
  }

  /** Smallest gateway_ts this replica holds unstaged (buffers, writes in flight, holds). */
  heldMin(): number | undefined {
    let min = Infinity;
    for (const b of this.open.values()) if (b.minTs < min) min = b.minTs;
    for (const b of this.writing) if (b.minTs < min) min = b.minTs;
    for (const ts of this.holds.keys()) if (ts < min) min = ts;
    return min === Infinity ? undefined : min;
  }

  heldEvents(): number {
    let n = 0;
    for (const b of this.open.values()) n += b.events;
    for (const b of this.writing) n += b.events;
    return n;
  }

  /** Pins the watermark at or below `ts` until the returned release is called. */
  hold(ts: number): () => void {
    this.holds.set(ts, (this.holds.get(ts) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.holds.get(ts) ?? 1) - 1;
      if (n <= 0) this.holds.delete(ts);
      else this.holds.set(ts, n);
    };
  }

  handle(message: InboundMessage): void {
    if (this.draining) {
      message.nack();
      return;
    }
    this.stats.messages++;
    const receiveSpan = startReceiveSpan(this.scope.eventType, message); // undefined while tracing is off
    let decoded: DecodedMessage;
    try {
      decoded = this.decoder.decode(message.data, message.attributes);
    } catch (e) {
      endSpan(receiveSpan, e);
      const write = this.deadLetter(message, e).finally(() => this.writes.delete(write));
      this.writes.add(write);
      return;
    }
    const { bundle, scanned, records, count } = decoded;
    const { windowMs, graceMs, eventType } = this.scope;
    const now = this.deps.clock.now();
    const tsOf = (i: number): number => (scanned ? scanned.gatewayTs[i]! : records[i]!.meta.gateway_ts);
    let minTs = Infinity;
    for (let i = 0; i < count; i++) minTs = Math.min(minTs, tsOf(i));
    this.deps.watermark.observe(minTs, now);
    this.deps.pacer?.observe(this.receiveLag.of(now, minTs, message.publishTime?.getTime()));
    const wm = this.deps.watermark.value;
    const lastClosed = this.deps.lastClosed();
    const tracker = this.acknowledger.track(message, now, count);
    const touched: PartBuffer[] = [];
    let late = 0;
    // Where an event goes depends, within this message, only on its own window: the last
    // event's route serves every next event of that window (no route, window or key per event).
    let ownStart = 0;
    let ownEnd = 0;
    let buffer: PartBuffer | undefined;
    let routedLate = false;
    for (let i = 0; i < count; i++) {
      const ts = tsOf(i);
      if (buffer === undefined || ts < ownStart || ts >= ownEnd) {
        const route = routeEvent(ts, wm, windowMs, graceMs, lastClosed);
        ({ start: ownStart, end: ownEnd } = assignWindow(ts, windowMs)); // the window routeEvent routes from
        buffer = this.bufferFor(route.window, route.late, now);
        routedLate = route.late;
      }
      if (scanned) buffer.writer.appendDatumAt(bundle.raw, i === 0 ? 0 : scanned.ends[i - 1]!, scanned.ends[i]!);
      else buffer.writer.appendRecord(records[i]);
      buffer.events++;
      if (ts < buffer.minTs) buffer.minTs = ts;
      if (routedLate) late++;
      if (buffer.trackers[buffer.trackers.length - 1] !== tracker) {
        buffer.trackers.push(tracker);
        tracker.pending++;
        touched.push(buffer);
      }
    }
    // trace: one line per message in and out, for following a message id through a fault test
    this.deps.logger.trace(
      { messageId: message.id, events: count, late, deliveryAttempt: message.deliveryAttempt },
      'message received',
    );
    const received = receiveSpan && endReceiveSpan(receiveSpan, count, late);
    if (received) for (const buffer of touched) buffer.received = noteReceived(buffer.received, received);
    this.stats.events += count;
    this.stats.late += late;
    if (late > 0) this.deps.metrics.lateEvents.add(late, { event_type: eventType });
    for (const buffer of touched) {
      if (buffer.events >= this.config.maxEvents || buffer.writer.rawBytes >= this.config.maxBytes) {
        this.flush(buffer);
      }
    }
  }

  private bufferFor(window: IntervalWindow, late: boolean, now: number): PartBuffer {
    const key = `${window.start}:${late ? 'late' : 'on'}`;
    let buffer = this.open.get(key);
    if (!buffer) {
      const latest = this.deps.registry.get(this.scope.eventType).latest;
      buffer = {
        window,
        late,
        writer: new GroupedOcfWriter({
          type: latest.type,
          schema: schemaTextOf(latest),
          syncMarker: syncMarkerFor(`${this.scope.replicaId}.${this.scope.incarnation}.${this.seq}.${key}`),
          deflateLevel: this.config.deflateLevel,
          blockBytes: this.config.blockBytes,
        }),
        events: 0,
        minTs: Infinity,
        openedAt: now,
        flushedAt: 0,
        trackers: [],
        received: undefined,
      };
      this.open.set(key, buffer);
    }
    return buffer;
  }

  /** Age of the oldest part file still being written (0 when none): the stuck-write check. */
  oldestWriteAgeMs(now: number): number {
    let oldest = now;
    for (const w of this.writing) if (w.flushedAt < oldest) oldest = w.flushedAt;
    return now - oldest;
  }

  /** Writes every part file older than the age limit. */
  flushAged(now: number): void {
    for (const buffer of [...this.open.values()]) {
      if (now - buffer.openedAt >= this.config.maxAgeMs) this.flush(buffer);
    }
  }

  private flush(buffer: PartBuffer): void {
    this.open.delete(`${buffer.window.start}:${buffer.late ? 'late' : 'on'}`);
    buffer.flushedAt = this.deps.clock.now();
    this.writing.add(buffer);
    const write = this.write(buffer).finally(() => {
      this.writing.delete(buffer);
      this.writes.delete(write);
    });
    this.writes.add(write);
  }

  private async write(buffer: PartBuffer): Promise<void> {
    const { eventType, replicaId, incarnation } = this.scope;
    const name = stagedFileName(eventType, buffer.window, buffer.late, replicaId, incarnation, this.seq++);
    const span = buffer.received && startStageSpan(eventType, buffer.received, this.stagedFile(name, buffer));
    try {
      // the header and the blocks, written as they are (a view of each block, no joined copy)
      const data = await buffer.writer.finishParts();
      const bytes = byteLengthOf(data);
      await this.retry.untilWritten('stage', { name, events: buffer.events, messages: buffer.trackers.length }, () =>
        this.writeOnce(name, data),
      );
      this.deps.logger.trace(
        { name, events: buffer.events, messageIds: buffer.trackers.map((t) => t.message.id) },
        'staged file written',
      );
      this.stats.staged += buffer.events;
      this.stats.stagedFiles++;
      this.stats.stagedBytes += bytes;
      const attrs = { event_type: eventType, late: String(buffer.late) };
      this.deps.metrics.stagedEvents.add(buffer.events, attrs);
      this.deps.metrics.stagedBytes.add(bytes, { event_type: eventType });
      for (const t of buffer.trackers) t.partDone();
      if (span) this.traceLinks.add(buffer.window, span.spanContext());
      endSpan(span);
    } catch (e) {
      endSpan(span, e);
      this.deps.logger.warn(
        { err: e, eventType, name, events: buffer.events, messages: buffer.trackers.length },
        'staging failed for good; nacking its messages',
      );
      for (const t of buffer.trackers) t.fail();
    }
  }

  private stagedFile(name: string, b: PartBuffer): { name: string; events: number; messages: number; late: boolean } {
    return { name, events: b.events, messages: b.trackers.length, late: b.late };
  }

  /** One create-if-absent (while this replica's lease is live); finding our own bytes there counts as written. */
  private async writeOnce(name: string, data: readonly Buffer[]): Promise<void> {
    await this.deps.ensureLease();
    if (await this.deps.store.createIfAbsent(name, data)) return;
    const existing = await this.deps.store.get(name);
    if (existing && existing.equals(joinedBytes(data))) return;
    throw new HourglassError('STORAGE_PRECONDITION_FAILED', `${name} exists with other bytes`);
  }

  /** Calls `listener` when staging writes start failing (false) and succeed again (true). */
  watchStoreHealth(listener: (healthy: boolean) => void): void {
    this.retry.watch(listener);
  }

  /** Whether the last staging write succeeded (false while writes are being retried). */
  get storeHealthy(): boolean {
    return this.retry.healthy;
  }

  private deadLetter(message: InboundMessage, reason: unknown): Promise<void> {
    const { eventType, replicaId } = this.scope;
    const { store, clock, logger, metrics } = this.deps;
    const deps = { eventType, replicaId, store, clock, logger, metrics, stats: this.stats, retry: this.retry };
    return deadLetter(deps, message, reason);
  }

  /** Stops taking messages (new ones are nacked) and writes every open part file. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.flushAll();
  }

  async flushAll(): Promise<void> {
    for (const buffer of [...this.open.values()]) this.flush(buffer);
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  /** Writes in flight (part files and dead letters), including those being retried. */
  pendingWrites(): number {
    return this.writes.size;
  }
}

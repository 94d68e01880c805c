import { type Clock, HourglassError, type Logger, isHourglassError } from '@hourglass/common';
import {
  Attr,
  type EventRecord,
  type OpenedBundle,
  type ScannedEvents,
  type SchemaRegistry,
  type SchemaVersion,
  type Skipper,
  compileSkipper,
  decodeOpened,
  openBundle,
  scanEvents,
} from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import {
  type IntervalWindow,
  OcfWriter,
  deadLetterName,
  routeEvent,
  schemaTextOf,
  stagedFileName,
  syncMarkerFor,
} from '@hourglass/bucket-format';
import { eventRangeAt } from './event-range.js';
import { checkCanonical, checkEvents } from './message-checks.js';
import type { ConsumerMetrics } from './metrics.js';
import type { ReplicaWatermark } from './watermark.js';

/**
 * Staging for one event type on one replica: decode each Pub/Sub message, route its events
 * to windows, append them to in-memory part files, and write each part file to
 * `_staging/...` when it reaches its event, byte or age limit. A message is acked only when
 * every part file holding one of its events is durable (end-to-end acknowledgement). A write
 * that fails for a temporary reason (store down, lease not renewable) is retried with a backoff
 * while its messages stay held: nothing is nacked for it. Undecodable messages go to
 * `_deadletter/` and are acked.
 */
export interface InboundMessage {
  id: string;
  data: Buffer;
  attributes: Readonly<Record<string, string>>;
  publishTime?: Date;
  deliveryAttempt?: number;
  ack(): void;
  nack(): void;
}

export interface StagerOptions {
  eventType: string;
  replicaId: string;
  /** Distinguishes this process's staged file names from an earlier run with the same replica id. */
  incarnation: string;
  windowMs: number;
  graceMs: number;
  maxEvents: number;
  maxBytes: number;
  maxAgeMs: number;
  blockBytes: number;
  deflateLevel: number;
  writeAttempts: number;
  /** The Pub/Sub client stops extending a held message after this (maxExtensionTime). */
  maxHoldMs: number;
}

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
}

export interface StagerStats {
  messages: number;
  events: number;
  staged: number;
  late: number;
  stagedFiles: number;
  stagedBytes: number;
  deadLettered: number;
  acked: number;
  nacked: number;
  failedWrites: number;
  /** Messages settled after the client had stopped extending them (they were redelivered meanwhile). */
  overheld: number;
}

class MessageTracker {
  pending = 0;
  settled = false;
  constructor(
    readonly message: InboundMessage,
    readonly receivedAt: number,
    private readonly stager: Stager,
  ) {}
  partDone(): void {
    if (this.settled || --this.pending > 0) return;
    this.settled = true;
    this.stager.settled(this, true);
  }
  fail(): void {
    if (this.settled) return;
    this.settled = true;
    this.stager.settled(this, false);
  }
}

interface PartBuffer {
  window: IntervalWindow;
  late: boolean;
  writer: OcfWriter;
  events: number;
  minTs: number;
  openedAt: number;
  /** When its write started (clock ms). */
  flushedAt: number;
  trackers: MessageTracker[];
}

/** Backoff between retries of a failing staging write, doubling up to the max. */
const WRITE_RETRY_MIN_MS = 200;
const WRITE_RETRY_MAX_MS = 5_000;

export class Stager {
  readonly stats: StagerStats = {
    messages: 0,
    events: 0,
    staged: 0,
    late: 0,
    stagedFiles: 0,
    stagedBytes: 0,
    deadLettered: 0,
    acked: 0,
    nacked: 0,
    failedWrites: 0,
    overheld: 0,
  };
  private readonly open = new Map<string, PartBuffer>();
  private readonly writing = new Set<PartBuffer>();
  private readonly writes = new Set<Promise<void>>();
  /** Extra watermark holds (e.g. an orphan being moved): gateway_ts → count. */
  private readonly holds = new Map<number, number>();
  private seq = 0;
  private draining = false;
  private storeOk = true;
  private readonly storeListeners: ((healthy: boolean) => void)[] = [];
  private skipper: { fingerprint: string; skip: Skipper | undefined } | undefined;

  constructor(
    private readonly options: StagerOptions,
    private readonly deps: StagerDeps,
  ) {}

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
    let bundle: OpenedBundle;
    // datums of the newest schema are copied as bytes (scanned); any other bundle is decoded
    let scanned: ScannedEvents | undefined;
    let records: EventRecord[] = [];
    try {
      bundle = openBundle(this.deps.registry, message.data, message.attributes);
      if (bundle.eventType !== this.options.eventType) {
        throw new HourglassError(
          'MESSAGE_CORRUPT',
          `message of type ${bundle.eventType} on the subscription of ${this.options.eventType}`,
        );
      }
      const skip = this.skipperFor(bundle.writer);
      scanned = skip && scanEvents(bundle.raw, bundle.count, skip);
      if (!scanned) {
        checkCanonical(bundle);
        records = decodeOpened(this.deps.registry, bundle).records;
      }
      checkEvents(bundle, scanned, records, eventRangeAt(this.deps.clock.now()));
    } catch (e) {
      const write = this.deadLetter(message, e).finally(() => this.writes.delete(write));
      this.writes.add(write);
      return;
    }
    const { windowMs, graceMs, eventType } = this.options;
    const now = this.deps.clock.now();
    const count = scanned ? bundle.count : records.length;
    const tsOf = (i: number): number => (scanned ? scanned.gatewayTs[i]! : records[i]!.meta.gateway_ts);
    let minTs = Infinity;
    for (let i = 0; i < count; i++) minTs = Math.min(minTs, tsOf(i));
    this.deps.watermark.observe(minTs, now);
    const wm = this.deps.watermark.value;
    const lastClosed = this.deps.lastClosed();
    const tracker = new MessageTracker(message, now, this);
    const touched: PartBuffer[] = [];
    let late = 0;
    for (let i = 0; i < count; i++) {
      const ts = tsOf(i);
      const route = routeEvent(ts, wm, windowMs, graceMs, lastClosed);
      const buffer = this.bufferFor(route.window, route.late, now);
      if (scanned) buffer.writer.appendDatumAt(bundle.raw, i === 0 ? 0 : scanned.ends[i - 1]!, scanned.ends[i]!);
      else buffer.writer.appendRecord(records[i]);
      buffer.events++;
      if (ts < buffer.minTs) buffer.minTs = ts;
      if (route.late) late++;
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
    this.stats.events += count;
    this.stats.late += late;
    if (late > 0) this.deps.metrics.lateEvents.add(late, { event_type: eventType });
    for (const buffer of touched) {
      if (buffer.events >= this.options.maxEvents || buffer.writer.rawBytes >= this.options.maxBytes) {
        this.flush(buffer);
      }
    }
  }

  /** The skipper of the newest schema when `writer` is it (its datums need no resolving), else undefined. */
  private skipperFor(writer: SchemaVersion): Skipper | undefined {
    const latest = this.deps.registry.get(this.options.eventType).latest;
    if (writer.fingerprint !== latest.fingerprint) return undefined;
    if (this.skipper?.fingerprint !== latest.fingerprint) {
      this.skipper = { fingerprint: latest.fingerprint, skip: compileSkipper(latest.type) };
    }
    return this.skipper.skip;
  }

  private bufferFor(window: IntervalWindow, late: boolean, now: number): PartBuffer {
    const key = `${window.start}:${late ? 'late' : 'on'}`;
    let buffer = this.open.get(key);
    if (!buffer) {
      const latest = this.deps.registry.get(this.options.eventType).latest;
      buffer = {
        window,
        late,
        writer: new OcfWriter({
          type: latest.type,
          schema: schemaTextOf(latest),
          syncMarker: syncMarkerFor(`${this.options.replicaId}.${this.options.incarnation}.${this.seq}.${key}`),
          deflateLevel: this.options.deflateLevel,
          blockBytes: this.options.blockBytes,
        }),
        events: 0,
        minTs: Infinity,
        openedAt: now,
        flushedAt: 0,
        trackers: [],
      };
      this.open.set(key, buffer);
    }
    return buffer;
  }

  /** Acks or nacks a message whose part files are all written (or one failed). */
  settled(tracker: MessageTracker, ok: boolean): void {
    const heldMs = this.deps.clock.now() - tracker.receivedAt;
    if (heldMs > this.options.maxHoldMs) {
      // Never silent: the client gave up extending this message, so Pub/Sub has redelivered it;
      // the copy is staged again and dropped at finalize, but holding this long means staging is stuck.
      this.stats.overheld++;
      this.deps.metrics.overheld.add(1, { event_type: this.options.eventType });
      this.deps.logger.error(
        { messageId: tracker.message.id, heldMs, maxHoldMs: this.options.maxHoldMs },
        'message held beyond its maximum lease extension',
      );
    }
    this.deps.logger.trace({ messageId: tracker.message.id, ok, heldMs }, 'message settled');
    if (ok) {
      this.stats.acked++;
      tracker.message.ack();
      const gatewayTs = Number(tracker.message.attributes[Attr.gatewayTs]);
      if (Number.isFinite(gatewayTs)) {
        this.deps.metrics.stageLatency.record((this.deps.clock.now() - gatewayTs) / 1000, {
          event_type: this.options.eventType,
        });
      }
    } else {
      this.stats.nacked++;
      tracker.message.nack();
    }
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
      if (now - buffer.openedAt >= this.options.maxAgeMs) this.flush(buffer);
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
    const { eventType, replicaId, incarnation } = this.options;
    const name = stagedFileName(eventType, buffer.window, buffer.late, replicaId, incarnation, this.seq++);
    try {
      const data = await buffer.writer.finish();
      await this.untilWritten('stage', { name, events: buffer.events, messages: buffer.trackers.length }, () =>
        this.writeOnce(name, data),
      );
      this.deps.logger.trace(
        { name, events: buffer.events, messageIds: buffer.trackers.map((t) => t.message.id) },
        'staged file written',
      );
      this.stats.staged += buffer.events;
      this.stats.stagedFiles++;
      this.stats.stagedBytes += data.length;
      const attrs = { event_type: eventType, late: String(buffer.late) };
      this.deps.metrics.stagedEvents.add(buffer.events, attrs);
      this.deps.metrics.stagedBytes.add(data.length, { event_type: eventType });
      for (const t of buffer.trackers) t.partDone();
    } catch (e) {
      this.deps.logger.warn(
        { err: e, eventType, name, events: buffer.events, messages: buffer.trackers.length },
        'staging failed for good; nacking its messages',
      );
      for (const t of buffer.trackers) t.fail();
    }
  }

  /** One create-if-absent (while this replica's lease is live); finding our own bytes there counts as written. */
  private async writeOnce(name: string, data: Buffer): Promise<void> {
    await this.deps.ensureLease();
    if (await this.deps.store.createIfAbsent(name, data)) return;
    const existing = await this.deps.store.get(name);
    if (existing && existing.equals(data)) return;
    throw new HourglassError('STORAGE_PRECONDITION_FAILED', `${name} exists with other bytes`);
  }

  /**
   * Runs `attempt` until it succeeds. A store failure or a lease that cannot be renewed is
   * temporary: the messages stay held (their leases extended, the watermark pinned by their
   * events) and the write is retried with a backoff, however long the store is down — a nack
   * would spend one of the subscription's delivery attempts per failure and dead-letter healthy
   * events. Meanwhile the store counts as failing (the consumer stops pulling). Only a conflict
   * (another object under our name) or a shutdown (then `writeAttempts` tries) ends in failure.
   */
  private async untilWritten(operation: string, detail: object, attempt: () => Promise<void>): Promise<void> {
    let failures = 0;
    let sinceDrain = 0;
    for (;;) {
      try {
        await attempt();
        if (failures > 0) this.deps.logger.info({ ...detail, failures }, 'store write succeeded after retries');
        this.setStoreHealthy(true);
        return;
      } catch (e) {
        failures++;
        this.stats.failedWrites++;
        this.deps.metrics.storeErrors.add(1, { event_type: this.options.eventType, operation });
        if (isHourglassError(e, 'STORAGE_PRECONDITION_FAILED')) throw e;
        this.setStoreHealthy(false);
        if (this.draining && ++sinceDrain >= this.options.writeAttempts) throw e;
        const backoffMs = Math.min(WRITE_RETRY_MAX_MS, WRITE_RETRY_MIN_MS * 2 ** Math.min(failures - 1, 16));
        // the first failure and then about one line a minute per write
        if (failures === 1 || failures % Math.ceil(60_000 / WRITE_RETRY_MAX_MS) === 0) {
          this.deps.logger.warn({ err: e, ...detail, failures, backoffMs }, 'store write failed; holding, retrying');
        }
        await new Promise((r) => setTimeout(r, backoffMs));
      }
    }
  }

  /** Calls `listener` when staging writes start failing (false) and succeed again (true). */
  watchStoreHealth(listener: (healthy: boolean) => void): void {
    this.storeListeners.push(listener);
  }

  /** Whether the last staging write succeeded (false while writes are being retried). */
  get storeHealthy(): boolean {
    return this.storeOk;
  }

  private setStoreHealthy(ok: boolean): void {
    if (ok === this.storeOk) return;
    this.storeOk = ok;
    for (const l of this.storeListeners) l(ok);
  }

  private async deadLetter(message: InboundMessage, reason: unknown): Promise<void> {
    const { eventType, replicaId } = this.options;
    const now = this.deps.clock.now();
    const name = deadLetterName(eventType, new Date(now).toISOString().slice(0, 10), message.id);
    const body = {
      messageId: message.id,
      subscriptionType: eventType,
      publishTime: message.publishTime?.toISOString() ?? null,
      deliveryAttempt: message.deliveryAttempt ?? null,
      receivedAt: new Date(now).toISOString(),
      replicaId,
      reason: {
        code: isHourglassError(reason) ? reason.code : 'INTERNAL',
        message: (reason as Error).message ?? String(reason),
      },
      attributes: message.attributes,
      dataBytes: message.data.length,
      dataBase64: message.data.toString('base64'),
    };
    try {
      // A redelivered message finds its dead letter already written: that is success too.
      const data = Buffer.from(`${JSON.stringify(body, null, 2)}\n`);
      await this.untilWritten('deadletter', { name, messageId: message.id }, async () => {
        await this.deps.store.createIfAbsent(name, data);
      });
      this.stats.deadLettered++;
      this.deps.metrics.deadLettered.add(1, { event_type: eventType, reason: body.reason.code });
      this.deps.logger.warn({ eventType, messageId: message.id, reason: body.reason, name }, 'message dead-lettered');
      this.stats.acked++;
      message.ack();
    } catch (e) {
      this.deps.metrics.storeErrors.add(1, { event_type: eventType, operation: 'deadletter' });
      this.deps.logger.warn({ err: e, eventType, messageId: message.id }, 'dead-letter write failed; nacking');
      this.stats.nacked++;
      message.nack();
    }
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

  /** Oldest part file still being written, for the stuck-write check. */
  pendingWrites(): number {
    return this.writes.size;
  }
}

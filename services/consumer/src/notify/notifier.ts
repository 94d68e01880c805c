import { type ClientConfig, PubSub, type Topic } from '@google-cloud/pubsub';
import type { Logger } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import { type Counter, metrics } from '@opentelemetry/api';
import { NOTICES, manifestName, parseManifest, type IntervalWindow } from '@hourglass/bucket-format';
import { type NoticeMessage, buildNotice, noticeMessage } from './notice.js';

/**
 * Closed-window notices, at least once: when the closer has published a window, a pending
 * notice is created in the store (`_notices/<type>/<start ms>.json`) BEFORE the closed cursor can
 * move past the window, then it is published to `<prefix>-closed` and deleted. A closer that
 * crashes before the pending notice exists left the cursor behind the window, so the next closer
 * closes it again (finding its manifest) and creates the notice then; one that crashes after
 * left the notice in the store, and the next closer sends it (`resume`). A crash between the
 * publish and the delete sends it twice, with the same `notice_id`.
 */

export function noticePrefix(eventType: string): string {
  return `${NOTICES}/${eventType}/`;
}

/** Zero-padded start, so names sort by time. */
export function noticeName(eventType: string, w: IntervalWindow): string {
  return `${noticePrefix(eventType)}${String(w.start).padStart(15, '0')}.json`;
}

/** What type-runtime.ts calls (its only dependency on this module). */
export interface WindowNotices {
  /** The window's manifest is published and the window was after the cursor: the notice is durable when this resolves. */
  closed(eventType: string, w: IntervalWindow): Promise<void>;
  /** This replica closes the type's windows: send what an earlier closer left pending (once per process). */
  resume(eventType: string): void;
}

export interface NotifierOptions {
  store: ObjectStore;
  logger: Logger;
  /** The notice topic's short name (`<prefix>-closed`). */
  topic: string;
  /** How to reach Pub/Sub (project id, emulator from the environment). */
  pubsub: ClientConfig;
  /** First retry delay after a failed publish; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
}

interface Pending {
  name: string;
  message: NoticeMessage;
}

export class ClosedWindowNotifier implements WindowNotices {
  private readonly pubsub: PubSub;
  private readonly topic: Topic;
  private readonly queue = new Map<string, Pending>();
  private readonly resumed = new Set<string>();
  private readonly published: Counter;
  private readonly failed: Counter;
  private sending: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private stopped = false;
  private failedAttempts = 0;

  constructor(private readonly options: NotifierOptions) {
    this.pubsub = new PubSub(options.pubsub);
    this.topic = this.pubsub.topic(options.topic);
    this.retryDelay = options.retryMs ?? 1000;
    const meter = metrics.getMeter('hourglass-consumer');
    this.published = meter.createCounter('hourglass_consumer_notices_published', {
      description: 'Closed-window notices published to the notice topic (re-sends after a crash included)',
    });
    this.failed = meter.createCounter('hourglass_consumer_notices_failed', {
      description: 'Failed attempts to publish a closed-window notice (retried until published)',
    });
  }

  async closed(eventType: string, w: IntervalWindow): Promise<void> {
    const manifestPath = manifestName(eventType, w);
    const bytes = await this.options.store.get(manifestPath);
    if (!bytes) throw new Error(`${manifestPath} is missing after its window was published`);
    const message = noticeMessage(
      buildNotice(this.options.store.url, manifestPath, bytes, parseManifest(bytes, manifestPath)),
    );
    const name = noticeName(eventType, w);
    // the same bytes whoever creates it: a notice left by a crashed closer is this one
    await this.options.store.createIfAbsent(name, encodeStored(message));
    this.queue.set(name, { name, message });
    this.kick();
  }

  resume(eventType: string): void {
    if (this.resumed.has(eventType) || this.stopped) return;
    this.resumed.add(eventType);
    void this.loadPending(eventType).catch((e: unknown) => {
      this.resumed.delete(eventType); // the next close pass tries again
      this.options.logger.warn({ err: e, eventType }, 'pending closed-window notices could not be listed');
    });
  }

  private async loadPending(eventType: string): Promise<void> {
    for (const o of await this.options.store.list(noticePrefix(eventType))) {
      if (this.queue.has(o.name)) continue;
      const data = await this.options.store.get(o.name);
      if (data) this.queue.set(o.name, { name: o.name, message: decodeStored(data) });
    }
    this.kick();
  }

  private kick(): void {
    if (this.sending || this.retryTimer || this.stopped) return;
    this.sending = this.sendAll().finally(() => {
      this.sending = undefined;
    });
  }

  /** Publishes queued notices in window order; on a failure, retries later with a backoff. */
  private async sendAll(): Promise<void> {
    while (!this.stopped && this.queue.size > 0) {
      const next = [...this.queue.values()].sort((a, b) => (a.name < b.name ? -1 : 1))[0]!;
      const eventType = next.message.attributes.event_type ?? '';
      try {
        await this.topic.publishMessage({ data: next.message.data, attributes: next.message.attributes });
      } catch (e) {
        this.failed.add(1, { event_type: eventType });
        this.failedAttempts++;
        this.options.logger.warn({ err: e, notice: next.name }, 'closed-window notice not published; retrying');
        this.scheduleRetry();
        return;
      }
      this.queue.delete(next.name);
      this.published.add(1, { event_type: eventType });
      this.retryDelay = this.options.retryMs ?? 1000;
      this.options.logger.info(
        {
          notice: next.name,
          noticeId: next.message.attributes.notice_id,
          partition: next.message.attributes.partition,
        },
        'closed-window notice published',
      );
      // A failed delete only means a second copy (same notice_id) after this process stops.
      await this.options.store.delete(next.name).catch((e: unknown) => {
        this.options.logger.warn({ err: e, notice: next.name }, 'published notice not deleted; it may be sent again');
      });
    }
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.maxRetryMs ?? 60_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, delay);
    this.retryTimer.unref();
  }

  /** Failed publish attempts since this process started. */
  failures(): number {
    return this.failedAttempts;
  }

  /** Pending notices waiting for send (in memory; the store has them too). */
  pendingCount(): number {
    return this.queue.size;
  }

  /** Lets the current send finish and tries the rest once; what still fails stays in the store for the next closer. */
  async stop(): Promise<void> {
    await this.sending;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.queue.size > 0) await this.sendAll();
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.pubsub.close();
  }
}

/** A pending notice object: the attributes as one JSON line, then the message data (JSON, one line). */
function encodeStored(m: NoticeMessage): Buffer {
  return Buffer.concat([Buffer.from(`${JSON.stringify(m.attributes)}\n`), m.data]);
}

function decodeStored(data: Buffer): NoticeMessage {
  const text = data.toString('utf8');
  const newline = text.indexOf('\n');
  return {
    attributes: JSON.parse(text.slice(0, newline)) as Record<string, string>,
    data: Buffer.from(text.slice(newline + 1)),
  };
}

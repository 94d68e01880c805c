import { Attr } from '@hourglass/schemas';
import type { Clock, Logger } from '@hourglass/common';
import type { ConsumerMetrics } from '../metrics.js';
import type { InboundMessage } from '../source/inbound-message.js';
import type { StagerStats } from './stats.js';

export interface AcknowledgerDeps {
  eventType: string;
  /** The Pub/Sub client stops extending a held message after this. */
  maxHoldMs: number;
  clock: Clock;
  logger: Logger;
  metrics: ConsumerMetrics;
  stats: StagerStats;
}

/**
 * End-to-end acknowledgement: a message is acked only when every part file holding one of its
 * events is durable, and nacked when one of them failed for good. One tracker per message
 * counts its part files still being written.
 */
export class MessageTracker {
  pending = 0;
  settled = false;
  constructor(
    readonly message: InboundMessage,
    readonly receivedAt: number,
    /** How many events the message holds. */
    readonly events: number,
    private readonly acknowledger: Acknowledger,
  ) {}

  /** A part file holding some of its events is durable. */
  partDone(): void {
    if (this.settled || --this.pending > 0) return;
    this.settled = true;
    this.acknowledger.settled(this, true);
  }

  /** A part file holding some of its events failed for good. */
  fail(): void {
    if (this.settled) return;
    this.settled = true;
    this.acknowledger.settled(this, false);
  }
}

/** Acks or nacks settled messages, counting those held past the client's maximum extension. */
export class Acknowledger {
  constructor(private readonly deps: AcknowledgerDeps) {}

  track(message: InboundMessage, receivedAt: number, events: number): MessageTracker {
    return new MessageTracker(message, receivedAt, events, this);
  }

  /** Acks or nacks a message whose part files are all written (or one failed). */
  settled(tracker: MessageTracker, ok: boolean): void {
    const { clock, logger, metrics, stats, eventType, maxHoldMs } = this.deps;
    const heldMs = clock.now() - tracker.receivedAt;
    if (heldMs > maxHoldMs) {
      // Never silent: the client gave up extending this message, so Pub/Sub has redelivered it;
      // the copy is staged again and dropped at finalize, but holding this long means staging is stuck.
      stats.overheld++;
      metrics.overheld.add(1, { event_type: eventType });
      logger.error(
        { messageId: tracker.message.id, heldMs, maxHoldMs },
        'message held beyond its maximum lease extension',
      );
    }
    logger.trace({ messageId: tracker.message.id, ok, heldMs }, 'message settled');
    if (ok) {
      stats.acked++;
      tracker.message.ack();
      const gatewayTs = Number(tracker.message.attributes[Attr.gatewayTs]);
      if (Number.isFinite(gatewayTs)) {
        metrics.stageLatency.record((clock.now() - gatewayTs) / 1000, { event_type: eventType });
      }
      // Counted per message once all its events are durable (it may span several part files, so
      // not per part file). A copy Pub/Sub redelivers (ack lost, or held past its lease) counts
      // again here; finalize drops its events by event_id.
      if (tracker.message.attributes[Attr.replayOf] !== undefined) {
        metrics.replayedMessages.add(1, { event_type: eventType });
        metrics.replayedEvents.add(tracker.events, { event_type: eventType });
      }
    } else {
      stats.nacked++;
      tracker.message.nack();
    }
  }
}

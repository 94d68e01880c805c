import { type Clock, type Logger, isHourglassError } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import { deadLetterName } from '@hourglass/bucket-format';
import type { ConsumerMetrics } from '../metrics.js';
import type { InboundMessage } from '../source/inbound-message.js';
import type { StagerStats } from './stats.js';
import type { WriteRetry } from './write-retry.js';

export interface DeadLetterDeps {
  eventType: string;
  replicaId: string;
  store: ObjectStore;
  clock: Clock;
  logger: Logger;
  metrics: ConsumerMetrics;
  stats: StagerStats;
  retry: WriteRetry;
}

/**
 * A message that must not be stored goes to `_deadletter/<type>/dt=YYYY-MM-DD/<messageId>.json`
 * (raw bytes in base64, attributes, reason), retried like a staged write, then acked; nacked
 * only if the write fails for good.
 */
export async function deadLetter(d: DeadLetterDeps, message: InboundMessage, reason: unknown): Promise<void> {
  const { eventType, replicaId } = d;
  const now = d.clock.now();
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
    await d.retry.untilWritten('deadletter', { name, messageId: message.id }, async () => {
      await d.store.createIfAbsent(name, data);
    });
    d.stats.deadLettered++;
    d.metrics.deadLettered.add(1, { event_type: eventType, reason: body.reason.code });
    d.logger.warn({ eventType, messageId: message.id, reason: body.reason, name }, 'message dead-lettered');
    d.stats.acked++;
    message.ack();
  } catch (e) {
    d.metrics.storeErrors.add(1, { event_type: eventType, operation: 'deadletter' });
    d.logger.warn({ err: e, eventType, messageId: message.id }, 'dead-letter write failed; nacking');
    d.stats.nacked++;
    message.nack();
  }
}

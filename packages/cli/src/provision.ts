import { PubSub, type Subscription } from '@google-cloud/pubsub';
import { Defaults, resourceNames, type Duration, type Logger, silentLogger } from '@hourglass/common';

/**
 * Creates every event type's topic, consumer subscription (ack deadline, retention,
 * retry and dead-letter policy) and dead-letter topic with a keeping subscription.
 * Idempotent: existing resources are left in place and subscription settings are
 * converged to the desired values.
 */
export interface ProvisionOptions {
  projectId: string;
  prefix: string;
  eventTypes: readonly string[];
  ackDeadline?: Duration;
  maxDeliveryAttempts?: number;
  logger?: Logger;
}

export interface ProvisionedType {
  eventType: string;
  topic: string;
  subscription: string;
  deadLetterTopic: string;
  created: string[];
}

const ALREADY_EXISTS = 6;

export async function provisionTopology(options: ProvisionOptions): Promise<ProvisionedType[]> {
  const pubsub = new PubSub({ projectId: options.projectId });
  const log = options.logger ?? silentLogger;
  const ackDeadlineSeconds = Math.round((options.ackDeadline ?? Defaults.ackDeadline) / 1000);
  const maxDeliveryAttempts = options.maxDeliveryAttempts ?? Defaults.maxDeliveryAttempts;
  const out: ProvisionedType[] = [];
  try {
    for (const eventType of options.eventTypes) {
      const names = resourceNames(options.prefix, eventType);
      const created: string[] = [];
      if (await ensureTopic(pubsub, names.topic)) created.push(names.topic);
      if (await ensureTopic(pubsub, names.deadLetterTopic)) created.push(names.deadLetterTopic);
      const deadLetterPolicy = {
        deadLetterTopic: pubsub.topic(names.deadLetterTopic).name,
        maxDeliveryAttempts,
      };
      const retention = { seconds: Math.round(Defaults.retention / 1000) };
      // An empty policy means "never expire": by default Pub/Sub deletes a subscription
      // after 31 days without subscriber activity, and nobody pulls dead letters daily.
      const neverExpire = { expirationPolicy: {} };
      const settings = {
        ackDeadlineSeconds,
        deadLetterPolicy,
        retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 60 } },
        messageRetentionDuration: retention,
      };
      const sub = pubsub.topic(names.topic).subscription(names.subscription);
      if (await ensureSubscription(pubsub, names.topic, names.subscription, { ...settings, ...neverExpire })) {
        created.push(names.subscription);
      } else await converge(sub, settings); // expiration is set at creation only: the emulator refuses to update it
      if (
        await ensureSubscription(pubsub, names.deadLetterTopic, names.deadLetterSubscription, {
          ackDeadlineSeconds,
          messageRetentionDuration: retention,
          ...neverExpire,
        })
      ) {
        created.push(names.deadLetterSubscription);
      }
      log.info({ eventType, created }, 'provisioned');
      out.push({
        eventType,
        topic: names.topic,
        subscription: names.subscription,
        deadLetterTopic: names.deadLetterTopic,
        created,
      });
    }
  } finally {
    await pubsub.close();
  }
  return out;
}

async function ensureTopic(pubsub: PubSub, name: string): Promise<boolean> {
  try {
    await pubsub.createTopic(name);
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === ALREADY_EXISTS) return false;
    throw e;
  }
}

async function ensureSubscription(
  pubsub: PubSub,
  topic: string,
  name: string,
  settings: Record<string, unknown>,
): Promise<boolean> {
  try {
    await pubsub.topic(topic).createSubscription(name, settings);
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === ALREADY_EXISTS) return false;
    throw e;
  }
}

async function converge(sub: Subscription, settings: Record<string, unknown>): Promise<void> {
  await sub.setMetadata(settings);
}

import { PubSub, type IAM, type Subscription } from '@google-cloud/pubsub';
import {
  Defaults,
  closedNoticeTopic,
  resourceNames,
  type Duration,
  type Logger,
  silentLogger,
} from '@hourglass/common';

/**
 * Creates the closed-window notice topic `<prefix>-closed`, every event type's topic, consumer subscription (ack deadline, retention, no expiry,
 * retry and dead-letter policy) and dead-letter topic (31 days' retention) with a keeping
 * subscription (7 days, ack deadline 600 s), as infra/pubsub.tf does. With `projectNumber`, it
 * also grants the Pub/Sub service agent what dead-letter forwarding needs (publisher on the
 * dead-letter topic, subscriber on the consumer subscription, as infra/iam.tf): without them
 * Cloud Pub/Sub cannot move a message that keeps failing. The emulator has no IAM (its calls
 * answer UNIMPLEMENTED: reported as `iam: 'unsupported'`, nothing else fails) and enforces the rest.
 * Idempotent: existing resources are left in place and subscription settings are
 * converged to the desired values.
 */
export interface ProvisionOptions {
  projectId: string;
  prefix: string;
  eventTypes: readonly string[];
  ackDeadline?: Duration;
  maxDeliveryAttempts?: number;
  /** The project's number: grants the Pub/Sub service agent its dead-letter roles (see above). */
  projectNumber?: string;
  logger?: Logger;
}

export interface ProvisionedType {
  eventType: string;
  topic: string;
  subscription: string;
  deadLetterTopic: string;
  created: string[];
  /** Dead-letter IAM: granted, not asked for (no project number), or unsupported (the emulator). */
  iam: 'granted' | 'skipped' | 'unsupported';
}

const ALREADY_EXISTS = 6;
const UNIMPLEMENTED = 12;
/** Dead-letter topics keep messages, even acked ones, this long so they can be replayed by seek (Pub/Sub maximum). */
const DEAD_LETTER_TOPIC_RETENTION_S = 31 * 24 * 3600;
/** The dead-letter keeping subscription: a week, and the longest ack deadline (a human reads them). */
const DEAD_LETTER_SUBSCRIPTION = { ackDeadlineSeconds: 600, messageRetentionDuration: { seconds: 7 * 24 * 3600 } };

export async function provisionTopology(options: ProvisionOptions): Promise<ProvisionedType[]> {
  const pubsub = new PubSub({ projectId: options.projectId });
  const log = options.logger ?? silentLogger;
  const ackDeadlineSeconds = Math.round((options.ackDeadline ?? Defaults.ackDeadline) / 1000);
  const maxDeliveryAttempts = options.maxDeliveryAttempts ?? Defaults.maxDeliveryAttempts;
  const out: ProvisionedType[] = [];
  try {
    // one topic for every type's closed-window notices; downstream jobs subscribe to it
    if (await ensureTopic(pubsub, closedNoticeTopic(options.prefix)))
      log.info({ topic: closedNoticeTopic(options.prefix) }, 'created');
    for (const eventType of options.eventTypes) {
      const names = resourceNames(options.prefix, eventType);
      const created: string[] = [];
      if (await ensureTopic(pubsub, names.topic)) created.push(names.topic);
      const deadLetterTopicSettings = { messageRetentionDuration: { seconds: DEAD_LETTER_TOPIC_RETENTION_S } };
      if (await ensureTopic(pubsub, names.deadLetterTopic, deadLetterTopicSettings))
        created.push(names.deadLetterTopic);
      else await pubsub.topic(names.deadLetterTopic).setMetadata(deadLetterTopicSettings);
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
          ...DEAD_LETTER_SUBSCRIPTION,
          ...neverExpire,
        })
      ) {
        created.push(names.deadLetterSubscription);
      } else await converge(pubsub.subscription(names.deadLetterSubscription), DEAD_LETTER_SUBSCRIPTION);
      const iam = await grantDeadLetterRoles(pubsub, names, options.projectNumber);
      if (iam === 'skipped') {
        log.warn(
          { eventType },
          'no project number: the Pub/Sub service agent was not granted its dead-letter roles (see docs/operations.md)',
        );
      }
      log.info({ eventType, created, iam }, 'provisioned');
      out.push({
        eventType,
        topic: names.topic,
        subscription: names.subscription,
        deadLetterTopic: names.deadLetterTopic,
        created,
        iam,
      });
    }
  } finally {
    await pubsub.close();
  }
  return out;
}

/**
 * Publisher on the dead-letter topic and subscriber on the consumer subscription for
 * service-<number>@gcp-sa-pubsub.iam.gserviceaccount.com, added to the existing policies.
 */
async function grantDeadLetterRoles(
  pubsub: PubSub,
  names: { deadLetterTopic: string; subscription: string },
  projectNumber: string | undefined,
): Promise<'granted' | 'skipped' | 'unsupported'> {
  if (!projectNumber) return pubsub.isEmulator ? 'unsupported' : 'skipped';
  const agent = `serviceAccount:service-${projectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com`;
  try {
    await addBinding(pubsub.topic(names.deadLetterTopic).iam, 'roles/pubsub.publisher', agent);
    await addBinding(pubsub.subscription(names.subscription).iam, 'roles/pubsub.subscriber', agent);
    return 'granted';
  } catch (e) {
    if ((e as { code?: number }).code === UNIMPLEMENTED) return 'unsupported';
    throw e;
  }
}

async function addBinding(iam: IAM, role: string, member: string): Promise<void> {
  const [policy] = await iam.getPolicy();
  const bindings = policy.bindings ?? [];
  const binding = bindings.find((b) => b.role === role);
  if (binding?.members?.includes(member)) return;
  if (binding) binding.members = [...(binding.members ?? []), member];
  else bindings.push({ role, members: [member] });
  await iam.setPolicy({ ...policy, bindings });
}

async function ensureTopic(pubsub: PubSub, name: string, settings: Record<string, unknown> = {}): Promise<boolean> {
  try {
    await pubsub.createTopic({ name, ...settings });
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

import { randomBytes } from 'node:crypto';
import { PubSub } from '@google-cloud/pubsub';
import { provisionTopology, type ProvisionedType } from '@hourglass/cli';
import { Defaults, closedNoticeTopic, resourceNames, seconds } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';

/**
 * Provisioning on the real emulator: idempotent, and every consumer subscription wired
 * to its dead-letter topic, whose keeping subscription holds what keeps failing.
 */
process.env.METADATA_SERVER_DETECTION = 'none';

const prefix = `t-${randomBytes(4).toString('hex')}`;
const projectId = Defaults.projectId;
const eventTypes = SchemaRegistry.load('schemas').eventTypes();
const ackDeadline = seconds(42);
const maxDeliveryAttempts = 7;
const pubsub = new PubSub({ projectId });

afterAll(() => pubsub.close());

/** Short names (without projects/<id>/...) of our prefix's topics and subscriptions. */
async function topology(): Promise<{ topics: string[]; subscriptions: string[] }> {
  const short = (name: string): string => name.slice(name.lastIndexOf('/') + 1);
  const ours = (name: string): boolean => name.startsWith(`${prefix}-`);
  const [topics] = await pubsub.getTopics();
  const [subscriptions] = await pubsub.getSubscriptions();
  return {
    topics: topics
      .map((t) => short(t.name))
      .filter(ours)
      .sort(),
    subscriptions: subscriptions
      .map((s) => short(s.name))
      .filter(ours)
      .sort(),
  };
}

/**
 * Retention as configured, and an expiration policy without a ttl: never deleted for
 * inactivity (Pub/Sub's default deletes an idle subscription after 31 days; the
 * emulator reports that default as no policy at all).
 */
function expectKeptAWeekForever(meta: {
  messageRetentionDuration?: { seconds?: unknown } | null;
  expirationPolicy?: { ttl?: unknown } | null;
}): void {
  expect(Number(meta.messageRetentionDuration?.seconds)).toBe(Defaults.retention / 1000);
  expect(meta.expirationPolicy).toBeTruthy();
  expect(meta.expirationPolicy?.ttl ?? null).toBeNull();
}

let first: ProvisionedType[];
let second: ProvisionedType[];
let afterFirst: { topics: string[]; subscriptions: string[] };
let afterSecond: { topics: string[]; subscriptions: string[] };

beforeAll(async () => {
  const options = { projectId, prefix, eventTypes, ackDeadline, maxDeliveryAttempts };
  first = await provisionTopology(options);
  afterFirst = await topology();
  second = await provisionTopology(options);
  afterSecond = await topology();
});

test('the first run creates topic, consumer subscription, dead-letter topic and keeping subscription per type, and the closed-window notice topic', () => {
  expect(first.map((r) => r.eventType)).toEqual(eventTypes);
  for (const r of first) {
    const names = resourceNames(prefix, r.eventType);
    expect(r).toMatchObject({
      topic: names.topic,
      subscription: names.subscription,
      deadLetterTopic: names.deadLetterTopic,
    });
    expect([...r.created].sort()).toEqual(Object.values(names).sort());
  }
  const expected = eventTypes.map((t) => resourceNames(prefix, t));
  expect(afterFirst.topics).toEqual(
    [...expected.flatMap((n) => [n.topic, n.deadLetterTopic]), closedNoticeTopic(prefix)].sort(),
  );
  expect(afterFirst.subscriptions).toEqual(expected.flatMap((n) => [n.subscription, n.deadLetterSubscription]).sort());
});

test('the second run creates nothing and leaves the same topics and subscriptions', () => {
  expect(second.map((r) => r.created)).toEqual(eventTypes.map(() => []));
  expect(afterSecond).toEqual(afterFirst);
});

describe.each(eventTypes)('%s', (eventType) => {
  const names = resourceNames(prefix, eventType);

  test('the consumer subscription dead-letters to its topic with the ack deadline set', async () => {
    const [meta] = await pubsub.subscription(names.subscription).getMetadata();
    expect(meta.topic).toBe(`projects/${projectId}/topics/${names.topic}`);
    expect(meta.ackDeadlineSeconds).toBe(42);
    expect(meta.deadLetterPolicy).toEqual(
      expect.objectContaining({
        deadLetterTopic: `projects/${projectId}/topics/${names.deadLetterTopic}`,
        maxDeliveryAttempts,
      }),
    );
    expect(meta.retryPolicy?.minimumBackoff?.seconds).toBeDefined();
    expectKeptAWeekForever(meta);
  });

  test('the dead-letter topic keeps messages 31 days and has its keeping subscription', async () => {
    const [topicMeta] = await pubsub.topic(names.deadLetterTopic).getMetadata();
    expect(Number(topicMeta.messageRetentionDuration?.seconds)).toBe(31 * 24 * 3600);
    const [meta] = await pubsub.subscription(names.deadLetterSubscription).getMetadata();
    expect(meta.topic).toBe(`projects/${projectId}/topics/${names.deadLetterTopic}`);
    expect(meta.deadLetterPolicy ?? null).toBeNull();
    expect(meta.ackDeadlineSeconds).toBe(600);
    expectKeptAWeekForever(meta);
    const [subs] = await pubsub.topic(names.deadLetterTopic).getSubscriptions();
    expect(subs.map((s) => s.name)).toEqual([`projects/${projectId}/subscriptions/${names.deadLetterSubscription}`]);
  });
});

test('dead-letter IAM: asked for with a project number; the emulator has no IAM and says so', async () => {
  expect(first.map((r) => r.iam)).toEqual(eventTypes.map(() => 'unsupported'));
  const [type] = eventTypes;
  const withNumber = await provisionTopology({ projectId, prefix, eventTypes: [type!], projectNumber: '123456789' });
  expect(withNumber[0]!.iam).toBe('unsupported'); // UNIMPLEMENTED on the emulator, not an error
});

test('a run with other settings converges the existing consumer subscriptions', async () => {
  const [type] = eventTypes;
  const result = await provisionTopology({
    projectId,
    prefix,
    eventTypes: [type!],
    ackDeadline: seconds(30),
    maxDeliveryAttempts: 12,
  });
  expect(result[0]!.created).toEqual([]);
  const [meta] = await pubsub.subscription(resourceNames(prefix, type!).subscription).getMetadata();
  expect(meta.ackDeadlineSeconds).toBe(30);
  expect(meta.deadLetterPolicy?.maxDeliveryAttempts).toBe(12);
});

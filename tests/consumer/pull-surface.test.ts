import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PubSub, type ServiceError, type protos } from '@google-cloud/pubsub';
import { Defaults } from '@hourglass/common';
import { loadConsumerConfig, subscriberClientFor } from '@hourglass/consumer';
import { uniquePrefix } from './support';

/**
 * The unary reader calls the generated client's undocumented `innerApiCalls.pull` (the public
 * pull() drops google-gax's cancel()). That surface may change in any release: the consumer pins
 * @google-cloud/pubsub to one exact version, and these tests fail when the installed version is
 * not that one or when the surface the reader relies on is gone: after initialize(),
 * `innerApiCalls.pull(request, options)` returns a promise of [response] that has cancel(), and
 * cancelling a pending long poll rejects it with CANCELLED.
 */
jest.setTimeout(60_000);

const ROOT = join(__dirname, '..', '..');
const CANCELLED = 1;

type PullCall = (
  request: protos.google.pubsub.v1.IPullRequest,
  options: object,
) => Promise<[protos.google.pubsub.v1.IPullResponse]> & { cancel?: () => void };

const pubsub = new PubSub({ projectId: Defaults.projectId });
afterAll(() => pubsub.close());

test('the consumer pins @google-cloud/pubsub to one exact version, the one installed', () => {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'services/consumer/package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const pinned = manifest.dependencies['@google-cloud/pubsub'];
  expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
  const installed = JSON.parse(
    readFileSync(
      require.resolve('@google-cloud/pubsub/package.json', { paths: [join(ROOT, 'services/consumer')] }),
      'utf8',
    ),
  ) as { version: string };
  expect(installed.version).toBe(pinned);
});

test('innerApiCalls.pull: answers [response] and its long poll can be cancelled', async () => {
  const name = uniquePrefix();
  const [topic] = await pubsub.createTopic(`${name}-topic`);
  const [sub] = await topic.createSubscription(`${name}-sub`, { ackDeadlineSeconds: 10 });
  await topic.publishMessage({ data: Buffer.from('surface') });
  const [empty] = await topic.createSubscription(`${name}-empty`, { ackDeadlineSeconds: 10 }); // after the publish
  const client = await subscriberClientFor(pubsub);
  try {
    await client.initialize();
    const pull = client.innerApiCalls.pull as unknown as PullCall;
    expect(typeof pull).toBe('function');

    const call = pull(
      { subscription: sub.name, maxMessages: 10, returnImmediately: false },
      { timeout: 20_000, retry: null },
    );
    expect(typeof call.cancel).toBe('function');
    const [response] = await call;
    expect(response.receivedMessages?.map((r) => Buffer.from(r.message!.data!).toString())).toEqual(['surface']);

    const pending = pull(
      { subscription: empty.name, maxMessages: 10, returnImmediately: false },
      { timeout: 30_000, retry: null },
    );
    const started = Date.now();
    setTimeout(() => pending.cancel!(), 500);
    await expect(pending).rejects.toMatchObject({ code: CANCELLED } satisfies Partial<ServiceError>);
    expect(Date.now() - started).toBeLessThan(10_000);
  } finally {
    await client.close();
  }
});

test('HOURGLASS_ACK_DEADLINE is checked at start-up against the Pub/Sub range (10 s to 600 s)', () => {
  expect(loadConsumerConfig({ HOURGLASS_ACK_DEADLINE: '600s' }).ackDeadline).toBe(600_000);
  expect(() => loadConsumerConfig({ HOURGLASS_ACK_DEADLINE: '601s' })).toThrow(/HOURGLASS_ACK_DEADLINE/);
  expect(() => loadConsumerConfig({ HOURGLASS_ACK_DEADLINE: '9s' })).toThrow(/HOURGLASS_ACK_DEADLINE/);
});

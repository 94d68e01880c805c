import { provisionTopology } from '@hourglass/cli';
import { Defaults, HourglassError, ManualClock, resourceNames, seconds, silentLogger } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore } from '@hourglass/storage';
import {
  type RunningConsumer,
  StreamingSource,
  consumerConfig,
  startConsumer,
  type InboundMessage,
} from '@hourglass/consumer';
import {
  FAST_CONSUMER,
  T0,
  driveUntil,
  generateBundles,
  newPubSub,
  publishBundles,
  tempDir,
  uniquePrefix,
} from './support';

/**
 * The consumer's probes and its behaviour in an outage, in process on the real emulator:
 *  - /healthz (liveness) fails with a reason when the tick loop stalls, and only then: a store
 *    outage shows in /readyz, never in /healthz (a restart would hand back every held message);
 *  - a store outage spends no delivery attempt: nothing is nacked, the events stay held and are
 *    staged and acked once the store answers again;
 *  - streaming pull reopens a stream that ended for good (subscription deleted and re-created)
 *    and reports a liveness failure while it cannot.
 */
jest.setTimeout(120_000);

const registry = SchemaRegistry.load('schemas');
const TYPE = 'page_viewed';
const pubsub = newPubSub();
afterAll(() => pubsub.close());

/** The local store, but every staged-file write fails while `down` (a store outage for staging). */
class StagingOutageStore extends LocalDirectoryStore {
  down = false;
  failed = 0;
  override async createIfAbsent(name: string, data: Buffer): Promise<boolean> {
    if (this.down && name.startsWith('_staging/')) {
      this.failed++;
      throw new HourglassError('STORAGE_UNAVAILABLE', `injected outage: ${name}`);
    }
    return super.createIfAbsent(name, data);
  }
}

async function probe(
  consumer: RunningConsumer,
  path: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${consumer.port}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function provisioned(): Promise<string> {
  const prefix = uniquePrefix();
  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE], ackDeadline: seconds(10) });
  return prefix;
}

function configFor(prefix: string, pull: 'unary' | 'streaming' = 'unary') {
  return consumerConfig({
    prefix,
    pull,
    eventTypes: [TYPE],
    replicaId: 'probe',
    host: '127.0.0.1',
    port: 0,
    ...FAST_CONSUMER,
  });
}

test('a store outage: readyz 503 with the reason, healthz 200, nothing nacked; all acked after it', async () => {
  const prefix = await provisioned();
  const store = new StagingOutageStore(tempDir('outage'));
  const clock = new ManualClock(T0 + 30_000);
  const consumer = await startConsumer(configFor(prefix), { clock, store, logger: silentLogger, autoTick: false });
  const stats = () => consumer.status()[0]!.stats;
  try {
    store.down = true;
    const { bundles } = generateBundles(registry, TYPE, {
      events: 300,
      start: T0,
      spanMs: 30_000,
      maxBundle: 10,
      dupRate: 0,
      seed: 3,
    });
    const messages = await publishBundles(pubsub, prefix, TYPE, bundles);
    const step = async (): Promise<void> => {
      clock.advance(200);
      await consumer.tick();
    };
    await driveUntil(() => stats().messages >= messages && store.failed > 0, step);
    // several ack deadlines (10 s) of outage, by the real clock: Pub/Sub would redeliver a nacked or expired message
    const until = Date.now() + 25_000;
    while (Date.now() < until) await step();
    const ready = await probe(consumer, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.reasons).toEqual(expect.arrayContaining([`${TYPE}: staging writes failing`]));
    expect((await probe(consumer, '/healthz')).status).toBe(200);
    expect(stats()).toMatchObject({ nacked: 0, acked: 0, messages }); // held, not handed back, not redelivered
    store.down = false;
    await driveUntil(() => stats().acked === messages, step);
    expect(stats()).toMatchObject({ nacked: 0, acked: messages, messages, staged: 300 });
    await driveUntil(async () => (await probe(consumer, '/readyz')).status === 200, step);
  } finally {
    await consumer.stop();
  }
});

test('healthz: 503 with a reason when the tick loop stalls, 200 again once it ticks', async () => {
  const prefix = await provisioned();
  const clock = new ManualClock(T0);
  const store = new LocalDirectoryStore(tempDir('stall'));
  const consumer = await startConsumer(configFor(prefix), { clock, store, logger: silentLogger, autoTick: false });
  try {
    await consumer.tick();
    expect(await probe(consumer, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    clock.advance(Defaults.tickStallAfter + 1000); // no tick meanwhile
    const stalled = await probe(consumer, '/healthz');
    expect(stalled.status).toBe(503);
    expect(stalled.body).toMatchObject({ status: 'unhealthy', reasons: [expect.stringMatching(/^tick loop stalled/)] });
    await consumer.tick();
    expect((await probe(consumer, '/healthz')).status).toBe(200);
  } finally {
    await consumer.stop();
  }
});

test('streaming pull: a stream ended for good is reopened; liveness fails while it cannot be', async () => {
  const prefix = await provisioned();
  const names = resourceNames(prefix, TYPE);
  const clock = new ManualClock(T0 + 30_000);
  const store = new LocalDirectoryStore(tempDir('reopen'));
  const consumer = await startConsumer(configFor(prefix, 'streaming'), {
    clock,
    store,
    logger: silentLogger,
    autoTick: false,
  });
  const acked = () => consumer.status()[0]!.stats.acked;
  const step = async (): Promise<void> => {
    clock.advance(200);
    await consumer.tick();
  };
  const batch = (seed: number) =>
    generateBundles(registry, TYPE, { events: 20, start: T0, spanMs: 30_000, maxBundle: 5, dupRate: 0, seed }).bundles;
  try {
    const first = await publishBundles(pubsub, prefix, TYPE, batch(4));
    await driveUntil(() => acked() >= first, step);
    // the subscription goes away (NOT_FOUND ends the stream for good), then comes back
    await pubsub.subscription(names.subscription).delete();
    await new Promise((r) => setTimeout(r, 3000));
    await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE], ackDeadline: seconds(10) });
    const second = await publishBundles(pubsub, prefix, TYPE, batch(5));
    await driveUntil(() => acked() >= first + second, step);
    expect(acked()).toBe(first + second);
  } finally {
    await consumer.stop();
  }

  // liveness of a stream that cannot be reopened (its subscription does not exist)
  const gone = new StreamingSource(
    pubsub.subscription(`${names.subscription}-missing`),
    { maxMessages: 10, maxBytes: 1 << 20, ackDeadlineMs: 10_000, maxExtensionMs: 60_000, deadAfterMs: 2000 },
    silentLogger,
  );
  gone.start((m: InboundMessage) => m.ack());
  try {
    const deadline = Date.now() + 30_000;
    while (gone.liveness() === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(gone.liveness()).toMatch(/^streaming pull closed for \d+ s/);
    expect(gone.problem()).toMatch(/^stream closed/);
  } finally {
    await gone.close();
  }
});

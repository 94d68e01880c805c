import { provisionTopology } from '@hourglass/cli';
import { Defaults, ManualClock, seconds, seededRandom, silentLogger } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore } from '@hourglass/storage';
import { FlowBudget, consumerConfig, startConsumer } from '@hourglass/consumer';
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
 * Flow control is one budget for the whole process (#13.3): what all subscriptions hold together
 * stays within HOURGLASS_FLOW_MAX_MESSAGES (before: each subscription had the whole budget, so
 * two types held twice it), and it is handed out in turn, so a hot type cannot starve a cold one.
 */
jest.setTimeout(120_000);

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a reader that comes back while another waits queues behind it', async () => {
  const budget = new FlowBudget(10, 1 << 30);
  const hot = budget.reserve(1000);
  expect(await hot.granted).toBe(10);
  budget.received(10, 10, 100);
  const grants: string[] = [];
  void budget.reserve(1000).granted.then((n) => grants.push(`cold:${n}`));
  void budget.reserve(1000).granted.then((n) => grants.push(`hot:${n}`));
  budget.release(10); // the hot type settles one message: the room goes to the cold type first
  await flush();
  expect(grants).toEqual(['cold:1']);
  budget.received(1, 1, 10);
  budget.release(10);
  await flush();
  expect(grants).toEqual(['cold:1', 'hot:1']);
});

test('random readers: never more than the budget held or reserved, and every waiter served in order', async () => {
  const random = seededRandom(11);
  const budget = new FlowBudget(50, 1 << 30);
  const held: number[] = [0, 0, 0, 0, 0];
  const waiting: { reader: number; order: number }[] = [];
  const served: number[] = [];
  let order = 0;
  let reserved = 0;
  for (let step = 0; step < 5000; step++) {
    const reader = Math.floor(random() * 5);
    if (random() < 0.5) {
      const mine = order++;
      waiting.push({ reader, order: mine });
      void budget.reserve(1 + Math.floor(random() * 30)).granted.then((n) => {
        served.push(mine);
        const got = Math.floor(random() * (n + 1)); // a Pull answers with up to the reservation
        reserved += n;
        budget.received(n, got, got);
        reserved -= n;
        held[reader]! += got;
      });
    } else if (held[reader]! > 0) {
      held[reader]!--;
      budget.release(1);
    }
    await flush();
    expect(held.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(50);
    expect(budget.held.messages + reserved).toBeLessThanOrEqual(50);
  }
  // FIFO: served in the order they asked
  expect(served).toEqual([...served].sort((a, b) => a - b));
  expect(served.length).toBeGreaterThan(100);
});

test('two subscriptions hold at most the process budget together, each a share of it', async () => {
  const registry = SchemaRegistry.load('schemas');
  const types = ['track_played', 'page_viewed'];
  const prefix = uniquePrefix();
  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: types, ackDeadline: seconds(10) });
  const pubsub = newPubSub();
  try {
    for (const [i, type] of types.entries()) {
      const { bundles } = generateBundles(registry, type, {
        events: 200,
        start: T0,
        spanMs: 30_000,
        maxBundle: 1, // one event per message: held events = held messages
        dupRate: 0,
        seed: 20 + i,
      });
      await publishBundles(pubsub, prefix, type, bundles);
    }
  } finally {
    await pubsub.close();
  }
  const config = consumerConfig({
    prefix,
    eventTypes: types,
    replicaId: 'budget',
    host: '127.0.0.1',
    port: 0,
    ...FAST_CONSUMER,
    flowMaxMessages: 50,
    stageMaxAge: seconds(600), // no tick: nothing is staged, everything received stays held
  });
  const consumer = await startConsumer(config, {
    clock: new ManualClock(T0 + 30_000),
    store: new LocalDirectoryStore(tempDir('budget')),
    logger: silentLogger,
    autoTick: false,
    http: false,
  });
  try {
    const held = () => consumer.status().map((s) => s.heldEvents);
    await driveUntil(
      () => held().reduce((a, b) => a + b, 0) >= 50,
      () => new Promise((r) => setTimeout(r, 100)),
    );
    await new Promise((r) => setTimeout(r, 2000)); // more Pulls would come now if allowed
    expect(held().reduce((a, b) => a + b, 0)).toBe(50);
    expect(held().every((n) => n > 0)).toBe(true);
  } finally {
    await consumer.stop();
  }
});

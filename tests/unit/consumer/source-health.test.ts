import type { protos, v1 } from '@google-cloud/pubsub';
import { silentLogger } from '@hourglass/common';
import { FlowBudget, ReplicaWatermark, UnaryPullSource, type UnaryPullOptions } from '@hourglass/consumer';
import { shortPollFloorMs } from '@hourglass/consumer/source/poll-pacing';

/**
 * The idle rule and source health (pure, no Pub/Sub): a replica whose subscription cannot be read
 * (Pulls failing, stream down, pulling paused, or the backlog of an outage not drained yet) keeps
 * its watermark where it is — neither the idle rule nor the smallest gateway_ts received in a
 * tick may move it — and counts as idle only `idleAfter` after the source is healthy again.
 */
const IDLE_AFTER = 1000;
const PUBLISH_DELAY = 2000;
const T = 1_000_000;

test('unhealthy: the watermark stays put whatever arrives and however long it lasts', () => {
  const wm = new ReplicaWatermark({ idleAfterMs: IDLE_AFTER, maxPublishDelayMs: PUBLISH_DELAY }, T);
  expect(wm.advance(T + 5000, undefined)).toBe(T + 5000 - PUBLISH_DELAY); // idle: follows the clock
  wm.setSourceHealthy(false, T + 5000);
  wm.observe(T + 20_000, T + 30_000); // a message of the backlog, newer than what still waits
  expect(wm.advance(T + 60_000, undefined)).toBe(T + 3000);
  expect(wm.advance(T + 120_000, undefined)).toBe(T + 3000);
  expect(wm.isIdle(T + 120_000)).toBe(false);
  // healthy again: not idle before idleAfter has passed since then
  wm.setSourceHealthy(true, T + 120_000);
  expect(wm.isIdle(T + 120_000 + IDLE_AFTER - 1)).toBe(false);
  expect(wm.advance(T + 120_000 + IDLE_AFTER - 1, undefined)).toBe(T + 3000);
  expect(wm.advance(T + 120_000 + IDLE_AFTER, undefined)).toBe(T + 120_000 + IDLE_AFTER - PUBLISH_DELAY);
});

test('healthy: a message seen in the tick is the candidate, as before', () => {
  const wm = new ReplicaWatermark({ idleAfterMs: IDLE_AFTER, maxPublishDelayMs: PUBLISH_DELAY }, T);
  wm.observe(T + 500, T + 10_000);
  expect(wm.advance(T + 10_000, undefined)).toBe(T + 500);
});

/**
 * A SubscriberClient that answers each Pull when the test says so (short polls): the order of a
 * pause and a Pull's answer can be set exactly, which the emulator cannot do.
 */
class ScriptedSubscriber {
  readonly pulls: {
    answer: (messages: protos.google.pubsub.v1.IReceivedMessage[]) => void;
    fail: (code: number) => void;
  }[] = [];
  readonly innerApiCalls = {
    pull: (): Promise<[protos.google.pubsub.v1.IPullResponse]> & { cancel(): void } => {
      let answer!: (messages: protos.google.pubsub.v1.IReceivedMessage[]) => void;
      let fail!: (code: number) => void;
      const call = new Promise<[protos.google.pubsub.v1.IPullResponse]>((resolve, reject) => {
        answer = (receivedMessages) => resolve([{ receivedMessages }]);
        fail = (code) => reject(Object.assign(new Error(`status ${code}`), { code }));
      });
      const cancel = (): void => fail(1);
      this.pulls.push({ answer, fail });
      return Object.assign(call, { cancel });
    },
  };
  async initialize(): Promise<void> {}
  async close(): Promise<void> {}
  async acknowledge(): Promise<[object]> {
    return [{}];
  }
  async modifyAckDeadline(): Promise<[object]> {
    return [{}];
  }
  async nextPull(n: number): Promise<ScriptedSubscriber['pulls'][number]> {
    const deadline = Date.now() + 5000;
    while (this.pulls.length <= n) {
      if (Date.now() > deadline) throw new Error(`Pull ${n} was never sent`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.pulls[n]!;
  }
}

/** A short-polling source over `client`, with an ack deadline of 10 s. */
function scriptedSource(
  client: ScriptedSubscriber,
  options: Partial<UnaryPullOptions> = {},
  now?: () => number,
): UnaryPullSource {
  return new UnaryPullSource(
    client as unknown as v1.SubscriberClient,
    {
      subscription: 'projects/p/subscriptions/s',
      budget: new FlowBudget(1000, 1 << 30),
      ackDeadlineMs: 10_000,
      maxExtensionMs: 600_000,
      pullBatch: 1000,
      pullWaitMs: 60_000,
      longPoll: false,
      ...options,
    },
    silentLogger,
    now,
  );
}

const message = (id: string): protos.google.pubsub.v1.IReceivedMessage => ({
  ackId: `ack-${id}`,
  message: { messageId: id, data: Buffer.from(id), attributes: {} },
});

test('unary pull: a Pull sent before pause() and answered empty after it does not make the source healthy', async () => {
  const client = new ScriptedSubscriber();
  const source = scriptedSource(client);
  const health: boolean[] = [];
  source.onHealth((h) => health.push(h));
  source.start((m) => m.ack());
  try {
    (await client.nextPull(0)).answer([]); // caught up
    const inFlight = await client.nextPull(1);
    await until(() => health.length === 1);
    expect(health).toEqual([true]);
    source.pause('staging writes failing');
    expect(health).toEqual([true, false]);
    // the short poll sent before the pause answers empty; meanwhile a backlog piles up in Pub/Sub
    inFlight.answer([]);
    await new Promise((r) => setTimeout(r, 50));
    expect(health).toEqual([true, false]);
    source.resume();
    (await client.nextPull(2)).answer([message('1'), message('2')]); // the backlog: not drained
    await new Promise((r) => setTimeout(r, 50));
    expect(health).toEqual([true, false]);
    (await client.nextPull(3)).answer([]); // sent after the resume, answered empty: caught up
    await until(() => health.length === 3);
    expect(health).toEqual([true, false, true]);
  } finally {
    await source.close();
  }
});

test('unary pull: after a failed Pull the source is caught up only once the redelivery bound has passed', async () => {
  const client = new ScriptedSubscriber();
  let now = T;
  const source = scriptedSource(client, { redeliveryBoundMs: 70_000 }, () => now);
  const health: boolean[] = [];
  source.onHealth((h) => health.push(h));
  source.start((m) => m.ack());
  try {
    (await client.nextPull(0)).answer([]);
    await until(() => health.length === 1);
    (await client.nextPull(1)).fail(14); // UNAVAILABLE: its answer, with messages in it, may be lost
    await until(() => health.length === 2);
    expect(health).toEqual([true, false]);
    // past the ack deadline, within Pub/Sub's redelivery delay: the lost messages may not be back yet
    now = T + 10_001;
    (await client.nextPull(2)).answer([]);
    await new Promise((r) => setTimeout(r, 50));
    expect(health).toEqual([true, false]);
    now = T + 70_000;
    (await client.nextPull(3)).answer([]);
    await until(() => health.length === 3);
    expect(health).toEqual([true, false, true]);
  } finally {
    await source.close();
  }
});

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('short polls of a process with many subscriptions', () => {
  test('the floor: 2 ms per subscription, 20–250 ms', () => {
    expect([1, 10, 50, 100, 125, 1000].map(shortPollFloorMs)).toEqual([20, 20, 100, 200, 250, 250]);
  });

  test('an answer with fewer messages than asked waits the floor before the next Pull; a full one does not', async () => {
    const client = new ScriptedSubscriber();
    const source = scriptedSource(client, { shortPollFloorMs: 1000, pullBatch: 2 }); // far apart from scheduling noise
    source.start((m) => m.ack());
    try {
      (await client.nextPull(0)).answer([message('a'), message('b')]); // full: pull again at once
      const full = Date.now();
      (await client.nextPull(1)).answer([message('c')]); // drained: wait the floor
      expect(Date.now() - full).toBeLessThan(500);
      const partial = Date.now();
      (await client.nextPull(2)).answer([]);
      expect(Date.now() - partial).toBeGreaterThanOrEqual(990);
      const empty = Date.now();
      await client.nextPull(3); // empty: backs off from the floor
      expect(Date.now() - empty).toBeGreaterThanOrEqual(990);
    } finally {
      await source.close();
    }
  });

  test('without a floor (one subscription) a drained answer is followed by the next Pull at once', async () => {
    const client = new ScriptedSubscriber();
    const source = scriptedSource(client, { pullBatch: 2 });
    source.start((m) => m.ack());
    try {
      (await client.nextPull(0)).answer([message('a')]);
      const partial = Date.now();
      await client.nextPull(1);
      expect(Date.now() - partial).toBeLessThan(500);
    } finally {
      await source.close();
    }
  });
});

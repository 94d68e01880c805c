import type { v1 } from '@google-cloud/pubsub';
import { silentLogger } from '@hourglass/common';
import { AckBatcher } from '@hourglass/consumer/source/ack-batcher';

/**
 * The order Pub/Sub sees settle requests in. A fake subscriber client records each request and
 * answers when the test says so: an extension still in flight must be answered before a nack
 * of the same message is sent, or the extension lands last and the nack is undone (the message
 * then waits out its whole deadline instead of coming back at once).
 */
class FakeSubscriber {
  readonly calls: { kind: 'ack' | 'modack'; ids: string[]; deadline?: number; answer: () => void }[] = [];

  acknowledge(req: { ackIds: string[] }): Promise<unknown> {
    return new Promise((resolve) => this.calls.push({ kind: 'ack', ids: req.ackIds, answer: () => resolve({}) }));
  }

  modifyAckDeadline(req: { ackIds: string[]; ackDeadlineSeconds: number }): Promise<unknown> {
    return new Promise((resolve) =>
      this.calls.push({ kind: 'modack', ids: req.ackIds, deadline: req.ackDeadlineSeconds, answer: () => resolve({}) }),
    );
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a nack is sent only after an extension in flight is answered', async () => {
  const fake = new FakeSubscriber();
  const batcher = new AckBatcher(fake as unknown as v1.SubscriberClient, 'projects/p/subscriptions/s', silentLogger);
  const extended = batcher.extend(['a', 'b'], 10);
  await tick();
  batcher.queue('a', false);
  const flushed = batcher.flush();
  await tick();
  // only the extension has gone out; the nack waits for its answer
  expect(fake.calls.map((c) => [c.kind, c.ids, c.deadline])).toEqual([['modack', ['a', 'b'], 10]]);
  fake.calls[0]!.answer();
  await extended;
  await tick();
  expect(fake.calls.map((c) => [c.kind, c.ids, c.deadline])).toEqual([
    ['modack', ['a', 'b'], 10],
    ['modack', ['a'], 0],
  ]);
  fake.calls[1]!.answer();
  await flushed;
});

test('acks and nacks queued together go out in one flush, acks first', async () => {
  const fake = new FakeSubscriber();
  const batcher = new AckBatcher(fake as unknown as v1.SubscriberClient, 'projects/p/subscriptions/s', silentLogger);
  batcher.queue('x', true);
  batcher.queue('y', false);
  const flushed = batcher.flush();
  await tick();
  expect(fake.calls.map((c) => c.kind)).toEqual(['ack']);
  fake.calls[0]!.answer();
  await tick();
  expect(fake.calls.map((c) => [c.kind, c.ids, c.deadline])).toEqual([
    ['ack', ['x'], undefined],
    ['modack', ['y'], 0],
  ]);
  fake.calls[1]!.answer();
  await flushed;
});

import type { v1 } from '@google-cloud/pubsub';
import { silentLogger } from '@hourglass/common';
import { AckBatcher } from '@hourglass/consumer';

/**
 * Acks, nacks and lease extensions of unary pull against a SubscriberClient whose answers the test
 * releases one by one, so a nack can be placed while an extension of the same message is in flight.
 */
interface Request {
  what: 'ack' | 'modack';
  ackIds: string[];
  seconds?: number;
  answer: () => void;
}

class ScriptedSettler {
  readonly requests: Request[] = [];
  private call(what: Request['what'], ackIds: string[], seconds?: number): Promise<[object]> {
    return new Promise((resolve) => {
      this.requests.push({ what, ackIds, ...(seconds === undefined ? {} : { seconds }), answer: () => resolve([{}]) });
    });
  }
  acknowledge(r: { ackIds: string[] }): Promise<[object]> {
    return this.call('ack', r.ackIds);
  }
  modifyAckDeadline(r: { ackIds: string[]; ackDeadlineSeconds: number }): Promise<[object]> {
    return this.call('modack', r.ackIds, r.ackDeadlineSeconds);
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

test('a nack sent while an extension of the same message is in flight is sent again once the extension is answered', async () => {
  const client = new ScriptedSettler();
  const batcher = new AckBatcher(client as unknown as v1.SubscriberClient, 'projects/p/subscriptions/s', silentLogger);
  const extended = batcher.extend(['a', 'b'], 10);
  expect(client.requests.map((r) => [r.what, r.ackIds, r.seconds])).toEqual([['modack', ['a', 'b'], 10]]);
  batcher.queue('a', false);
  const flushed = batcher.flush();
  await tick();
  // the nack goes out at once, while the extension is still unanswered: Pub/Sub may apply either last
  expect(client.requests.map((r) => [r.what, r.ackIds, r.seconds])).toEqual([
    ['modack', ['a', 'b'], 10],
    ['modack', ['a'], 0],
  ]);
  client.requests[1]!.answer();
  await flushed;
  client.requests[0]!.answer();
  await extended;
  const again = batcher.flush();
  await tick();
  // ...so the nack is repeated after the extension: the message is handed back, not held one more deadline
  expect(client.requests.map((r) => [r.what, r.ackIds, r.seconds])).toEqual([
    ['modack', ['a', 'b'], 10],
    ['modack', ['a'], 0],
    ['modack', ['a'], 0],
  ]);
  client.requests[2]!.answer();
  await again;
});

test('an extension leaves out what was settled since its list was made', async () => {
  const client = new ScriptedSettler();
  const batcher = new AckBatcher(client as unknown as v1.SubscriberClient, 'projects/p/subscriptions/s', silentLogger);
  const held = new Set(['a', 'b', 'c']);
  const ids = [...held];
  held.delete('b'); // acked between listing and sending
  const extended = batcher.extend(ids, 10, (id) => held.has(id));
  expect(client.requests.map((r) => [r.what, r.ackIds, r.seconds])).toEqual([['modack', ['a', 'c'], 10]]);
  client.requests[0]!.answer();
  await extended;
});

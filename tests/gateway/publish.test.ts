import { Defaults, ManualClock, ms } from '@hourglass/common';
import { PubSubPublisher, ThreadedPublisher, type MessagePublisher } from '@hourglass/gateway';
import { encodeRecords, type EncodedBundle } from '@hourglass/schemas';
import {
  T0,
  auth,
  provision,
  pullEvents,
  registry,
  samplePayloads,
  send,
  startTestGateway,
  tally,
  uniquePrefix,
  type Answer,
} from './support';

/**
 * The handover contract under Pub/Sub trouble: an event is answered `accepted` only when
 * Pub/Sub acked it within the publish timeout (counted from receive time); otherwise
 * `retry`, never `accepted`. Beyond the outstanding bound the gateway says OVERLOADED.
 */
const events = (n: number, type = 'ab_exposure') => ({
  events: Array.from({ length: n }, () => ({ type, payload: samplePayloads[type] })),
});

/** Resolves when `condition` holds (a poll on state, not a sleep standing in for it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 1));
}

function realPublisher(prefix: string, publishTimeout = Defaults.publishTimeout): PubSubPublisher {
  return new PubSubPublisher({
    projectId: Defaults.projectId,
    prefix,
    publishTimeout,
    batchMaxMessages: Defaults.pubsubBatchMaxMessages,
    batchMaxDelay: Defaults.pubsubBatchMaxDelay,
  });
}

describe('publish outcomes', () => {
  test('beyond the outstanding bound the gateway answers 503 OVERLOADED at once', async () => {
    const prefix = uniquePrefix('over');
    const subs = await provision(prefix, { types: ['ab_exposure'] });
    const gateway = await startTestGateway({
      prefix,
      config: { maxOutstandingEvents: 10, bundleLinger: ms(400) },
    });
    try {
      const first = send(gateway, { url: '/v1/events', headers: auth(), payload: events(8) });
      await until(() => gateway.outstanding.events === 8);
      const refused = await send(gateway, { url: '/v1/events', headers: auth(), payload: events(5) });
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.json<Answer>().error?.code).toBe('OVERLOADED');
      const fits = send(gateway, { url: '/v1/events', headers: auth(), payload: events(2) });
      await until(() => gateway.outstanding.events === 10);
      const full = await send(gateway, { url: '/v1/events', headers: auth(), payload: events(1) });
      expect(full.statusCode).toBe(503);
      expect(full.json<Answer>().error?.code).toBe('OVERLOADED');
      const answers = await Promise.all([first, fits]);
      expect(answers.map((a) => a.statusCode)).toEqual([200, 200]);
      const accepted = answers.flatMap((a) => a.json<Answer>().results.map((r) => r.id!));
      expect(gateway.outstanding.events).toBe(0);
      const again = await send(gateway, { url: '/v1/events', headers: auth(), payload: events(3) });
      expect(again.statusCode).toBe(200);
      accepted.push(...again.json<Answer>().results.map((r) => r.id!));
      expect(tally(accepted, await pullEvents(subs))).toEqual({
        accepted: 13,
        found: 13,
        lost: 0,
        duplicated: 0,
        unexpected: 0,
      });
    } finally {
      await gateway.close();
    }
  });

  test('an ack that arrives after the publish timeout is answered retry, not accepted', async () => {
    const prefix = uniquePrefix('late');
    const subs = await provision(prefix, { types: ['ab_exposure'] });
    const clock = new ManualClock(T0);
    const publishTimeout = ms(10_000);
    const real = realPublisher(prefix, publishTimeout);
    // Time passes beyond the bound while Pub/Sub works on the publish (a slow ack).
    const slowAck: MessagePublisher = {
      publish: (type: string, message: EncodedBundle) => {
        const acked = real.publish(type, message);
        return acked.then((id) => {
          clock.advance(publishTimeout + 1);
          return id;
        });
      },
      topicExists: (t) => real.topicExists(t),
      topicName: (t) => real.topicName(t),
      close: () => real.close(),
    };
    const gateway = await startTestGateway({ prefix, clock, publisher: slowAck, config: { publishTimeout } });
    try {
      const res = await send(gateway, { url: '/v1/events', headers: auth(), payload: events(4) });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      const answer = res.json<Answer>();
      expect(answer).toMatchObject({ accepted: 0, rejected: 0, retry: 4, error: { code: 'PUBLISH_TIMEOUT' } });
      for (const r of answer.results)
        expect(r).toMatchObject({ status: 'retry', code: 'PUBLISH_TIMEOUT', id: expect.any(String) });
      // Pub/Sub does have them: the client's retry will make duplicates, which the consumer drops by id.
      const found = await pullEvents(subs);
      expect(tally([], found)).toMatchObject({ accepted: 0, lost: 0, found: 4 });
      expect(found.map((f) => f.id).sort()).toEqual(answer.results.map((r) => r.id).sort());
    } finally {
      await gateway.close();
    }
  });

  test('events whose deadline passed while lingering are not published at all', async () => {
    const prefix = uniquePrefix('expired');
    const subs = await provision(prefix, { types: ['ab_exposure'] });
    const clock = new ManualClock(T0);
    const gateway = await startTestGateway({
      prefix,
      clock,
      config: { bundleLinger: ms(300), publishTimeout: ms(1000) },
    });
    try {
      const pending = send(gateway, { url: '/v1/events', headers: auth(), payload: events(3) });
      await until(() => gateway.outstanding.events === 3);
      clock.advance(1001);
      const res = await pending;
      expect(res.statusCode).toBe(503);
      expect(res.json<Answer>()).toMatchObject({ accepted: 0, retry: 3, error: { code: 'PUBLISH_TIMEOUT' } });
      expect(await pullEvents(subs)).toHaveLength(0);
    } finally {
      await gateway.close();
    }
  });

  test('a bundle whose linger ran out by the clock is sent when the next event comes, not when its timer fires', async () => {
    const prefix = uniquePrefix('overdue');
    const subs = await provision(prefix, { types: ['ab_exposure'] });
    const clock = new ManualClock(T0);
    // A linger far longer than the test: only the clock check can send the first bundle.
    const linger = ms(60_000);
    const gateway = await startTestGateway({
      prefix,
      clock,
      config: { bundleLinger: linger, publishTimeout: ms(600_000) },
    });
    try {
      const first = send(gateway, { url: '/v1/events', headers: auth(), payload: events(3) });
      await until(() => gateway.outstanding.events === 3);
      clock.advance(linger);
      const second = send(gateway, { url: '/v1/events', headers: auth(), payload: events(2) });
      const answered = await first;
      expect(answered.statusCode).toBe(200);
      expect(answered.json<Answer>().accepted).toBe(3);
      // The second request's events opened a bundle of their own, which still lingers.
      expect(gateway.outstanding.events).toBe(2);
      await gateway.close();
      const later = (await second).json<Answer>();
      expect(later.accepted).toBe(2);
      const ids = [...answered.json<Answer>().results, ...later.results].map((r) => r.id!);
      expect(tally(ids, await pullEvents(subs))).toEqual({
        accepted: 5,
        found: 5,
        lost: 0,
        duplicated: 0,
        unexpected: 0,
      });
    } finally {
      await gateway.close();
    }
  });

  test('a publish that never completes is answered retry at the publish timeout', async () => {
    const prefix = uniquePrefix('hang');
    const release: (() => void)[] = [];
    const hanging: MessagePublisher = {
      publish: () => new Promise<string>((resolve) => release.push(() => resolve('late'))),
      topicExists: async () => true,
      topicName: (t) => `${prefix}-${t}`,
      close: async () => undefined,
    };
    // The real clock: the gateway's own timer must fire.
    const gateway = await startTestGateway({
      prefix,
      publisher: hanging,
      clock: { now: () => Date.now() },
      config: { publishTimeout: ms(300) },
    });
    try {
      const res = await send(gateway, { url: '/v1/events', headers: auth(), payload: events(2) });
      expect(res.statusCode).toBe(503);
      expect(res.json<Answer>()).toMatchObject({ accepted: 0, retry: 2, error: { code: 'PUBLISH_TIMEOUT' } });
      // The bytes stay counted until the publish really settles.
      expect(gateway.outstanding.events).toBe(2);
      release.forEach((r) => r());
      await until(() => gateway.outstanding.events === 0);
    } finally {
      await gateway.close();
    }
  });

  test('a failed publish is answered retry with the gRPC status and nothing internal', async () => {
    // No topics under this prefix: Pub/Sub answers NOT_FOUND.
    const prefix = uniquePrefix('missing');
    const gateway = await startTestGateway({ prefix });
    try {
      const ready = await send(gateway, { method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ ready: false, reason: '5 of 5 topics not found' });
      const res = await send(gateway, { url: '/v1/events', headers: auth(), payload: events(2) });
      expect(res.statusCode).toBe(503);
      const answer = res.json<Answer>();
      expect(answer).toMatchObject({ accepted: 0, retry: 2, error: { code: 'PUBLISH_FAILED' } });
      expect(answer.results[0]!.reason).toMatch(/\(NOT_FOUND\)/);
      expect(answer.results[0]!.reason).not.toMatch(/projects\/|topic/i);
    } finally {
      await gateway.close();
    }
  });

  test('an exception inside the publisher becomes retry without leaking its message', async () => {
    const prefix = uniquePrefix('throw');
    const broken: MessagePublisher = {
      publish: () => {
        throw new Error('secret: connection string user:password@host');
      },
      topicExists: async () => true,
      topicName: (t) => t,
      close: async () => undefined,
    };
    const gateway = await startTestGateway({ prefix, publisher: broken });
    try {
      const res = await send(gateway, { url: '/v1/events', headers: auth(), payload: events(1) });
      expect(res.statusCode).toBe(503);
      expect(res.body).not.toMatch(/secret|password/);
      expect(res.json<Answer>().results[0]).toMatchObject({ status: 'retry', code: 'PUBLISH_FAILED' });
    } finally {
      await gateway.close();
    }
  });

  test('the Pub/Sub publisher batches messages per topic, acks each message, fails only its topic, and refuses after close', async () => {
    const prefix = uniquePrefix('batch');
    const subs = await provision(prefix, { types: ['ab_exposure'] });
    const publisher = new PubSubPublisher({
      projectId: Defaults.projectId,
      prefix,
      publishTimeout: Defaults.publishTimeout,
      batchMaxMessages: 4,
      batchMaxDelay: ms(20),
    });
    const type = registry.get('ab_exposure').latest;
    const records = Array.from({ length: 10 }, (_, i) => ({
      meta: {
        event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        gateway_ts: T0,
        client_ts: null,
        gateway_id: 'g',
      },
      ...samplePayloads.ab_exposure,
      user_id: `u${i}`,
    }));
    try {
      // Ten messages in one tick: two full batches of four, and two sent at the delay; a
      // missing topic fails its own publish only.
      const acks = records.map((r) => publisher.publish('ab_exposure', encodeRecords(type, [r as never])));
      const missing = publisher.publish('page_viewed', encodeRecords(type, [records[0] as never]));
      const ids = await Promise.all(acks);
      await expect(missing).rejects.toMatchObject({ code: 5 });
      expect(ids).toHaveLength(10);
      expect(ids.every((id) => id.length > 0)).toBe(true); // the emulator numbers ids per request, so not unique here
      const found = await pullEvents(subs);
      const users = (rs: readonly { user_id?: unknown }[]): unknown[] => rs.map((r) => r.user_id).sort();
      expect(users(found.map((f) => f.record))).toEqual(users(records));
      expect(found.map((f) => f.record)).toEqual(expect.arrayContaining(records));
      // A batch still waiting for its delay is sent by close, not dropped.
      const last = publisher.publish('ab_exposure', encodeRecords(type, [records[0] as never]));
      await publisher.close();
      expect(await last).not.toBe('');
    } finally {
      await publisher.close();
    }
    await expect(publisher.publish('ab_exposure', encodeRecords(type, [records[0] as never]))).rejects.toThrow(
      /closed/,
    );
  });

  test('the threaded publisher carries acks and gRPC errors across the thread and refuses after close', async () => {
    const prefix = uniquePrefix('thread');
    const subs = await provision(prefix, { types: ['ab_exposure'] });
    const options = {
      projectId: Defaults.projectId,
      prefix,
      publishTimeout: Defaults.publishTimeout,
      batchMaxMessages: 1,
      batchMaxDelay: ms(0),
    };
    const threaded = new ThreadedPublisher(options);
    try {
      expect(await threaded.topicExists('ab_exposure')).toBe(true);
      expect(await threaded.topicExists('page_viewed')).toBe(false);
      const type = registry.get('ab_exposure').latest;
      const record = {
        meta: { event_id: '00000000-0000-4000-8000-000000000001', gateway_ts: T0, client_ts: null, gateway_id: 'g' },
        ...samplePayloads.ab_exposure,
      };
      // A view into a larger buffer (as from the datum arena) must arrive intact.
      const arena = Buffer.concat([Buffer.from('junk'), type.type.toBuffer(record), Buffer.from('tail')]);
      const datum = arena.subarray(4, arena.length - 4);
      const message = encodeRecords(type, [record as never]);
      await threaded.publish('ab_exposure', { data: datum, attributes: message.attributes });
      await expect(threaded.publish('page_viewed', message)).rejects.toMatchObject({ code: 5 });
      const found = await pullEvents(subs);
      expect(found.map((f) => f.record)).toEqual([record]);
    } finally {
      await threaded.close();
    }
    await expect(threaded.topicExists('ab_exposure')).rejects.toThrow(/closed/);
  });
});

import { randomUUID } from 'node:crypto';
import { Defaults, ManualClock } from '@hourglass/common';
import { HourglassClient, type ClientEvent } from '@hourglass/client';
import { freePort } from '@hourglass/emulator';
import { PubSubPublisher, type Gateway, type MessagePublisher } from '@hourglass/gateway';
import { TOKENS, provision, pullEvents, samplePayloads, urlOf, startTestGateway, tally, uniquePrefix } from './support';

/**
 * The client library: re-sends only `retry` results, with the SAME ids, after a jittered
 * exponential backoff that honours Retry-After; never re-sends `rejected`; gives up at its
 * deadline and says so. Time is a ManualClock advanced by the injected sleep: no waiting.
 */
const valid = (n: number): ClientEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    type: 'ab_exposure',
    payload: { ...samplePayloads.ab_exposure, user_id: `u${i}` },
  }));
const invalid = (n: number): ClientEvent[] =>
  Array.from({ length: n }, () => ({ type: 'ab_exposure', payload: { ...samplePayloads.ab_exposure, variant: 7 } }));

describe('HourglassClient', () => {
  const prefix = uniquePrefix('client');
  let subs: Map<string, string>;
  let gateway: Gateway;
  let url: string;
  /** While true, every publish fails: the gateway answers `retry`. */
  let pubsubDown = false;

  beforeAll(async () => {
    subs = await provision(prefix, { types: ['ab_exposure'] });
    const real = new PubSubPublisher({
      projectId: Defaults.projectId,
      prefix,
      publishTimeout: Defaults.publishTimeout,
      batchMaxMessages: Defaults.pubsubBatchMaxMessages,
      batchMaxDelay: Defaults.pubsubBatchMaxDelay,
    });
    const switchable: MessagePublisher = {
      publish: (t, m) =>
        pubsubDown ? Promise.reject(Object.assign(new Error('down'), { code: 14 })) : real.publish(t, m),
      topicExists: (t) => real.topicExists(t),
      topicName: (t) => real.topicName(t),
      close: () => real.close(),
    };
    gateway = await startTestGateway({ prefix, publisher: switchable, config: { maxEventsPerBatch: 40 } });
    url = await urlOf(gateway);
  });
  afterAll(async () => {
    await gateway?.close();
  });

  test('retries `retry` results with the same ids, never the rejected ones', async () => {
    const clock = new ManualClock(0);
    const delays: number[] = [];
    const client = new HourglassClient({
      url,
      apiKey: TOKENS.all,
      clock,
      random: () => 0.5,
      sleep: async (ms) => {
        delays.push(ms);
        clock.advance(ms);
        pubsubDown = false; // Pub/Sub comes back while the client waits
      },
    });
    const ownId = randomUUID();
    const events = [{ ...valid(1)[0]!, id: ownId }, ...valid(29), ...invalid(5)];
    pubsubDown = true;
    const report = await client.send(events);
    client.close();
    expect(report).toMatchObject({ sent: 35, accepted: 30, rejected: 5, failed: 0, retried: 30, requests: 2 });
    expect(report.outcomes[0]!.id).toBe(ownId);
    for (const o of report.outcomes.slice(0, 30)) expect(o).toMatchObject({ status: 'accepted', attempts: 2 });
    for (const o of report.outcomes.slice(30)) {
      expect(o).toMatchObject({ status: 'rejected', attempts: 1, code: 'EVENT_INVALID', path: 'payload.variant' });
    }
    // The gateway's Retry-After (1 s) is a floor under the jittered backoff.
    expect(delays).toEqual([1000]);
    const accepted = report.outcomes.filter((o) => o.status === 'accepted').map((o) => o.id);
    expect(tally(accepted, await pullEvents(subs))).toEqual({
      accepted: 30,
      found: 30,
      lost: 0,
      duplicated: 0,
      unexpected: 0,
    });
  });

  test('gives up at the deadline and reports the events as failed', async () => {
    const clock = new ManualClock(0);
    const delays: number[] = [];
    const client = new HourglassClient({
      url,
      apiKey: TOKENS.all,
      clock,
      deadlineMs: 20_000,
      initialBackoffMs: 500,
      maxBackoffMs: 4000,
      random: () => 1,
      sleep: async (ms) => {
        delays.push(ms);
        clock.advance(ms);
      },
    });
    pubsubDown = true;
    const report = await client.send(valid(10));
    pubsubDown = false;
    client.close();
    expect(report).toMatchObject({ sent: 10, accepted: 0, rejected: 0, failed: 10 });
    for (const o of report.outcomes) expect(o).toMatchObject({ status: 'failed', code: 'PUBLISH_FAILED' });
    // max(Retry-After 1 s, 500 * 2^k capped at 4 s), stopping before the deadline.
    expect(delays).toEqual([1000, 1000, 2000, 4000, 4000, 4000]);
    expect(report.outcomes[0]!.attempts).toBe(delays.length + 1);
    expect(clock.now()).toBeLessThanOrEqual(20_000);
  });

  test('a batch over the gateway limit is split, not dropped', async () => {
    const client = new HourglassClient({ url, apiKey: TOKENS.all, batchSize: 100, sleep: async () => undefined });
    const report = await client.send(valid(100));
    client.close();
    expect(report).toMatchObject({ accepted: 100, rejected: 0, failed: 0 });
    const found = await pullEvents(subs);
    expect(
      tally(
        report.outcomes.map((o) => o.id),
        found,
      ),
    ).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0 });
  });

  test('a bad key is permanent: rejected after one request', async () => {
    let slept = 0;
    const client = new HourglassClient({ url, apiKey: 'wrong', sleep: async () => void slept++ });
    const report = await client.send(valid(3));
    client.close();
    expect(report).toMatchObject({ rejected: 3, requests: 1, retried: 0 });
    expect(report.outcomes[0]).toMatchObject({ status: 'rejected', code: 'HTTP_UNAUTHENTICATED' });
    expect(slept).toBe(0);
  });

  test('an unreachable gateway is retried until the deadline', async () => {
    const clock = new ManualClock(0);
    const client = new HourglassClient({
      url: `http://127.0.0.1:${await freePort()}`,
      clock,
      deadlineMs: 5000,
      sleep: async (ms) => clock.advance(ms),
    });
    const report = await client.send(valid(2));
    client.close();
    expect(report.failed).toBe(2);
    expect(report.outcomes[0]).toMatchObject({ status: 'failed', code: 'NETWORK' });
    expect(report.requests).toBeGreaterThan(1);
  });
});

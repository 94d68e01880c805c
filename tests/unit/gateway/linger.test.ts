import fc from 'fast-check';
import { ms, type Duration } from '@hourglass/common';
import { Attr } from '@hourglass/schemas';
import { BatchAnswer } from '@hourglass/gateway';
import { AdaptiveLinger, type BundleArrivals } from '@hourglass/gateway/linger';
import type { Bundler } from '@hourglass/gateway/bundler';
import { RequestTrace } from '@hourglass/gateway/traceparent';
import { registry } from '../../gateway/support';
import { bundlerOver } from './bundler-support';

/**
 * The adaptive linger alone (AdaptiveLinger: any sequence of bundles keeps it within its bounds;
 * it settles where a steady rate fills a bundle) and inside the Bundler, with the bundler's own
 * timers under jest's fake clock: what a light type, a dense type and a lone sequential client
 * make of it, counted in Publish calls.
 */
const SEED = 20261205;
const settings = { base: ms(15), max: ms(100), targetEvents: 100 };

describe('AdaptiveLinger', () => {
  const arrivalsArb: fc.Arbitrary<BundleArrivals> = fc
    .record({
      linger: fc.integer({ min: 0, max: 200 }),
      age: fc.integer({ min: 0, max: 400 }),
      joined: fc.nat(1000),
      late: fc.nat(1000),
    })
    .map(({ linger, age, joined, late }) => ({
      linger: linger as Duration,
      age,
      joined,
      joinedAfterBase: Math.min(joined, late),
    }));

  test('the linger stays within [base, max] whatever bundles it is shown', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(arrivalsArb, { maxLength: 30 }),
        (base, max, targetEvents, bundles) => {
          const linger = new AdaptiveLinger({ base: base as Duration, max: max as Duration, targetEvents });
          for (const b of bundles) {
            linger.observe('k', b);
            const l = linger.lingerFor('k');
            if (max <= base) expect(l).toBe(base);
            else {
              expect(l).toBeGreaterThanOrEqual(base);
              expect(l).toBeLessThanOrEqual(max);
            }
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('a steady rate settles on the linger that gathers the target, or the nearest bound', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.001, max: 50, noNaN: true }), (perMs) => {
        const linger = new AdaptiveLinger(settings);
        let l = linger.lingerFor('k');
        for (let i = 0; i < 40; i++) {
          // A bundle of the current linger: the arrivals a steady rate brings in that time.
          linger.observe('k', { linger: l, age: l, joined: perMs * l, joinedAfterBase: perMs * (l - settings.base) });
          l = linger.lingerFor('k');
        }
        const wanted = perMs * (settings.max - settings.base) < 1 ? settings.base : settings.targetEvents / perMs;
        const expected = Math.min(settings.max, Math.max(settings.base, wanted));
        expect(l).toBeCloseTo(expected, 6);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  test('an extension that gathered nothing is dropped at once', () => {
    const linger = new AdaptiveLinger(settings);
    linger.observe('k', { linger: settings.base, age: 15, joined: 20, joinedAfterBase: 0 });
    expect(linger.lingerFor('k')).toBe(75);
    linger.observe('k', { linger: ms(75), age: 75, joined: 20, joinedAfterBase: 0 });
    expect(linger.lingerFor('k')).toBe(settings.base);
  });

  test('types are kept apart, and no arrivals from others keeps the base linger', () => {
    const linger = new AdaptiveLinger(settings);
    linger.observe('light', { linger: settings.base, age: 15, joined: 3, joinedAfterBase: 0 });
    linger.observe('alone', { linger: settings.base, age: 15, joined: 0, joinedAfterBase: 0 });
    expect(linger.lingerFor('light')).toBe(settings.max);
    expect(linger.lingerFor('alone')).toBe(settings.base);
    expect(linger.lingerFor('never-seen')).toBe(settings.base);
  });
});

describe('Bundler with the adaptive linger', () => {
  const writerA = registry.get('page_viewed').latest;
  const writerB = registry.get('track_played').latest;
  const datum = Buffer.alloc(64, 1);
  const published: { eventType: string; events: number; at: number }[] = [];
  let bundler: Bundler;

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    published.length = 0;
    bundler = bundlerOver(
      (eventType, message) => {
        published.push({ eventType, events: Number(message.attributes[Attr.count]), at: Date.now() });
        return Promise.resolve('id');
      },
      {
        maxEvents: 500,
        maxBytes: 1_000_000,
        linger: settings.base,
        maxLinger: settings.max,
        lingerTargetEvents: settings.targetEvents,
      },
    );
  });

  afterEach(() => {
    bundler.drain();
    jest.useRealTimers();
  });

  /** One request of `events` events of `writer` at the fake clock's now. */
  function request(writer: typeof writerA, events: number): BatchAnswer {
    const answer = new BatchAnswer(events);
    const trace = new RequestTrace(undefined, undefined);
    for (let i = 0; i < events; i++) {
      answer.expectDatum(i, datum);
      bundler.add(writer, datum, Date.now(), trace, answer, i);
    }
    return answer;
  }

  function publishesOf(eventType: string, from: number): { events: number; at: number }[] {
    return published.filter((p) => p.eventType === eventType && p.at >= from);
  }

  test('a light type fed by many requests waits longer and publishes a tenth as often; a dense one is untouched', () => {
    // page_viewed: one event every 2 ms from other clients (500/s); track_played: 50 events per ms.
    for (let t = 0; t < 3000; t++) {
      if (t % 2 === 0) request(writerA, 1);
      request(writerB, 50);
      jest.advanceTimersByTime(1);
    }
    const from = 1_000_000 + 1000; // after a second of learning
    const light = publishesOf('page_viewed', from);
    const dense = publishesOf('track_played', from);
    // 15 ms bundles would be 8 events, 133 a second; 100 ms ones hold ~50.
    expect(light.length).toBeLessThanOrEqual(22);
    expect(Math.min(...light.map((p) => p.events))).toBeGreaterThanOrEqual(40);
    // Dense bundles fill up (500 events) long before any linger.
    expect(dense.every((p) => p.events === 500)).toBe(true);
  });

  test('a lone client that waits for each answer before the next request keeps the 15 ms linger', async () => {
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      const answer = request(writerA, 20);
      let done = false;
      void answer.settled().then(() => (done = true));
      while (!done) await jest.advanceTimersByTimeAsync(1);
    }
    const elapsed = Date.now() - started;
    expect(publishesOf('page_viewed', started)).toHaveLength(50);
    // Each answer comes after the base linger (15-16 ms on this clock), never after the longer one.
    expect(elapsed).toBeLessThanOrEqual(50 * 17);
  });

  test('clients in lockstep that all wait for the same bundle do not keep a longer linger', async () => {
    const started = Date.now();
    let rounds = 0;
    while (Date.now() - started < 3000) {
      // Four clients: the first opens the bundle, three join it 1 ms later; all wait for its answer.
      const answers = [request(writerA, 10)];
      await jest.advanceTimersByTimeAsync(1);
      for (let c = 0; c < 3; c++) answers.push(request(writerA, 10));
      let done = false;
      void Promise.all(answers.map((a) => a.settled())).then(() => (done = true));
      while (!done) await jest.advanceTimersByTimeAsync(1);
      rounds++;
    }
    // Alternating 15 ms and one longer wait at most: far more rounds than 100 ms waits allow (30).
    expect(rounds).toBeGreaterThanOrEqual(45);
  });
});

import { randomUUID } from 'node:crypto';
import { ManualClock, ms, systemClock } from '@hourglass/common';
import { Attr } from '@hourglass/schemas';
import type { Gateway } from '@hourglass/gateway';
import {
  ALL_TYPES,
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
 * Handover: every event the gateway answers `accepted` is on its type's topic exactly as
 * sent (meta filled by the gateway, payload untouched), with the documented attributes;
 * rejected events are not there.
 */
describe('gateway publishes what it accepts', () => {
  const prefix = uniquePrefix('ingest');
  let subs: Map<string, string>;
  let gateway: Gateway;
  const clock = new ManualClock(T0);

  beforeAll(async () => {
    subs = await provision(prefix);
    gateway = await startTestGateway({ prefix, clock });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  test('accepted events land on their topics exactly as sent; rejected ones do not', async () => {
    const sent: { type: string; id?: string; client_ts?: number | string; payload: unknown }[] = [];
    const rejectedIds: string[] = [];
    for (let i = 0; i < 60; i++) {
      const type = ALL_TYPES[i % ALL_TYPES.length]!;
      const payload: Record<string, unknown> = {
        ...samplePayloads[type]!,
        ...('user_id' in samplePayloads[type]! ? { user_id: `user-${i}` } : {}),
      };
      if (type === 'page_viewed') payload.user_id = i % 2 ? null : `user-${i}`;
      if (i % 10 === 3) {
        const id = randomUUID();
        rejectedIds.push(id);
        sent.push({ type, id, payload: { ...payload, user_id: 42 } }); // wrong type: rejected
      } else if (i % 3 === 0) {
        sent.push({ type, payload, client_ts: T0 - 5000 - i }); // id assigned by the gateway
      } else {
        sent.push({ type, id: randomUUID(), client_ts: new Date(T0 - i).toISOString(), payload });
      }
    }
    const res = await send(gateway, {
      method: 'POST',
      url: '/v1/events',
      headers: { ...auth(), traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      payload: { events: sent },
    });
    expect(res.statusCode).toBe(207);
    const answer = res.json<Answer>();
    expect(answer.results).toHaveLength(sent.length);
    expect(answer.rejected).toBe(rejectedIds.length);
    expect(answer.accepted).toBe(sent.length - rejectedIds.length);

    const accepted = new Map<string, (typeof sent)[number]>();
    answer.results.forEach((r, i) => {
      const ev = sent[i]!;
      if (r.status === 'accepted') {
        if (ev.id) expect(r.id).toBe(ev.id);
        accepted.set(r.id!, ev);
      } else {
        expect(r).toMatchObject({ status: 'rejected', code: 'EVENT_INVALID', path: 'payload.user_id' });
        expect(rejectedIds).toContain(ev.id);
      }
    });

    const found = await pullEvents(subs);
    const counts = tally(accepted.keys(), found);
    expect(counts).toEqual({ accepted: accepted.size, found: accepted.size, lost: 0, duplicated: 0, unexpected: 0 });
    for (const id of rejectedIds) expect(found.some((f) => f.id === id)).toBe(false);

    for (const f of found) {
      const ev = accepted.get(f.id)!;
      const latest = registry.get(ev.type).latest;
      // The writer is the newest schema and the type's own topic carried it.
      expect(f.bundle.eventType).toBe(ev.type);
      expect(f.message.attributes[Attr.fingerprint]).toBe(latest.fingerprint);
      expect(f.message.attributes[Attr.eventType]).toBe(ev.type);
      expect(f.message.attributes[Attr.codec]).toBe('null');
      expect(Number(f.message.attributes[Attr.count])).toBe(f.bundle.records.length);
      expect(f.message.attributes[Attr.gatewayTs]).toBe(String(T0));
      expect(f.message.attributes[Attr.eventId]).toBe(f.bundle.records[0]!.meta.event_id);
      // The caller's trace continues in the message.
      expect(f.message.attributes[Attr.traceparent]).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
      const expectedClientTs = typeof ev.client_ts === 'string' ? Date.parse(ev.client_ts) : (ev.client_ts ?? null);
      expect(f.record.meta).toEqual({
        event_id: f.id,
        gateway_ts: T0,
        client_ts: expectedClientTs,
        gateway_id: 'gw-test-1',
      });
      const { meta: _meta, ...payload } = f.record;
      expect(payload).toEqual(ev.payload);
    }
  });

  test('defaults of the newest schema are filled for fields the client left out', async () => {
    const { offline: _o, context_uri: _c, ...v1Payload } = samplePayloads.track_played!;
    const res = await send(gateway, {
      method: 'POST',
      url: '/v1/events',
      headers: auth(),
      payload: { events: [{ type: 'track_played', payload: v1Payload }] },
    });
    expect(res.statusCode).toBe(200);
    const id = res.json<Answer>().results[0]!.id!;
    const found = await pullEvents(new Map([['track_played', subs.get('track_played')!]]));
    expect(found.map((f) => f.id)).toEqual([id]);
    expect(found[0]!.record).toMatchObject({ ...v1Payload, offline: false, context_uri: null });
  });

  test('events of one type from concurrent requests share one Pub/Sub message', async () => {
    const prefix2 = uniquePrefix('bundle');
    const subs2 = await provision(prefix2, { types: ['ab_exposure'] });
    // A long linger and a bundle of 10: three requests of 4 make one full bundle and one that lingers.
    const gw = await startTestGateway({
      prefix: prefix2,
      clock,
      config: { bundleMaxEvents: 10, bundleLinger: ms(300) },
    });
    try {
      const post = (n: number) =>
        send(gw, {
          method: 'POST',
          url: '/v1/events',
          headers: auth(),
          payload: {
            events: Array.from({ length: n }, () => ({ type: 'ab_exposure', payload: samplePayloads.ab_exposure })),
          },
        });
      const answers = await Promise.all([post(4), post(4), post(4)]);
      const ids = answers.flatMap((r) => {
        expect(r.statusCode).toBe(200);
        return r.json<Answer>().results.map((x) => x.id!);
      });
      const found = await pullEvents(subs2);
      expect(tally(ids, found)).toMatchObject({ accepted: 12, found: 12, lost: 0, duplicated: 0, unexpected: 0 });
      const sizes = [...new Set(found.map((f) => f.message))].map((m) => Number(m.attributes[Attr.count])).sort();
      expect(sizes).toEqual([10, 2]);
    } finally {
      await gw.close();
    }
  });

  test('concurrent requests, their buffers reused: every accepted event as sent, once', async () => {
    // Payload buffers and bundle buffers are reused (buffer-pool.ts); small bundles keep many
    // publishes in flight while later requests take buffers. Some events have escapes (the
    // WebAssembly reader declines them), some bodies another top-level key (the reader declines the
    // body: JSON.parse), some events are invalid (rejected).
    const prefix3 = uniquePrefix('reuse');
    const subs3 = await provision(prefix3);
    const gw = await startTestGateway({ prefix: prefix3, clock, config: { bundleMaxEvents: 7, bundleLinger: ms(5) } });
    try {
      const sentById = new Map<string, { type: string; payload: Record<string, unknown> }>();
      const post = (r: number) => {
        const events = Array.from({ length: 25 }, (_, i) => {
          const type = ALL_TYPES[(r + i) % ALL_TYPES.length]!;
          const userId = i % 7 === 3 ? `user ${r}-${i} "quoted"\n` : `user-${r}-${i}`;
          const payload = { ...samplePayloads[type]!, user_id: i % 13 === 5 ? 42 : userId };
          return { type, id: randomUUID(), payload };
        });
        return send(gw, {
          method: 'POST',
          url: '/v1/events',
          headers: auth(),
          payload: r % 11 === 4 ? { batch: r, events } : { events },
        }).then((res) => {
          const answer = res.json<Answer>();
          answer.results.forEach((x, i) => {
            const ev = events[i]!;
            if (x.status === 'accepted') sentById.set(x.id!, ev);
            else expect(x).toMatchObject({ status: 'rejected', path: 'payload.user_id' });
          });
        });
      };
      await Promise.all(Array.from({ length: 40 }, (_, r) => post(r)));
      expect(sentById.size).toBe(40 * (25 - 2));
      const found = await pullEvents(subs3);
      expect(tally(sentById.keys(), found)).toEqual({
        accepted: sentById.size,
        found: sentById.size,
        lost: 0,
        duplicated: 0,
        unexpected: 0,
      });
      for (const f of found) {
        const ev = sentById.get(f.id)!;
        expect(f.bundle.eventType).toBe(ev.type);
        const { meta: _meta, ...payload } = f.record;
        expect(payload).toEqual(ev.payload);
      }
    } finally {
      await gw.close();
    }
  });

  test('a light type fed by many clients goes out in fewer, larger messages, every event once', async () => {
    const prefix2 = uniquePrefix('linger');
    const subs2 = await provision(prefix2, { types: ['ab_exposure'] });
    // The deployed defaults (15 ms linger, 250 ms at most for light types) on the real clock.
    const gw = await startTestGateway({ prefix: prefix2, clock: systemClock });
    try {
      // One event every 5 ms from a new request each time, answers not awaited: 200 events/s, which
      // a 15 ms linger would send as bundles of about 4 events and the adaptive one as 20-50.
      const sends: ReturnType<typeof send>[] = [];
      for (let i = 0; i < 300; i++) {
        sends.push(
          send(gw, {
            method: 'POST',
            url: '/v1/events',
            headers: auth(),
            payload: { events: [{ type: 'ab_exposure', payload: samplePayloads.ab_exposure }] },
          }),
        );
        await new Promise((r) => setTimeout(r, 5));
      }
      const ids = (await Promise.all(sends)).flatMap((r) => {
        expect(r.statusCode).toBe(200);
        return r.json<Answer>().results.map((x) => x.id!);
      });
      const found = await pullEvents(subs2);
      expect(tally(ids, found)).toMatchObject({ accepted: 300, found: 300, lost: 0, duplicated: 0, unexpected: 0 });
      const messages = new Set(found.map((f) => f.message)).size;
      expect(300 / messages).toBeGreaterThanOrEqual(8);
    } finally {
      await gw.close();
    }
  });

  test('deflate bundles and one-event messages for unbundled types decode to the same events', async () => {
    const prefix3 = uniquePrefix('codec');
    const subs3 = await provision(prefix3, { types: ['search_performed', 'page_viewed'] });
    const gw = await startTestGateway({
      prefix: prefix3,
      clock,
      config: { bundleCodec: 'deflate', unbundledTypes: ['page_viewed'] },
    });
    try {
      const events = [
        ...Array.from({ length: 5 }, () => ({ type: 'search_performed', payload: samplePayloads.search_performed })),
        ...Array.from({ length: 3 }, () => ({ type: 'page_viewed', payload: samplePayloads.page_viewed })),
      ];
      const res = await send(gw, { method: 'POST', url: '/v1/events', headers: auth(), payload: { events } });
      expect(res.statusCode).toBe(200);
      const ids = res.json<Answer>().results.map((r) => r.id!);
      const found = await pullEvents(subs3);
      expect(tally(ids, found)).toMatchObject({ accepted: 8, found: 8, lost: 0, duplicated: 0, unexpected: 0 });
      for (const f of found) {
        if (f.bundle.eventType === 'page_viewed') {
          // Plain Avro binary of one record: what a Pub/Sub topic schema or a BigQuery subscription reads.
          expect(f.message.attributes).toMatchObject({ [Attr.count]: '1', [Attr.codec]: 'null' });
          expect(registry.get('page_viewed').latest.type.fromBuffer(f.message.data)).toEqual(f.record);
        } else {
          expect(f.message.attributes).toMatchObject({ [Attr.count]: '5', [Attr.codec]: 'deflate' });
        }
      }
    } finally {
      await gw.close();
    }
  });
});

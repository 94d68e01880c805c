import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type avro from 'avsc';
import fc from 'fast-check';
import type { Gateway } from '@hourglass/gateway';
import { decodeBundle, metaType } from '@hourglass/schemas';
import { ALL_TYPES, auth, registry, send, type Answer } from '../gateway/support';
import { SEED, mutatedPayload, payloadText, validPayload } from './arbitraries';
import { recordingGateway, type RecordingPublisher } from './support';

/**
 * Property tests (fast-check, seeded) at the gateway, Pub/Sub replaced by a recorder:
 * a mutated event is accepted with exactly the values sent or rejected with a path, never
 * a 5xx; and the JSON and Avro routes give the same verdict on every value both can carry,
 * publishing the same payload bytes when they accept. (End to end: round-trip.test.ts.)
 */
jest.setTimeout(180_000);

let gateway: Gateway;
let published: RecordingPublisher;
beforeAll(async () => {
  ({ gateway, published } = await recordingGateway());
});
afterAll(() => gateway?.close());

const RUNS = 60;

/** A value as plain JSON data (avsc decodes records into class instances). */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

/** The one event published since `from`: its datum's payload bytes (after meta) and its decoded record. */
function lastPublished(from: number): { record: Record<string, unknown>; payloadBytes: Buffer } | undefined {
  const messages = published.messages.slice(from);
  if (messages.length === 0) return undefined;
  const { message } = messages[messages.length - 1]!;
  const record = decodeBundle(registry, message.data, message.attributes).records[0]! as Record<string, unknown>;
  const metaEnd = metaType.decode(message.data, 0).offset;
  return { record, payloadBytes: message.data.subarray(metaEnd) };
}

type Verdict = { status: 'accepted'; payloadBytes: Buffer } | { status: 'rejected'; path: string };

async function viaJson(type: string, text: string): Promise<{ http: number; verdict: Verdict; reason?: string }> {
  const from = published.messages.length;
  const body = `{"events":[{"type":"${type}","id":"${randomUUID()}","payload":${text}}]}`;
  const res = await send(gateway, {
    url: '/v1/events',
    headers: { ...auth(), 'content-type': 'application/json' },
    payload: body,
  });
  const result = res.json<Answer>().results?.[0];
  if (result?.status === 'accepted')
    return { http: res.statusCode, verdict: { status: 'accepted', payloadBytes: lastPublished(from)!.payloadBytes } };
  return {
    http: res.statusCode,
    verdict: { status: 'rejected', path: result?.path ?? '' },
    reason: result?.reason ?? res.body,
  };
}

async function viaAvro(type: string, datum: Buffer): Promise<{ http: number; verdict: Verdict }> {
  const from = published.messages.length;
  const version = String(registry.get(type).latest.version);
  const res = await send(gateway, {
    url: `/v1/events/${type}`,
    headers: { ...auth(), 'content-type': 'avro/binary', 'hourglass-schema-version': version },
    payload: datum,
  });
  const result = res.json<Answer>().results?.[0];
  if (result?.status === 'accepted')
    return { http: res.statusCode, verdict: { status: 'accepted', payloadBytes: lastPublished(from)!.payloadBytes } };
  return { http: res.statusCode, verdict: { status: 'rejected', path: result?.path ?? res.body } };
}

describe.each(ALL_TYPES)('%s', (eventType) => {
  const type = registry.get(eventType).latest.type as avro.types.RecordType;

  test('a mutated event is accepted unchanged or rejected with a path and a short reason, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedPayload(type), async ({ base, field, value }) => {
        const text = payloadText(base, field, value);
        const from = published.messages.length;
        const { http, verdict, reason } = await viaJson(eventType, text);
        expect(http).toBeLessThan(500);
        if (verdict.status === 'rejected') {
          expect(verdict.path).toMatch(/^payload(\.|$)/);
          expect(reason!.length).toBeLessThan(300);
          return;
        }
        const sent = JSON.parse(text) as Record<string, unknown>;
        const stored = lastPublished(from)!.record;
        for (const [k, v] of Object.entries(sent)) expect(isDeepStrictEqual(stored[k], v)).toBe(true);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  test('the Avro and JSON routes agree on every value both can carry', async () => {
    const candidates = fc.oneof(
      validPayload(type),
      mutatedPayload(type).map(
        ({ base, field, value }) => JSON.parse(payloadText(base, field, value)) as Record<string, unknown>,
      ),
    );
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(candidates, async (payload) => {
        const record = { meta: { event_id: randomUUID(), gateway_ts: 0, client_ts: null, gateway_id: '' }, ...payload };
        let datum: Buffer;
        try {
          datum = type.toBuffer(record);
        } catch {
          return; // the Avro route cannot carry it
        }
        // the Avro client's encoding altered it (a lone surrogate, an inexact long, an extra key): not the same value
        if (!isDeepStrictEqual(plain(type.fromBuffer(datum)), plain(record))) return;
        compared++;
        const json = await viaJson(eventType, JSON.stringify(payload));
        const bin = await viaAvro(eventType, datum);
        expect(json.http).toBeLessThan(500);
        expect(bin.http).toBeLessThan(500);
        expect(bin.verdict).toEqual(json.verdict);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(compared).toBeGreaterThan(RUNS / 3);
  });
});

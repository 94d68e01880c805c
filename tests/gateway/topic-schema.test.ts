import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Encodings, SchemaTypes } from '@google-cloud/pubsub';
import { ManualClock, resourceNames } from '@hourglass/common';
import { Attr } from '@hourglass/schemas';
import {
  T0,
  auth,
  pubsubFor,
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
 * A one-event-per-message type whose topic has an Avro schema (infra/pubsub.tf: the newest
 * version, binary encoding; the emulator validates it). A client still writing an older version
 * is accepted by the gateway, so the gateway re-encodes its events to the newest version before
 * publishing: the topic refuses anything else, and one refused message failed the whole publish
 * request — the older version's events and every newer one batched with them, retried until
 * their deadline. Counted: every event accepted, on the topic once, under the newest version.
 */
jest.setTimeout(60_000);

const tracks = registry.get('track_played');
const [v1, v2] = tracks.versions as [(typeof tracks.versions)[0], (typeof tracks.versions)[0]];
const { offline: _o, context_uri: _c, ...v1Payload } = samplePayloads.track_played!;

test('older writer versions are re-encoded to the topic schema: accepted all, lost 0', async () => {
  const prefix = uniquePrefix('schema');
  const names = resourceNames(prefix, 'track_played');
  const pubsub = pubsubFor();
  const subs = new Map<string, string>();
  try {
    const schema = await pubsub.createSchema(names.topic, SchemaTypes.Avro, readFileSync(v2.file, 'utf8'));
    const [topic] = await pubsub.createTopic({
      name: names.topic,
      schemaSettings: { schema: await schema.getName(), encoding: Encodings.Binary },
    });
    const counting = `${names.topic}-count`;
    await topic.createSubscription(counting, { ackDeadlineSeconds: 60 });
    subs.set('track_played', counting);
  } finally {
    await pubsub.close();
  }
  const gateway = await startTestGateway({
    prefix,
    clock: new ManualClock(T0),
    config: { unbundledTypes: ['track_played'], pubsubBatchMaxMessages: 100 },
  });
  try {
    const meta = { gateway_ts: 0, client_ts: null, gateway_id: 'producer' };
    const oldIds: string[] = [randomUUID(), randomUUID(), randomUUID()];
    const body = Buffer.concat(
      oldIds.map((id, i) => v1.type.toBuffer({ meta: { ...meta, event_id: id }, ...v1Payload, user_id: `old-${i}` })),
    );
    const newEvents = Array.from({ length: 4 }, () => ({ type: 'track_played', payload: samplePayloads.track_played }));
    // both requests at once: their messages share publish requests
    const [old, fresh] = await Promise.all([
      send(gateway, {
        url: '/v1/events/track_played',
        headers: { ...auth(), 'content-type': 'avro/binary', 'hourglass-schema-version': String(v1.version) },
        payload: body,
      }),
      send(gateway, { url: '/v1/events', headers: auth(), payload: { events: newEvents } }),
    ]);
    const answers = [old.json<Answer>(), fresh.json<Answer>()];
    expect(answers.map((a) => a.accepted)).toEqual([3, 4]);
    const accepted = answers.flatMap((a) => a.results.map((r) => r.id!));
    const found = await pullEvents(subs);
    expect(tally(accepted, found)).toMatchObject({ accepted: 7, found: 7, lost: 0, duplicated: 0, unexpected: 0 });
    for (const f of found) {
      expect(f.message.attributes[Attr.fingerprint]).toBe(v2.fingerprint);
      expect(v2.type.fromBuffer(f.message.data)).toEqual(f.record);
    }
    const olds = found.filter((f) => oldIds.includes(f.id)).map((f) => f.record);
    expect(olds.map((r) => [r.user_id, r.offline, r.context_uri])).toEqual(
      expect.arrayContaining([0, 1, 2].map((i) => [`old-${i}`, false, null])),
    );
  } finally {
    await gateway.close();
  }
});

import { randomUUID } from 'node:crypto';
import avro from 'avsc';
import fc from 'fast-check';
import { metaType } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import { MINUTE, T0, auditType } from '../consumer/support';
import { ALL_TYPES, auth, registry, send, type Answer } from '../gateway/support';
import { SEED, validPayload } from './arbitraries';
import { pipelineWithGatewayFor } from './pipeline';

/**
 * Property, end to end: generated valid events of every schema (fast-check, seeded), sent over
 * both routes, are stored byte-exact — each final file's datum after `meta` is the payload's
 * Avro encoding (JSON route) or the payload bytes sent (Avro route), once.
 */
jest.setTimeout(180_000);

const AT = T0 + 30_000;
const PER_TYPE = 40;

const setup = pipelineWithGatewayFor(ALL_TYPES, AT);

/** Every datum of the type's final files, as bytes, by event id. */
async function finalDatums(store: ObjectStore, eventType: string): Promise<Map<string, Buffer[]>> {
  const out = new Map<string, Buffer[]>();
  const audit = await auditType(store, eventType, MINUTE);
  expect(audit.problems).toEqual([]);
  for (const w of audit.windows) {
    for (const f of w.manifest.files) {
      const decoder = new avro.streams.BlockDecoder({ noDecode: true });
      const done = new Promise((r) => decoder.on('end', r));
      decoder.on('data', (d: Buffer) => {
        const id = (metaType.decode(d, 0).value as { event_id: string }).event_id;
        out.set(id, [...(out.get(id) ?? []), d]);
      });
      decoder.end((await store.get(f.path))!);
      await done;
    }
  }
  return out;
}

const afterMeta = (datum: Buffer) => datum.subarray(metaType.decode(datum, 0).offset);

test('generated valid events of every type are stored byte-exact, once, from either route', async () => {
  const pipeline = setup();
  const { gateway } = pipeline;
  const expected = new Map<string, { type: string; payloadBytes: Buffer }>();
  for (const [t, eventType] of ALL_TYPES.entries()) {
    const latest = registry.get(eventType).latest;
    const type = latest.type as avro.types.RecordType;
    const payloads = fc.sample(validPayload(type), { seed: SEED + t, numRuns: PER_TYPE });
    const json = payloads.slice(0, PER_TYPE / 2).map((payload) => ({ type: eventType, id: randomUUID(), payload }));
    const res = await send(gateway, { url: '/v1/events', headers: auth(), payload: { events: json } });
    expect(res.statusCode).toBe(200);
    for (const e of json) {
      const meta = { event_id: e.id, gateway_ts: 0, client_ts: null, gateway_id: '' };
      expected.set(e.id, { type: eventType, payloadBytes: afterMeta(type.toBuffer({ meta, ...e.payload })) });
    }
    const datums = payloads.slice(PER_TYPE / 2).map((payload) => {
      const meta = { event_id: randomUUID(), gateway_ts: 0, client_ts: null, gateway_id: '' };
      return { id: meta.event_id, datum: type.toBuffer({ meta, ...payload }) };
    });
    const bin = await send(gateway, {
      url: `/v1/events/${eventType}`,
      headers: { ...auth(), 'content-type': 'avro/binary', 'hourglass-schema-version': String(latest.version) },
      payload: Buffer.concat(datums.map((d) => d.datum)),
    });
    expect(bin.statusCode).toBe(200);
    expect(bin.json<Answer>().results.map((r) => r.id)).toEqual(datums.map((d) => d.id));
    for (const d of datums) expected.set(d.id, { type: eventType, payloadBytes: afterMeta(d.datum) });
  }

  await pipeline.receive(expected.size);
  await pipeline.closeThrough(AT + 2 * MINUTE);

  const wrong: string[] = [];
  const seen = new Set<string>();
  for (const eventType of ALL_TYPES) {
    for (const [id, copies] of await finalDatums(pipeline.store, eventType)) {
      seen.add(id);
      const want = expected.get(id);
      if (!want || want.type !== eventType) wrong.push(`${eventType} ${id}: never sent`);
      else if (copies.length !== 1) wrong.push(`${id}: stored ${copies.length} times`);
      else if (!afterMeta(copies[0]!).equals(want.payloadBytes)) wrong.push(`${id}: payload bytes differ`);
    }
  }
  for (const id of expected.keys()) if (!seen.has(id)) wrong.push(`${id}: not stored`);
  expect(wrong).toEqual([]);
  expect(seen.size).toBe(ALL_TYPES.length * PER_TYPE);
});

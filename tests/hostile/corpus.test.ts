import { randomUUID } from 'node:crypto';
import { resourceNames } from '@hourglass/common';
import { MINUTE, T0 } from '../consumer/support';
import { ALL_TYPES, auth, registry, send, type Answer } from '../gateway/support';
import { avroCases } from './corpus-avro';
import { jsonBodyCases, jsonEventCases, type EventOutcome } from './corpus-json';
import { topicCases } from './corpus-topic';
import { deadLetters, pipelineWithGatewayFor, storedRecords } from './pipeline';

/**
 * Runs the hostile-input corpus (corpus-*.ts) end to end: the gateway and the consumer in
 * process on the real emulator and a real directory, one ManualClock for both. Every row's
 * answer must be what the row says (never a 5xx); afterwards the final files of the closed
 * windows must hold every accepted event exactly once and unchanged, and nothing else, and
 * every poisoned message must be in `_deadletter/` with its code.
 */
jest.setTimeout(240_000);

const AT = T0 + 30_000;

interface Expected {
  /** Fields the stored record must have (payload as sent, meta ids), by event id. */
  fields: Record<string, unknown>;
  clientTs: number | null;
  row: string;
}

const setup = pipelineWithGatewayFor(ALL_TYPES, AT);

test('the corpus has at least 150 cases over the three routes', () => {
  const json = jsonEventCases.length + jsonBodyCases.length;
  const topic = topicCases(AT).length;
  expect({ json, avro: avroCases.length, topic }).toEqual({
    json: expect.any(Number),
    avro: expect.any(Number),
    topic: expect.any(Number),
  });
  expect(json + avroCases.length + topic).toBeGreaterThanOrEqual(150);
  expect(Math.min(json, avroCases.length, topic)).toBeGreaterThanOrEqual(30);
});

test('every row gets its outcome; what is accepted is stored once, unchanged; nothing else is', async () => {
  const pipeline = setup();
  const { gateway } = pipeline;
  const wrong: string[] = [];
  const expected = new Map<string, Expected>();
  const check = (row: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want))
      wrong.push(`${row}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  const outcomeOf = (r: Answer['results'][number] | undefined): EventOutcome | undefined =>
    r === undefined
      ? undefined
      : r.status === 'accepted'
        ? 'accepted'
        : { code: r.code!, ...(r.path ? { path: r.path } : {}) };
  const sameOutcome = (got: EventOutcome | undefined, want: EventOutcome) =>
    want === 'accepted'
      ? got === 'accepted'
      : typeof got === 'object' && got.code === want.code && (want.path === undefined || got.path === want.path);

  // JSON route, one event per request
  for (const c of jsonEventCases) {
    const res = await send(gateway, {
      url: '/v1/events',
      headers: { ...auth(), 'content-type': 'application/json' },
      payload: `{"events":[${c.event}]}`,
    });
    if (res.statusCode >= 500) wrong.push(`${c.name}: ${res.statusCode}`);
    const result = res.json<Answer>().results?.[0];
    const got = outcomeOf(result);
    if (!sameOutcome(got, c.expect))
      wrong.push(`${c.name}: got ${JSON.stringify(result ?? res.json())}, want ${JSON.stringify(c.expect)}`);
    if (got === 'accepted') {
      const sent = JSON.parse(c.event) as { payload: Record<string, unknown>; client_ts?: number | string };
      const clientTs =
        sent.client_ts === undefined
          ? null
          : typeof sent.client_ts === 'string'
            ? Date.parse(sent.client_ts)
            : sent.client_ts;
      expected.set(result!.id!, { fields: sent.payload, clientTs, row: c.name });
    }
  }
  for (const c of jsonBodyCases) {
    const res = await send(gateway, { url: '/v1/events', headers: { ...auth(), ...c.headers }, payload: c.body });
    check(c.name, { status: res.statusCode, code: res.json<Answer>().error?.code }, c.expect);
  }

  // Avro route
  for (const c of avroCases) {
    const body = c.body ?? Buffer.concat(c.datums!.map((d) => d.bytes));
    const res = await send(gateway, {
      url: `/v1/events/${c.type}`,
      headers: { ...auth(), 'content-type': 'avro/binary', ...c.headers },
      payload: body,
    });
    if (c.whole) {
      check(c.name, { status: res.statusCode, code: res.json<Answer>().error?.code }, c.whole);
      continue;
    }
    const answer = res.json<Answer>();
    c.datums!.forEach((d, i) => {
      const got = outcomeOf(answer.results?.[i]);
      if (!sameOutcome(got, d.expect))
        wrong.push(
          `${c.name} datum ${i}: got ${JSON.stringify(answer.results?.[i] ?? answer)}, want ${JSON.stringify(d.expect)}`,
        );
      if (got !== 'accepted') return;
      const writer = registry.get(c.type).versions[Number(c.headers['hourglass-schema-version']) - 1]!;
      const { meta, ...payload } = writer.type.fromBuffer(d.bytes) as { meta: { client_ts: number | null } };
      expected.set(answer.results[i]!.id!, { fields: payload, clientTs: meta.client_ts, row: `${c.name} datum ${i}` });
    });
  }

  // Straight to the topics
  const rows = topicCases(AT);
  const stored = new Map<string, Expected>();
  for (const row of rows) {
    const attributes = { ...row.attributes, test_case: row.name };
    await pipeline.pubsub
      .topic(resourceNames(pipeline.prefix, row.type).topic)
      .publishMessage({ data: row.data, attributes });
    if ('stored' in row.expect) {
      for (const r of row.expect.stored) {
        const { meta, ...fields } = r;
        stored.set(meta.event_id, { fields: { ...fields, meta }, clientTs: meta.client_ts, row: row.name });
      }
    }
  }
  expect(wrong).toEqual([]);

  const deadRows = rows.filter((r) => 'deadLetter' in r.expect);
  const storedEvents = rows.reduce((n, r) => n + ('stored' in r.expect ? r.expect.stored.length : 0), 0);
  await pipeline.receive(expected.size + storedEvents, deadRows.length);
  await pipeline.closeThrough(AT + 52 * MINUTE);

  // read back: every accepted event once and unchanged, nothing else
  const seen = new Map<string, number>();
  for (const type of ALL_TYPES) {
    for (const record of await storedRecords(pipeline.store, type)) {
      const meta = record.meta as { event_id: string; client_ts: number | null };
      seen.set(meta.event_id, (seen.get(meta.event_id) ?? 0) + 1);
      const want = expected.get(meta.event_id) ?? stored.get(meta.event_id);
      if (!want) {
        wrong.push(`stored but never accepted: ${JSON.stringify(record).slice(0, 200)}`);
        continue;
      }
      if (meta.client_ts !== want.clientTs)
        wrong.push(`${want.row}: client_ts ${meta.client_ts}, sent ${want.clientTs}`);
      for (const [k, v] of Object.entries(want.fields)) {
        if (JSON.stringify(record[k]) !== JSON.stringify(v))
          wrong.push(`${want.row}: ${k} stored ${JSON.stringify(record[k])}, sent ${JSON.stringify(v)}`);
      }
    }
  }
  for (const [id, want] of [...expected, ...stored]) {
    if (seen.get(id) !== 1) wrong.push(`${want.row}: stored ${seen.get(id) ?? 0} times`);
  }
  const letters = (await Promise.all(ALL_TYPES.map((t) => deadLetters(pipeline.store, t)))).flat();
  const letterOf = new Map(letters.map((l) => [l.attributes.test_case ?? `gateway message ${randomUUID()}`, l]));
  for (const row of rows) {
    const letter = letterOf.get(row.name);
    const want = 'deadLetter' in row.expect ? row.expect.deadLetter : undefined;
    if (letter?.code !== want)
      wrong.push(
        `${row.name}: dead letter ${letter?.code ?? 'none'} (${letter?.message ?? ''}), want ${want ?? 'none'}`,
      );
  }
  check('dead letters in all', letters.length, deadRows.length);
  expect(wrong).toEqual([]);
});

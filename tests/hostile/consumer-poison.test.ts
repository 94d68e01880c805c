import { randomUUID } from 'node:crypto';
import { resourceNames } from '@hourglass/common';
import { SchemaRegistry, encodeBundle, type EventRecord } from '@hourglass/schemas';
import { MINUTE, T0, makeRecord } from '../consumer/support';
import { deadLetters, startPipeline, storedRecords, type Pipeline } from './pipeline';

/**
 * Issue #14.2, #14.6, #14.7, consumer side: messages published straight to a topic that decode
 * but must not be stored — far-future or out-of-range gateway_ts, empty or non-UUID event ids,
 * invalid UTF-8 — go to `_deadletter/` with their code, and nothing of them reaches a window.
 */
jest.setTimeout(120_000);

const registry = SchemaRegistry.load('schemas');
const v2 = registry.get('track_played').latest;

function bundleOf(records: readonly EventRecord[], tag: string, datums?: Buffer[]) {
  const encoded = encodeBundle({
    writer: v2,
    datums: datums ?? records.map((r) => v2.type.toBuffer(r)),
    firstEventId: records[0]!.meta.event_id,
    minGatewayTs: Math.min(...records.map((r) => r.meta.gateway_ts)),
    codec: 'null',
  });
  return { ...encoded, attributes: { ...encoded.attributes, test_case: tag } };
}

async function publish(p: Pipeline, message: { data: Buffer; attributes: Record<string, string> }): Promise<void> {
  await p.pubsub.topic(resourceNames(p.prefix, 'track_played').topic).publishMessage(message);
}

describe('poison that decodes', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await startPipeline(['track_played'], T0 + 30_000);
  });
  afterAll(() => p?.stop());

  test('is dead-lettered with its code; the good events are stored unchanged, once', async () => {
    const good = Array.from({ length: 20 }, (_, i) => makeRecord(v2, randomUUID(), T0 + i * 1000, i));
    const utf8 = makeRecord(v2, randomUUID(), T0 + 500, 1);
    utf8.user_id = 'XX';
    const utf8Datum = v2.type.toBuffer(utf8);
    utf8Datum.write('\xff\xfe', utf8Datum.indexOf('XX'), 'latin1');
    const cases: [string, ReturnType<typeof bundleOf>][] = [
      ['MESSAGE_EVENT_TIME_INVALID', bundleOf([makeRecord(v2, randomUUID(), T0 + 400 * 24 * 3_600_000)], 'future')],
      ['MESSAGE_EVENT_TIME_INVALID', bundleOf([makeRecord(v2, randomUUID(), 4.5e15)], 'year-144000')],
      // beyond JS dates (NaN partition names before) and beyond the exact long range: not canonical
      ['MESSAGE_CORRUPT', bundleOf([makeRecord(v2, randomUUID(), 8.9e15)], 'beyond-dates')],
      ['MESSAGE_EVENT_TIME_INVALID', bundleOf([makeRecord(v2, randomUUID(), -5)], 'negative')],
      [
        'MESSAGE_EVENT_ID_INVALID',
        bundleOf(
          [0, 1, 2].map((i) => makeRecord(v2, '', T0 + i, i)),
          'empty-ids',
        ),
      ],
      ['MESSAGE_EVENT_ID_INVALID', bundleOf([makeRecord(v2, 'not-a-uuid', T0)], 'not-a-uuid')],
      ['MESSAGE_EVENT_ID_INVALID', bundleOf([makeRecord(v2, randomUUID().toUpperCase(), T0)], 'upper-case')],
      ['MESSAGE_CORRUPT', bundleOf([utf8], 'invalid-utf8', [utf8Datum])],
    ];
    for (const [, message] of cases) await publish(p, message);
    await publish(p, bundleOf(good, 'good'));
    await p.settle(cases.length + 1);
    await p.closeThrough(T0 + 2 * MINUTE + 30_000);

    const letters = await deadLetters(p.store, 'track_played');
    expect(letters.map((l) => [l.code, l.attributes.test_case]).sort()).toEqual(
      cases.map(([code, m]) => [code, m.attributes.test_case]).sort(),
    );
    const stored = await storedRecords(p.store, 'track_played');
    expect(stored.map((r) => r.meta as { event_id: string }).sort(byId)).toEqual(good.map((r) => r.meta).sort(byId));
    expect(stored.sort(byMetaId)).toEqual([...good].sort(byMetaId));
    // nothing parked in staging, no partition out of the clock's range
    expect((await p.store.list('_staging/track_played/')).map((o) => o.name)).toEqual([]);
    const partitions = (await p.store.list('track_played/')).map((o) => o.name);
    expect(partitions.filter((n) => !n.startsWith('track_played/dt=2026-01-01/'))).toEqual([]);
  });
});

describe('#14.7 a fresh deployment (no closed window, no HOURGLASS_START)', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await startPipeline(['track_played'], T0 + 30_000);
  });
  afterAll(() => p?.stop());

  test('a message with gateway_ts 0 does not move where closing starts', async () => {
    await publish(p, bundleOf([makeRecord(v2, randomUUID(), 0)], 'epoch'));
    const good = [makeRecord(v2, randomUUID(), T0 + 1000, 1)];
    await publish(p, bundleOf(good, 'good'));
    await p.settle(2);
    await p.closeThrough(T0 + MINUTE + 30_000);
    const closed = p.consumer.closedWindows().map((c) => c.window.start);
    expect(closed[0]).toBe(T0);
    const names = (await p.store.list('track_played/')).map((o) => o.name);
    expect(names.filter((n) => n.includes('dt=1970'))).toEqual([]);
    expect((await deadLetters(p.store, 'track_played')).map((l) => l.code)).toEqual(['MESSAGE_EVENT_TIME_INVALID']);
    expect((await storedRecords(p.store, 'track_played')).map((r) => r.meta)).toEqual(good.map((r) => r.meta));
  });
});

const byId = (a: { event_id: string }, b: { event_id: string }) => a.event_id.localeCompare(b.event_id);
const byMetaId = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  byId(a.meta as { event_id: string }, b.meta as { event_id: string });

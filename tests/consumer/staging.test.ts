import avro from 'avsc';
import { ManualClock } from '@hourglass/common';
import { encodeRecords } from '@hourglass/schemas';
import { GROUPS_META_KEY, groupOf, readOcfHeader } from '@hourglass/bucket-format';
import { LocalDirectoryStore } from '@hourglass/storage';
import { MINUTE, T0, decodeWithEmbeddedSchema, tempDir } from './support';
import { bundle, message, records, runtime, v1, v2 } from './runtime-support';

/** Staging on the real filesystem: messages handed to the type runtime directly, time from a ManualClock. */
describe('staging', () => {
  test('a message is acked only once every part file holding its events is durable', async () => {
    const store = new LocalDirectoryStore(tempDir('stage'));
    const clock = new ManualClock(T0 + 2 * MINUTE);
    const rt = runtime(store, clock);
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    // one bundle across two windows (out of order), one from an older writer
    rt.stager.handle(bundle(log, [...records(5, T0 + MINUTE, 1000), ...records(5, T0, 1000)]));
    rt.stager.handle(bundle(log, records(3, T0, 1000, v1), v1));
    expect(log).toEqual({ acked: 0, nacked: 0 });
    expect(rt.stager.heldEvents()).toBe(13);
    expect(await store.list('_staging/')).toEqual([]);
    // held events pin the watermark at the oldest of them
    clock.advance(500);
    await rt.tick();
    expect(rt.watermarks().published).toBeLessThanOrEqual(T0);
    clock.advance(600); // past stageMaxAge
    await rt.tick();
    await rt.stager.flushAll();
    expect(log).toEqual({ acked: 2, nacked: 0 });
    const staged = await store.list('_staging/');
    expect(staged.map((o) => o.name.split('/').slice(2, 5).join('/')).sort()).toEqual([
      'dt=2026-01-01/hour=00/minute=00',
      'dt=2026-01-01/hour=00/minute=01',
    ]);
    // staged files are standard container files in the newest schema
    let total = 0;
    for (const o of staged) {
      const { records: rs, schema } = await decodeWithEmbeddedSchema((await store.get(o.name))!);
      expect((schema as { fields: { name: string }[] }).fields.map((f) => f.name)).toContain('context_uri');
      total += rs.length;
    }
    expect(total).toBe(13);
  });

  test('newest-schema datums are copied as bytes; one the skipper refuses goes the decoding path, as before', async () => {
    const store = new LocalDirectoryStore(tempDir('stage-copy'));
    const rt = runtime(store, new ManualClock(T0 + 2 * MINUTE));
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    const copied = records(20, T0, 1000);
    rt.stager.handle(bundle(log, copied));
    // a long of 2^52: canonical, but beyond what the skipper reads exactly, so it is decoded and re-encoded
    const odd = records(3, T0 + 2000, 1000).map((r, i) => (i === 1 ? { ...r, ms_played: 2 ** 52 } : r));
    rt.stager.handle(bundle(log, odd));
    // invalid UTF-8 in one string: avsc would decode it to U+FFFD, so the message is dead-lettered (#14.2)
    const encoded = encodeRecords(v2, records(3, T0 + 3000, 1000));
    encoded.data[encoded.data.indexOf('user-1')] = 0xff;
    rt.stager.handle(message(log, encoded.data, encoded.attributes));
    await rt.stager.flushAll();
    expect(log).toEqual({ acked: 3, nacked: 0 });
    expect(rt.stager.stats.deadLettered).toBe(1);
    // the staged datums, as bytes: what decoding and encoding each record gives
    const datums: Buffer[] = [];
    for (const o of await store.list('_staging/')) {
      expect(readOcfHeader((await store.get(o.name))!, o.name).meta[GROUPS_META_KEY]).toBeDefined();
      const decoder = new avro.streams.BlockDecoder({ noDecode: true });
      decoder.on('data', (d: Buffer) => datums.push(d));
      const done = new Promise((r) => decoder.on('end', r));
      decoder.end((await store.get(o.name))!);
      await done;
    }
    // grouped by event id hash (GroupedOcfWriter), arrival order within a group: a stable sort
    const group = (r: (typeof copied)[number]): number => {
      const id = Buffer.from(r.meta.event_id);
      return groupOf(id, 0, id.length);
    };
    const expected = [...copied, ...odd]
      .map((r, i) => ({ r, i, g: group(r) }))
      .sort((a, b) => a.g - b.g || a.i - b.i)
      .map((x) => x.r);
    expect(datums.map((d) => d.toString('hex'))).toEqual(expected.map((r) => v2.type.toBuffer(r).toString('hex')));
  });

  test('a message held beyond the max lease extension is still acked, and counted loudly', async () => {
    const store = new LocalDirectoryStore(tempDir('overheld'));
    const clock = new ManualClock(T0 + 2 * MINUTE);
    const rt = runtime(store, clock, 'r1', undefined, 10_000);
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    rt.stager.handle(bundle(log, records(3, T0, 1000)));
    clock.advance(10_001); // e.g. the store hung this long
    await rt.stager.flushAll();
    expect(log).toEqual({ acked: 1, nacked: 0 });
    expect(rt.stager.stats.overheld).toBe(1);
  });

  test('undecodable messages go to _deadletter with raw bytes, attributes and reason, and are acked', async () => {
    const store = new LocalDirectoryStore(tempDir('dead'));
    const rt = runtime(store, new ManualClock(T0));
    await rt.start();
    const log = { acked: 0, nacked: 0 };
    const good = encodeRecords(v2, records(2, T0, 10));
    rt.stager.handle(message(log, Buffer.from('not avro at all'), { ...good.attributes, count: '3' }));
    rt.stager.handle(message(log, good.data, { ...good.attributes, schema_fingerprint: 'f'.repeat(64) }));
    rt.stager.handle(message(log, good.data, { ...good.attributes, event_type: 'page_viewed' }));
    await rt.stager.flushAll();
    expect(log).toEqual({ acked: 3, nacked: 0 });
    const dead = await store.list('_deadletter/track_played/');
    expect(dead).toHaveLength(3);
    const bodies = await Promise.all(dead.map(async (o) => JSON.parse((await store.get(o.name))!.toString())));
    const reasons = bodies.map((b: { reason: { code: string } }) => b.reason.code).sort();
    expect(reasons).toEqual(['MESSAGE_CORRUPT', 'MESSAGE_CORRUPT', 'SCHEMA_UNKNOWN_FINGERPRINT']);
    const raw = bodies.find(
      (b: { dataBase64: string }) => Buffer.from(b.dataBase64, 'base64').toString() === 'not avro at all',
    );
    expect(raw.attributes.count).toBe('3');
    expect(rt.stager.stats.deadLettered).toBe(3);
    expect(await store.list('_staging/')).toEqual([]);
  });
});

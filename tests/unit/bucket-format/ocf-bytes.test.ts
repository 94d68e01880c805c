import { createHash } from 'node:crypto';
import { SchemaRegistry, type EventRecord } from '@hourglass/schemas';
import { OcfWriter, ocfBlocks, readOcfHeader, schemaTextOf, syncMarkerFor } from '@hourglass/bucket-format';

/**
 * The container writer's bytes are part of the stored format: a finalize rerun compares a part
 * file it finds with the one it would write, by sha256, so a changed writer must write what the
 * old one wrote. The digests below were recorded from the writer before #16 moved it (and before
 * its varint changed), for fixed input covering every block rule: datums appended as bytes and
 * as records, a record that exactly fills a block, records larger than a block, both codecs and
 * several deflate levels.
 */
const registry = SchemaRegistry.load('schemas');
const latest = registry.get('track_played').latest;
const T0 = Date.UTC(2026, 0, 1);

/** Deterministic records of varied sizes, defined here (not a shared helper, no random source): the input must never change. */
function record(i: number, userIdLength = 4 + ((i * 37) % 90)): EventRecord {
  return {
    meta: {
      event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      gateway_ts: T0 + i * 1013,
      client_ts: i % 3 === 0 ? null : T0 + i * 1013 - 17,
      gateway_id: 'gw-bytes',
    },
    user_id: 'u'.repeat(userIdLength),
    track_id: `track-${i}`,
    ms_played: 1000 + i,
    reason_start: 'CLICK_ROW',
    reason_end: 'TRACK_DONE',
    shuffle: i % 2 === 0,
    platform: 'IOS',
    country: 'SE',
    offline: false,
    context_uri: i % 5 === 0 ? `spotify:playlist:${i}` : null,
  } as unknown as EventRecord;
}

const datumOf = (r: EventRecord): Buffer => latest.type.toBuffer(r);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Appends record i three ways in turn: encoded by the writer, as a datum, as a slice of a larger buffer. */
function appendMixed(w: OcfWriter, r: EventRecord, i: number): void {
  if (i % 3 === 0) w.appendRecord(r);
  else if (i % 3 === 1) w.appendDatum(datumOf(r));
  else {
    const datum = datumOf(r);
    const padded = Buffer.concat([Buffer.from('xyz'), datum, Buffer.from('!')]);
    w.appendDatumAt(padded, 3, 3 + datum.length);
  }
}

/** Two records whose datums together fill a block of `blockBytes` exactly. */
function exactFill(blockBytes: number, i: number): EventRecord[] {
  const first = record(i);
  for (let length = 1; length < blockBytes; length++) {
    const second = record(i + 1, length);
    if (datumOf(first).length + datumOf(second).length === blockBytes) return [first, second];
  }
  throw new Error('no exact fill');
}

async function mixedFile(deflateLevel: number, blockBytes: number, n: number): Promise<Buffer> {
  const w = new OcfWriter({
    type: latest.type,
    schema: schemaTextOf(latest),
    syncMarker: syncMarkerFor(`track_played/dt=2026-01-01/hour=00/part-00000.avro#${deflateLevel}`),
    deflateLevel,
    blockBytes,
  });
  let i = 0;
  for (; i < n; i++) {
    appendMixed(w, record(i), i);
    if (i === 70 || i === 71) appendMixed(w, record(i, blockBytes * 2 + i), i); // larger than a block
    // right after an oversized record the block is empty: these two fill the next one exactly
    if (i === 71) for (const r of exactFill(blockBytes, 1000)) appendMixed(w, r, i);
  }
  expect(w.records).toBe(n + 4);
  return w.finish();
}

test.each([
  [6, 1024, 300, '31a7acd34c1e655da1fc2fc76f155b76a4674b0f4507097653e8d87af16e58eb'],
  [1, 512, 200, '1fb9418693c258094357808d5d40fbd55232bf5a048ba2e3734049f8762bbdab'],
  [0, 2048, 400, '09068b90cc6a32aa58f27a5785bbf50ab4009dd12f1423ec4797fc9d494ec911'],
  [9, 4096, 150, 'ecb55d515d99a68df0bbc481de89be78b453323e2c4beec187fc41ef30f53134'],
])(
  'deflate level %i, %i-byte blocks, %i records: the bytes the old writer wrote',
  async (level, blockBytes, n, digest) => {
    const first = await mixedFile(level, blockBytes, n);
    expect(sha(first)).toBe(digest);
    // the input hits every block rule: a block filled exactly, and blocks of one oversized record
    const sizes = [...ocfBlocks(first, readOcfHeader(first, 'f'), 'f')].map((b) => b.data.length);
    expect(sizes).toContain(blockBytes);
    expect(sizes.filter((s) => s > blockBytes * 2)).toHaveLength(2);
    expect((await mixedFile(level, blockBytes, n)).equals(first)).toBe(true);
  },
);

test('no schema text given, extra metadata: the bytes the old writer wrote', async () => {
  const w = new OcfWriter({
    type: latest.type,
    syncMarker: syncMarkerFor('metadata'),
    deflateLevel: 1,
    blockBytes: 1024,
    metadata: { 'hourglass.window': '2026-01-01T00', 'hourglass.note': 'fixed' },
  });
  for (let i = 0; i < 50; i++) w.appendRecord(record(i));
  expect(sha(await w.finish())).toBe('989652f869edcff015264c25b4927f9a72b0ddbbaed135199525e3c476481ed6');
});

test('an empty file is a header only: the bytes the old writer wrote', async () => {
  const w = new OcfWriter({
    type: latest.type,
    schema: schemaTextOf(latest),
    syncMarker: syncMarkerFor('empty'),
    deflateLevel: 6,
    blockBytes: 1024,
  });
  expect(sha(await w.finish())).toBe('3daa3d8800b6e4fc8f79536fba3d9299be64ff05330ee3af9f344d94938fe1c5');
});

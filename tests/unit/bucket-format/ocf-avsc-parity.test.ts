import { deflateRaw } from 'node:zlib';
import avro from 'avsc';
import { SchemaRegistry, type EventRecord } from '@hourglass/schemas';
import { OcfWriter, ocfBlocks, readOcfHeader, schemaTextOf, syncMarkerFor } from '@hourglass/bucket-format';

/**
 * Why OcfWriter is not avsc's BlockEncoder (see avro-file.ts): given records that each fit in a
 * block, the two write the very same bytes (same header, sync marker, codec and block cuts), so
 * the writer is the standard container layout. They part where BlockEncoder cannot follow: after a
 * record larger than a block it doubles its block size for the rest of the file, where final files
 * keep the configured size (and the bytes earlier finalizes wrote); and it takes values only,
 * where staging and finalize append datums as bytes (not expressible through its public API).
 */
const latest = SchemaRegistry.load('schemas').get('track_played').latest;
const T0 = Date.UTC(2026, 0, 1);
const BLOCK = 1024;

function record(i: number, userId = `user-${i % 97}`): EventRecord {
  return {
    meta: { event_id: `id-${i}`, gateway_ts: T0 + i, client_ts: null, gateway_id: 'gw' },
    user_id: userId,
    track_id: `track-${i}`,
    ms_played: i,
    reason_start: 'CLICK_ROW',
    reason_end: 'TRACK_DONE',
    shuffle: false,
    platform: 'WEB',
    country: 'SE',
    offline: false,
    context_uri: null,
  } as unknown as EventRecord;
}

async function withBlockEncoder(records: EventRecord[], name: string): Promise<Buffer> {
  const encoder = new avro.streams.BlockEncoder(latest.type as unknown as avro.Schema, {
    syncMarker: syncMarkerFor(name),
    blockSize: BLOCK,
    codec: 'deflate',
    codecs: { deflate: (buf, cb) => deflateRaw(buf, { level: 6 }, cb) },
    // documented option, missing from avsc's typings; overrides the schema avsc would export
    ...{ metadata: { 'avro.schema': Buffer.from(schemaTextOf(latest)) } },
  });
  const chunks: Buffer[] = [];
  encoder.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => encoder.on('end', resolve).on('error', reject));
  for (const r of records) encoder.write(r);
  encoder.end();
  await ended;
  return Buffer.concat(chunks);
}

async function withOcfWriter(records: EventRecord[], name: string): Promise<Buffer> {
  const w = new OcfWriter({
    type: latest.type,
    schema: schemaTextOf(latest),
    syncMarker: syncMarkerFor(name),
    deflateLevel: 6,
    blockBytes: BLOCK,
  });
  for (const r of records) w.appendRecord(r);
  return w.finish();
}

const blockSizes = (file: Buffer): number[] =>
  [...ocfBlocks(file, readOcfHeader(file, 'f'), 'f')].map((b) => b.data.length);

test('records that fit in a block: byte for byte what BlockEncoder writes', async () => {
  const records = Array.from({ length: 400 }, (_, i) => record(i));
  const ours = await withOcfWriter(records, 'parity');
  expect(blockSizes(ours).length).toBeGreaterThan(10);
  expect(ours.equals(await withBlockEncoder(records, 'parity'))).toBe(true);
});

test('after a record larger than a block, BlockEncoder cuts larger blocks; OcfWriter keeps the size', async () => {
  const records = Array.from({ length: 400 }, (_, i) => (i === 50 ? record(i, 'u'.repeat(3 * BLOCK)) : record(i)));
  const ours = await withOcfWriter(records, 'oversized');
  const avsc = await withBlockEncoder(records, 'oversized');
  expect(ours.equals(avsc)).toBe(false);
  const after = (sizes: number[]): number => Math.max(...sizes.slice(sizes.findIndex((s) => s > 3 * BLOCK) + 1));
  expect(after(blockSizes(ours))).toBeLessThanOrEqual(BLOCK);
  expect(after(blockSizes(avsc))).toBeGreaterThan(BLOCK);
});

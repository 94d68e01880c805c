import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { seededRandom } from '@hourglass/common';
import { ShardSpill, SpilledId, shardOf } from '@hourglass/consumer/finalize/shard-spill';

/** The spill files of a sharded finalize read back exactly what was spilled, across read chunks. */
describe('shard spill', () => {
  /** A datum of `length` bytes whose id is bytes [1, 37): random, the rest a filler. */
  function datum(random: () => number, length: number, n: number): Buffer {
    const b = Buffer.alloc(length, n % 251);
    for (let i = 1; i < 37; i++) b[i] = Math.floor(random() * 256);
    return b;
  }

  test('records and ids come back per shard, in order, whole: chunk edges and entries larger than a chunk', async () => {
    const random = seededRandom(42);
    const shards = 3;
    const spill = await ShardSpill.create(shards);
    const expected: { records: string[]; ids: string[] }[] = Array.from({ length: shards }, () => ({
      records: [],
      ids: [],
    }));
    // about 4 MB per shard: several 1 MB read chunks, and a few entries of 300 KB and 1.5 MB
    for (let n = 0; n < 25_000; n++) {
      const length = n % 9_973 === 5 ? 1_500_000 : n % 4_001 === 7 ? 300_000 : 40 + Math.floor(random() * 400);
      const d = datum(random, length, n);
      const ts = 1_767_225_600_000 + n;
      await spill.addRecord(d, 1, 37, ts);
      expected[shardOf(d, 1, 37, shards)]!.records.push(`${ts}:${d.toString('hex')}`);
      if (n % 10 === 0) {
        const kind = n % 20 === 0 ? SpilledId.Reference : SpilledId.ClosedWindow;
        await spill.addId(kind, n, d, 1, 37);
        expected[shardOf(d, 1, 37, shards)]!.ids.push(`${kind}:${n}:${d.toString('hex', 1, 37)}`);
      }
    }
    await spill.seal();
    try {
      for (let s = 0; s < shards; s++) {
        const records: string[] = [];
        let idsMisplaced = 0;
        await spill.forEachRecord(s, (r) => {
          if (r.idStart !== r.start + 1 || r.idEnd !== r.start + 37) idsMisplaced++;
          records.push(`${r.gatewayTs}:${r.source.toString('hex', r.start, r.end)}`);
          return undefined;
        });
        expect(idsMisplaced).toBe(0);
        const ids: string[] = [];
        await spill.forEachId(s, (kind, windowStart, source, start, end) => {
          ids.push(`${kind}:${windowStart}:${source.toString('hex', start, end)}`);
        });
        expect(records).toEqual(expected[s]!.records);
        expect(ids).toEqual(expected[s]!.ids);
        expect(records.length).toBeGreaterThan(6_000); // the hash spreads ids over the shards
      }
    } finally {
      await spill.remove();
    }
    expect(readdirSync(tmpdir())).not.toContain(spill.dir.split('/').pop());
  });
});

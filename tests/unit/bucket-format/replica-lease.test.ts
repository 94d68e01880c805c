import {
  LeaseBoard,
  type ReplicaLeaseRecord,
  closerOf,
  globalWatermark,
  leaseOfType,
  leaseState,
  parseReplicaLease,
  replicaLeaseName,
  serializeReplicaLease,
} from '@hourglass/bucket-format';

const record: ReplicaLeaseRecord = {
  replicaId: 'host-1-ab',
  incarnation: 'k2x9',
  renewedAt: 1_767_261_600_000,
  ttlMs: 30_000,
  ackDeadlineMs: 70_000,
  closes: true,
  watermarks: { track_played: 1_767_261_590_000, page_viewed: -Infinity },
};

describe('replica lease record', () => {
  test('round trip; an unknown watermark is null in JSON; types in name order', () => {
    const text = serializeReplicaLease(record).toString();
    expect(text).toContain('"watermarks":{"page_viewed":null,"track_played":1767261590000}');
    expect(parseReplicaLease(Buffer.from(text))).toEqual(record);
    expect(replicaLeaseName('host-1-ab', 'k2x9')).toBe('_watermarks/_replicas/host-1-ab.k2x9.json');
  });

  test("a type's view: the replica's renewal and ttl with that type's watermark; none for a type it does not serve", () => {
    expect(leaseOfType(record, 'track_played')).toEqual({
      replicaId: 'host-1-ab',
      incarnation: 'k2x9',
      eventType: 'track_played',
      watermark: 1_767_261_590_000,
      renewedAt: record.renewedAt,
      ttlMs: 30_000,
      ackDeadlineMs: 70_000,
      closes: true,
    });
    expect(leaseOfType(record, 'search_performed')).toBeUndefined();
    expect(leaseOfType(record, 'toString')).toBeUndefined(); // own keys only
  });

  test('torn, foreign or mistyped objects are not leases; a record without `closes` may close', () => {
    const json = JSON.parse(serializeReplicaLease(record).toString()) as Record<string, unknown>;
    expect(parseReplicaLease(Buffer.from('{"replicaId":"a"'))).toBeUndefined();
    expect(parseReplicaLease(Buffer.from('[]'))).toBeUndefined();
    expect(parseReplicaLease(Buffer.from(JSON.stringify({ ...json, watermarks: { t: 'soon' } })))).toBeUndefined();
    expect(parseReplicaLease(Buffer.from(JSON.stringify({ ...json, watermarks: [1] })))).toBeUndefined();
    expect(parseReplicaLease(Buffer.from(JSON.stringify({ ...json, ttlMs: '30s' })))).toBeUndefined();
    expect(parseReplicaLease(Buffer.from(JSON.stringify({ ...json, closes: 'no' })))).toBeUndefined();
    const { closes: _closes, ...older } = json;
    expect(parseReplicaLease(Buffer.from(JSON.stringify(older)))?.closes).toBe(true);
  });

  test('a retired type is the last lease of a replica that stopped then: stale for the redelivery bound, never the closer', () => {
    const at = record.renewedAt - 5_000;
    const retiring: ReplicaLeaseRecord = {
      ...record,
      retired: { search_performed: { at, watermark: 1_767_261_500_000 }, track_played: { at, watermark: -Infinity } },
    };
    const text = serializeReplicaLease(retiring).toString();
    expect(text).toContain(
      '"retired":{"search_performed":{"at":1767261595000,"watermark":1767261500000},"track_played":{"at":1767261595000,"watermark":null}}',
    );
    expect(parseReplicaLease(Buffer.from(text))).toEqual(retiring);
    const view = leaseOfType(retiring, 'search_performed')!;
    expect(view).toMatchObject({ watermark: 1_767_261_500_000, renewedAt: at, ttlMs: 0, closes: false });
    expect(leaseState(view, record.renewedAt)).toBe('stale');
    expect(leaseState(view, at + 70_000)).toBe('expired');
    // served again within the bound: the board holds both, the live one closes, the retired one holds the minimum
    const board = new LeaseBoard([retiring], new Map());
    const both = board.ofType('track_played');
    expect(both.map((l) => l.ttlMs)).toEqual([30_000, 0]);
    expect(closerOf(both, record.renewedAt, 'track_played')).toBe('host-1-ab.k2x9');
    expect(globalWatermark(both, record.renewedAt)).toBe(-Infinity);
    expect(globalWatermark(both, at + 70_000)).toBe(1_767_261_590_000);
    expect(closerOf(board.ofType('search_performed'), record.renewedAt, 'search_performed')).toBeUndefined();
    const json = JSON.parse(text) as Record<string, unknown>;
    expect(parseReplicaLease(Buffer.from(JSON.stringify({ ...json, retired: { t: { at: 'x' } } })))).toBeUndefined();
    expect(parseReplicaLease(Buffer.from(JSON.stringify({ ...json, retired: { t: 5 } })))).toBeUndefined();
    expect(parseReplicaLease(Buffer.from(JSON.stringify({ ...json, retired: [] })))).toBeUndefined();
  });
});

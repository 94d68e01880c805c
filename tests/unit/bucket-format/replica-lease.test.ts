import {
  type ReplicaLeaseRecord,
  leaseOfType,
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
});

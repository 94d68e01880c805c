import fc from 'fast-check';
import { EVERY_REPLICA, parseReplicasPerType, replicasOfType, typesServedBy } from '@hourglass/bucket-format';

const types = Array.from({ length: 300 }, (_, i) => `type_${i}`);
const replicas = (n: number, tag = 'a'): string[] => Array.from({ length: n }, (_, i) => `r${i}.${tag}${i}`);
const spec = (k: number | 'all', byType: Record<string, number | 'all'> = {}) => ({ default: k, byType });

/** Per type, its servers, as every replica computes them for itself. */
function assignment(ids: readonly string[], k: number | 'all'): Map<string, string[]> {
  const out = new Map<string, string[]>(types.map((t) => [t, []]));
  for (const id of ids) for (const t of typesServedBy(id, ids, types, spec(k))) out.get(t)!.push(id);
  return out;
}

describe('type assignment', () => {
  test('every type served by exactly k replicas (all when fewer), agreeing with replicasOfType', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 5 }),
        fc.string({ minLength: 1, maxLength: 6 }),
        (n, k, tag) => {
          const ids = replicas(n, tag);
          for (const [t, servers] of assignment(ids, k)) {
            expect(servers.length).toBe(Math.min(k, n));
            expect([...servers].sort()).toEqual(replicasOfType(ids, t, k).sort());
          }
        },
      ),
      { seed: 1804, numRuns: 40 },
    );
  });

  test('balanced: 300 types, 10 replicas, k=2: each replica serves 60 ± 20', () => {
    const ids = replicas(10);
    const load = ids.map((id) => typesServedBy(id, ids, types, spec(2)).length);
    expect(load.reduce((a, b) => a + b, 0)).toBe(600);
    for (const n of load) expect(Math.abs(n - 60)).toBeLessThanOrEqual(20);
  });

  test('a replica that joins takes about k/(R+1) of the types; the others lose only what it takes', () => {
    const before = assignment(replicas(8), 2);
    const after = assignment([...replicas(8), 'r8.a8'], 2);
    let moved = 0;
    for (const t of types) {
      const gone = before.get(t)!.filter((id) => !after.get(t)!.includes(id));
      const came = after.get(t)!.filter((id) => !before.get(t)!.includes(id));
      expect(came.every((id) => id === 'r8.a8')).toBe(true);
      expect(gone.length).toBe(came.length);
      moved += came.length;
    }
    // expected 300 × 2/9 ≈ 67
    expect(moved).toBeGreaterThan(40);
    expect(moved).toBeLessThan(95);
  });

  test('a replica that leaves hands only its own types over', () => {
    const ids = replicas(6);
    const before = assignment(ids, 3);
    const after = assignment(ids.slice(1), 3);
    for (const t of types) {
      const kept = before.get(t)!.filter((id) => id !== ids[0]);
      expect(kept.every((id) => after.get(t)!.includes(id))).toBe(true);
    }
  });

  test('a replica always counts itself, even before its lease is read', () => {
    const others = replicas(3);
    const mine = typesServedBy('new.x', others, types, spec(2));
    expect(mine).toEqual(typesServedBy('new.x', [...others, 'new.x'], types, spec(2)));
    expect(mine.length).toBeGreaterThan(0);
    expect(typesServedBy('alone.x', [], types, spec(2))).toEqual(types);
  });

  test('all, per-type exceptions, duplicates counted once', () => {
    const ids = replicas(5);
    expect(typesServedBy(ids[0]!, ids, types, EVERY_REPLICA)).toEqual(types);
    const big = spec(1, { type_7: 'all', type_8: 4 });
    expect(replicasOfType(ids, 'type_7', big.byType.type_7!)).toHaveLength(5);
    expect(ids.filter((id) => typesServedBy(id, ids, types, big).includes('type_8'))).toHaveLength(4);
    expect(ids.filter((id) => typesServedBy(id, ids, types, big).includes('type_9'))).toHaveLength(1);
    expect(replicasOfType(['a.1', 'a.1', 'b.2'], 'type_1', 2)).toEqual(['a.1', 'b.2']);
  });

  test.each([
    ['all', EVERY_REPLICA],
    ['2', spec(2)],
    ['2, track_played=all, search=6', spec(2, { track_played: 'all', search: 6 })],
    ['all,page_viewed=1', spec('all', { page_viewed: 1 })],
  ])('parses %s', (raw, expected) => {
    expect(parseReplicasPerType(raw)).toEqual(expected);
  });

  test.each(['', '0', '-1', 'two', '2,track_played', '2,=3', '2,t=0', '1.5', '2,t=many'])('refuses %j', (raw) => {
    expect(parseReplicasPerType(raw)).toBeUndefined();
  });
});

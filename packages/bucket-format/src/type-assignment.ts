import { rendezvousWeight } from './lease.js';

/**
 * Which replicas pull which event types. With `all`, every replica serves every type (each
 * subscription is shared by the whole fleet). With a number k, each type is served by the k live
 * replicas whose identities weigh most for it (rendezvous hashing, the same weights closerOf uses):
 * a fleet of R replicas then holds k × types subscriptions, staged files and watermarks instead of
 * R × types, and a replica that joins or leaves moves only about k/R of the types. Every replica
 * computes this from the leases it read; two views that differ for a moment only make a type's
 * servers k + 1 or k − 1 until the next read, never zero for long: a replica counts itself.
 */
export type ReplicaCount = number | 'all';

/** How many replicas serve each type: a default and per-type exceptions (a large type needs more). */
export interface ReplicasPerType {
  readonly default: ReplicaCount;
  readonly byType: Readonly<Record<string, ReplicaCount>>;
}

export const EVERY_REPLICA: ReplicasPerType = { default: 'all', byType: {} };

export function replicaCountOf(spec: ReplicasPerType, eventType: string): ReplicaCount {
  return spec.byType[eventType] ?? spec.default;
}

/**
 * The identities (replica id + incarnation) that serve `eventType` among `identities` (the live
 * replicas, this one included): all of them, or the k heaviest. Ties go to the smaller identity.
 */
export function replicasOfType(identities: readonly string[], eventType: string, count: ReplicaCount): string[] {
  const distinct = [...new Set(identities)];
  if (count === 'all' || count >= distinct.length) return distinct.sort();
  return distinct
    .map((identity) => ({ identity, weight: rendezvousWeight(eventType, identity) }))
    .sort((a, b) => b.weight - a.weight || (a.identity < b.identity ? -1 : 1))
    .slice(0, count)
    .map((r) => r.identity);
}

/** The types among `eventTypes` that `self` serves, given the live identities (self is added if missing). */
export function typesServedBy(
  self: string,
  identities: readonly string[],
  eventTypes: readonly string[],
  spec: ReplicasPerType,
): string[] {
  const everyone = identities.includes(self) ? identities : [...identities, self];
  return eventTypes.filter((t) => replicasOfType(everyone, t, replicaCountOf(spec, t)).includes(self));
}

/**
 * Parses `HOURGLASS_REPLICAS_PER_TYPE`: `all`, or a whole number ≥ 1, optionally followed by
 * per-type exceptions, e.g. `2,track_played=all,search=6`. Undefined when malformed.
 */
export function parseReplicasPerType(raw: string): ReplicasPerType | undefined {
  const [first, ...rest] = raw.split(',').map((s) => s.trim());
  const parseCount = (s: string | undefined): ReplicaCount | undefined => {
    if (s === 'all') return 'all';
    return s !== undefined && /^[1-9][0-9]{0,5}$/.test(s) ? Number(s) : undefined;
  };
  const def = parseCount(first);
  if (def === undefined) return undefined;
  const byType: Record<string, ReplicaCount> = {};
  for (const item of rest) {
    if (!item) continue;
    const [type, value] = item.split('=').map((s) => s.trim());
    const count = parseCount(value);
    if (!type || count === undefined) return undefined;
    byType[type] = count;
  }
  return { default: def, byType };
}

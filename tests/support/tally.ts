/**
 * The Jepsen-style count every reliability test makes: what was acknowledged, against how
 * often each id was found where it must end up (on a topic, in closed windows).
 */
export interface IdCount {
  /** Distinct ids expected. */
  expected: number;
  /** Expected ids found nowhere. */
  lost: number;
  /** Copies beyond the first of any id found. */
  duplicated: number;
  /** Distinct ids found that are not `known`. */
  unexpected: number;
  /** The lost ids. */
  missing: string[];
}

/** How many times each id occurs. */
export function occurrencesOf(ids: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/**
 * Counts `found` (id → occurrences) against the expected ids. `known` is every id that may
 * legitimately turn up (e.g. sent but not acknowledged); it defaults to the expected ones.
 */
export function countIds(
  expectedIds: Iterable<string>,
  found: ReadonlyMap<string, number>,
  known?: ReadonlySet<string>,
): IdCount {
  const expected = new Set(expectedIds);
  const allowed = known ?? expected;
  const missing = [...expected].filter((id) => !found.has(id));
  let duplicated = 0;
  let unexpected = 0;
  for (const [id, n] of found) {
    if (n > 1) duplicated += n - 1;
    if (!allowed.has(id)) unexpected++;
  }
  return { expected: expected.size, lost: missing.length, duplicated, unexpected, missing };
}

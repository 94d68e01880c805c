import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { HourglassError, sha256Hex } from '@hourglass/common';

/**
 * API keys: bearer tokens stored only as their SHA-256, each scoped to event types and
 * optionally given its own rate limit. The file (HOURGLASS_API_KEYS_FILE) is a JSON array:
 * `[{"name": "web", "sha256": "<hex>", "types": ["track_played"] or ["*"], "ratePerSecond": 1000}]`.
 * A publishable key (`"kind": "publishable"`) is meant to be embedded in pages and apps: it
 * names its event types explicitly and lists the origins it may be used from (`"origins"`).
 */
export interface ApiKey {
  readonly name: string;
  readonly sha256: string;
  /** Event types the key may send; undefined = every type. */
  readonly types: ReadonlySet<string> | undefined;
  readonly ratePerSecond: number;
  /** Set only on publishable keys: the exact origins (scheme://host[:port]) it may be used from. */
  readonly origins?: ReadonlySet<string>;
}

const keyEntry = z
  .object({
    name: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits'),
    types: z.array(z.string().min(1)).min(1),
    ratePerSecond: z.number().positive().optional(),
    kind: z.enum(['server', 'publishable']).optional(),
    origins: z.array(z.string()).min(1).optional(),
  })
  .strict();
const keyFile = z.array(keyEntry);

/** Parses and checks a key file; throws CONFIG_INVALID naming the file and the bad entry. */
export function readApiKeysFile(path: string, knownTypes: readonly string[], defaultRate: number): ApiKey[] {
  const fail = (why: string): never => {
    throw new HourglassError('CONFIG_INVALID', `HOURGLASS_API_KEYS_FILE=${path}: ${why}`, {
      path: 'HOURGLASS_API_KEYS_FILE',
    });
  };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return fail((e as Error).message);
  }
  return parseApiKeys(json, knownTypes, defaultRate, fail);
}

export function parseApiKeys(
  json: unknown,
  knownTypes: readonly string[],
  defaultRate: number,
  fail: (why: string) => never = (why) => {
    throw new HourglassError('CONFIG_INVALID', why, { path: 'HOURGLASS_API_KEYS_FILE' });
  },
): ApiKey[] {
  const parsed = keyFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const [index, ...fields] = issue?.path ?? [];
    const where =
      index === undefined ? 'top level' : `[${String(index)}]${fields.map((f) => `.${String(f)}`).join('')}`;
    return fail(
      `${where}: ${issue?.message ?? 'invalid'} (expected [{"name","sha256","types","ratePerSecond"?,"kind"?,"origins"?}])`,
    );
  }
  const known = new Set(knownTypes);
  const names = new Set<string>();
  const hashes = new Set<string>();
  return parsed.data.map((entry) => {
    if (names.has(entry.name)) fail(`key name "${entry.name}" appears twice`);
    if (hashes.has(entry.sha256)) fail(`key "${entry.name}" has the same sha256 as another key`);
    names.add(entry.name);
    hashes.add(entry.sha256);
    const all = entry.types.includes('*');
    if (!all) {
      const unknown = entry.types.find((t) => !known.has(t));
      if (unknown) fail(`key "${entry.name}" names unknown event type "${unknown}"`);
    }
    const key: ApiKey = {
      name: entry.name,
      sha256: entry.sha256,
      types: all ? undefined : new Set(entry.types),
      ratePerSecond: entry.ratePerSecond ?? defaultRate,
    };
    if (entry.kind !== 'publishable') {
      if (entry.origins) fail(`key "${entry.name}" lists origins but is not "kind": "publishable"`);
      return key;
    }
    if (all) fail(`publishable key "${entry.name}" must name its event types ("*" is for server keys)`);
    if (!entry.origins) fail(`publishable key "${entry.name}" must list its "origins"`);
    const bad = entry.origins!.find((o) => !isExactOrigin(o));
    if (bad !== undefined) {
      fail(`publishable key "${entry.name}": origin ${JSON.stringify(bad)} is not of the form https://host[:port]`);
    }
    return { ...key, origins: new Set(entry.origins) };
  });
}

/** An origin as browsers send it: http(s), host, optional port, nothing else ("*" and "null" never). */
export function isExactOrigin(origin: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === origin;
  } catch {
    return false;
  }
}

/** Finds the key of an `Authorization: Bearer <token>` header. */
export class KeyRing {
  private readonly byHash = new Map<string, ApiKey>();
  /** Tokens already seen to be valid; bounded by the number of keys, so hashing runs once per key. */
  private readonly byToken = new Map<string, ApiKey>();

  constructor(keys: readonly ApiKey[]) {
    for (const k of keys) this.byHash.set(k.sha256, k);
  }

  authenticate(authorization: string | undefined): ApiKey | undefined {
    if (!authorization || authorization.length < 8) return undefined;
    if (authorization.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
    return this.lookup(authorization.slice(7).trim());
  }

  /** A publishable key given as `?key=` (beacons cannot set headers); server keys never match here. */
  publishable(token: string | undefined): ApiKey | undefined {
    const key = token ? this.lookup(token) : undefined;
    return key?.origins ? key : undefined;
  }

  /** Every origin some publishable key may be used from (preflights carry no key). */
  allOrigins(): ReadonlySet<string> {
    const all = new Set<string>();
    for (const k of this.byHash.values()) for (const o of k.origins ?? []) all.add(o);
    return all;
  }

  private lookup(token: string): ApiKey | undefined {
    if (token.length === 0) return undefined;
    const cached = this.byToken.get(token);
    if (cached) return cached;
    const key = this.byHash.get(sha256Hex(token));
    if (key) this.byToken.set(token, key);
    return key;
  }
}

export function keyAllows(key: ApiKey, eventType: string): boolean {
  return key.types === undefined || key.types.has(eventType);
}

/** The principal used when HOURGLASS_AUTH=disabled: every type, the default rate. */
export function anonymousKey(ratePerSecond: number): ApiKey {
  return { name: 'anonymous', sha256: '', types: undefined, ratePerSecond };
}

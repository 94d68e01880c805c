import type { ObjectStore } from '@hourglass/storage';

/**
 * Claims on shard jobs, like the leases: an object created if absent, holding who runs the job
 * and until when; the runner rewrites it (renews) while it works, and a claim past its expiry may
 * be taken over. Claims only spare work: two replicas that both run one shard job write the same
 * bytes (create-if-absent, sha256 checked), so a takeover race costs time, never data.
 */
export interface ShardClaim {
  replica: string;
  expiresAt: number;
}

export interface ClaimOptions {
  /** Who claims: the replica's lease identity. */
  identity: string;
  now(): number;
  /** How long a claim lasts without renewal. */
  claimMs: number;
}

function serialize(o: ClaimOptions): Buffer {
  const claim: ShardClaim = { replica: o.identity, expiresAt: o.now() + o.claimMs };
  return Buffer.from(JSON.stringify(claim));
}

/** The claim stored under `name`, undefined when absent or unreadable (then it counts as expired). */
export async function readClaim(store: ObjectStore, name: string): Promise<ShardClaim | undefined> {
  const data = await store.get(name);
  if (!data) return undefined;
  try {
    const c = JSON.parse(data.toString('utf8')) as ShardClaim;
    return typeof c.expiresAt === 'number' && typeof c.replica === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `claim` still holds the job at `now`. */
export function claimLive(claim: ShardClaim | undefined, now: number): boolean {
  return claim !== undefined && claim.expiresAt > now;
}

/** Claims the job: created, or taken over when the claim there has expired; false while another holds it. */
export async function claimJob(store: ObjectStore, name: string, o: ClaimOptions): Promise<boolean> {
  if (await store.createIfAbsent(name, serialize(o))) return true;
  const held = await readClaim(store, name);
  if (claimLive(held, o.now()) && held!.replica !== o.identity) return false;
  await store.put(name, serialize(o));
  return true;
}

/** Renews the claim every third of its life until the returned stop is called (a failed renewal waits for the next). */
export function keepClaimed(store: ObjectStore, name: string, o: ClaimOptions): () => void {
  const timer = setInterval(
    () => {
      store.put(name, serialize(o)).catch(() => undefined);
    },
    Math.max(1_000, Math.floor(o.claimMs / 3)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

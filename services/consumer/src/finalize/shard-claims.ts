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

/**
 * Claims the job: created, or taken over when the claim there has expired; false while another
 * holds it. `listed`: a listing showed a claim there, so no create is tried before reading it.
 */
export async function claimJob(store: ObjectStore, name: string, o: ClaimOptions, listed = false): Promise<boolean> {
  if (!listed && (await store.createIfAbsent(name, serialize(o)))) return true;
  const held = await readClaim(store, name);
  if (claimLive(held, o.now()) && held!.replica !== o.identity) return false;
  await store.put(name, serialize(o));
  return true;
}

/** A claim being held: renewed until released; lost once another replica holds it, or it is gone. */
export interface HeldClaim {
  lost(): boolean;
  /** Stops renewing; resolves when no renewal is in flight (none lands after the window is cleaned up). */
  release(): Promise<void>;
}

/**
 * Renews the claim every third of its life: each renewal first reads it, and a claim that another
 * replica took over (ours expired) or that is gone (the window was published) is lost, not renewed.
 */
export function keepClaimed(store: ObjectStore, name: string, o: ClaimOptions): HeldClaim {
  let lost = false;
  let renewing: Promise<void> = Promise.resolve();
  const renew = async (): Promise<void> => {
    const held = await readClaim(store, name);
    if (held?.replica !== o.identity) {
      lost = true;
      clearInterval(timer);
      return;
    }
    await store.put(name, serialize(o));
  };
  const timer = setInterval(
    () => {
      renewing = renewing.then(renew).catch(() => undefined); // a failed renewal waits for the next
    },
    Math.max(1_000, Math.floor(o.claimMs / 3)),
  );
  timer.unref();
  return {
    lost: () => lost,
    release: async () => {
      clearInterval(timer);
      await renewing;
    },
  };
}

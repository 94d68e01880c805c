/**
 * The hash that spreads a window's event ids over shards and staged files' datums over hash
 * groups. Shards are contiguous ranges of the 32-bit hash space, so a shard's ids are the ids of
 * a contiguous run of groups: a shard job reads only those groups' blocks of each staged file.
 */

/** The shard of the id `source[start, end)` among `shards`: stable forever, it decides output order. */
export function shardOf(source: Buffer, start: number, end: number, shards: number): number {
  // FNV-1a, then murmur3's finalizer: EventIdSet picks slots with the low bits of plain FNV-1a,
  // so the shard must come from differently mixed bits or a shard's ids would crowd its slots
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ source[i]!, 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  return Math.floor((h / 0x1_0000_0000) * shards);
}

/**
 * Hash groups of a staged file. 64: a shard job owns whole groups (shardJobOf) up to 64 shards, so
 * each staged byte is read by one job (8 GiB staged per window at the default shard size); beyond,
 * shards are hash ranges and a group a boundary cuts is read by both its shards (about
 * (64 + S − 1) / 64 of the staged bytes). More groups would cost every staged file a block
 * (≈ 20 bytes of framing, a deflate call) and an index entry per group, and small part files
 * (flushed by age) would hold groups of a few datums each.
 */
export const HASH_GROUPS = 64;

/** The hash group of the id `source[start, end)`, in [0, HASH_GROUPS): its shard among HASH_GROUPS. */
export function groupOf(source: Buffer, start: number, end: number): number {
  return shardOf(source, start, end, HASH_GROUPS);
}

/** The groups (inclusive) that hold every id of shard `shard` among `shards`: those its hash range overlaps. */
export function groupsOfShard(shard: number, shards: number): { first: number; last: number } {
  if (!Number.isInteger(shards) || shards < 1 || !Number.isInteger(shard) || shard < 0 || shard >= shards) {
    throw new RangeError(`no shard ${shard} of ${shards}`);
  }
  return {
    first: Math.floor((shard * HASH_GROUPS) / shards),
    last: Math.ceil(((shard + 1) * HASH_GROUPS) / shards) - 1,
  };
}

/**
 * The shard job of the id `source[start, end)` among `shards` (finalize/shard-jobs.ts): whole hash
 * groups per job while shards ≤ HASH_GROUPS (group g in job ⌊g·S/64⌋), so a job reads only its own
 * groups' blocks; hash ranges (shardOf) beyond. A copy always meets its twin: the job is a
 * function of the id alone.
 */
export function shardJobOf(source: Buffer, start: number, end: number, shards: number): number {
  return shards <= HASH_GROUPS
    ? Math.floor((groupOf(source, start, end) * shards) / HASH_GROUPS)
    : shardOf(source, start, end, shards);
}

/** The groups (inclusive) holding every id of shard job `shard` among `shards` (shardJobOf). */
export function groupsOfShardJob(shard: number, shards: number): { first: number; last: number } {
  if (shards > HASH_GROUPS) return groupsOfShard(shard, shards);
  groupsOfShard(shard, shards); // the same argument checks
  return {
    first: Math.ceil((shard * HASH_GROUPS) / shards),
    last: Math.ceil(((shard + 1) * HASH_GROUPS) / shards) - 1,
  };
}

/** The shard job a final file of a window finalized in shard jobs belongs to (`…/part-s00003-00000.avro`: 3). */
export function shardJobOfFile(path: string): number | undefined {
  const m = /\/(?:part|late)-s(\d{5})-\d{5}\.avro$/.exec(path);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether the final file `path` of a window finalized in `fileShards` shard jobs (undefined: not
 * in shard jobs) can hold an id of shard job `shard` among `shards`: false only when the two jobs'
 * groups do not meet.
 */
export function mayHoldShardJobIds(
  path: string,
  fileShards: number | undefined,
  shard: number,
  shards: number,
): boolean {
  const of = fileShards === undefined ? undefined : shardJobOfFile(path);
  if (of === undefined || fileShards === undefined) return true; // one pass, or an early segment's file
  const a = groupsOfShardJob(of, fileShards);
  const b = groupsOfShardJob(shard, shards);
  return a.first <= b.last && b.first <= a.last;
}

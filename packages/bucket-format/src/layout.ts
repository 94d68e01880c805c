import { type IntervalWindow, parsePartition, partitionPath } from './windows.js';

/**
 * Every object name the consumer reads or writes, in one place (the storage layout of the
 * design brief). All names are deterministic functions of type, window and file identity.
 *
 *   <type>/dt=YYYY-MM-DD/hour=HH[/minute=MM]/part-NNNNN.avro   final on-time records
 *   <type>/dt=YYYY-MM-DD/hour=HH[/minute=MM]/late-NNNNN.avro   final late records (older gateway_ts)
 *   …/part-sSSSSS-NNNNN.avro, …/late-sSSSSS-NNNNN.avro        the same, of a window finalized in shards
 *   <type>/dt=YYYY-MM-DD/hour=HH[/minute=MM]/_SUCCESS          manifest, written last
 *   _staging/<type>/<partition>/<replica>.<incarnation>.<seq>.avro        staged on-time events
 *   _staging/<type>/<partition>/late-<replica>.<incarnation>.<seq>.avro   staged late events
 *   _staging/<type>/<partition>/_plan.json                    the input list a finalize committed to
 *   _staging/<type>/<partition>/_plan-early-NNNNN.json        inputs finalized early, in segments; the close's seal
 *   _staging/<type>/<partition>/_shard-SSSSS.{claim,json}        a shard job's claim and its result
 *   _shardjobs/<type>/<start ms>.json                          a window whose shard jobs any replica may run
 *   _staging/<type>/<partition>/_publish/                     the window's final files and _SUCCESS before one
 *                                                             folder rename publishes them to <type>/<partition>/
 *   _watermarks/_replicas/<replicaId>.<incarnation>.json      a replica's lease, every type it serves (one per process start)
 *   _watermarks/<type>/<replicaId>.<incarnation>.json         a per-type lease, as versions before replica leases wrote (read, never written)
 *   _watermarks/<type>/_closed.json                           the last closed window (cursor)
 *   _deadletter/<type>/dt=YYYY-MM-DD/<messageId>.json         an undecodable message
 */
export const STAGING = '_staging';
export const WATERMARKS = '_watermarks';
export const DEADLETTER = '_deadletter';
/** Closed-window notices waiting to be published: `_notices/<type>/<window start ms>.json`. */
export const NOTICES = '_notices';
/** Dead letters already replayed by `hourglass deadletter replay`: `_deadletter/<type>/_replayed/`. */
export const REPLAYED = '_replayed';
export const LATE_PREFIX = 'late-';

export function stagingDir(eventType: string, w: IntervalWindow): string {
  return `${STAGING}/${partitionPath(eventType, w)}/`;
}

export function stagingTypePrefix(eventType: string): string {
  return `${STAGING}/${eventType}/`;
}

export function stagedFileName(
  eventType: string,
  w: IntervalWindow,
  late: boolean,
  replicaId: string,
  incarnation: string,
  seq: number,
): string {
  return `${stagingDir(eventType, w)}${late ? LATE_PREFIX : ''}${replicaId}.${incarnation}.${String(seq).padStart(8, '0')}.avro`;
}

export const PUBLISH_FOLDER = '_publish/';

/**
 * Where finalize writes a window's final files and manifest, where no reader looks; one atomic
 * folder rename to `partitionDir` publishes them together.
 */
export function publishDir(eventType: string, w: IntervalWindow): string {
  return `${stagingDir(eventType, w)}${PUBLISH_FOLDER}`;
}

/** The published folder of a window: `<type>/dt=…/hour=…[/minute=…]/`. */
export function partitionDir(eventType: string, w: IntervalWindow): string {
  return `${partitionPath(eventType, w)}/`;
}

/** Where a published object (a final file or the manifest) of `w` is written before publishing. */
export function unpublishedName(eventType: string, w: IntervalWindow, publishedName: string): string {
  return `${publishDir(eventType, w)}${publishedName.slice(partitionDir(eventType, w).length)}`;
}

export function planName(eventType: string, w: IntervalWindow): string {
  return `${stagingDir(eventType, w)}_plan.json`;
}

export const EARLY_PLAN_PREFIX = '_plan-early-';

/** Early segment `index` of a window: on-time files finalized before its close, or the close's seal (no files). */
export function earlyPlanName(eventType: string, w: IntervalWindow, index: number): string {
  return `${stagingDir(eventType, w)}${EARLY_PLAN_PREFIX}${String(index).padStart(5, '0')}.json`;
}

/** A staged object name split into its window and file name; undefined for foreign names. */
export function parseStagedName(
  eventType: string,
  name: string,
  windowMs: number,
): { window: IntervalWindow; file: string } | undefined {
  const prefix = stagingTypePrefix(eventType);
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  // a file in the window's unpublished folder belongs to the window too (`_publish/part-…`)
  const inPublish = rest.lastIndexOf(`/${PUBLISH_FOLDER}`);
  const slash = inPublish >= 0 ? inPublish : rest.lastIndexOf('/');
  if (slash < 0) return undefined;
  const window = parsePartition(rest.slice(0, slash), windowMs);
  if (!window) return undefined;
  return { window, file: rest.slice(slash + 1) };
}

export function isStagedDataFile(file: string): boolean {
  return file.endsWith('.avro') && !file.startsWith('_') && !file.startsWith('.');
}

/** A final file: `part-NNNNN.avro`, or of shard job `shard` (a window finalized in shards) `part-sSSSSS-NNNNN.avro`. */
export function finalFileName(
  eventType: string,
  w: IntervalWindow,
  late: boolean,
  index: number,
  shard?: number,
): string {
  const series = shard === undefined ? '' : `s${pad5(shard)}-`;
  return `${partitionPath(eventType, w)}/${late ? 'late' : 'part'}-${series}${pad5(index)}.avro`;
}

function pad5(n: number): string {
  return String(n).padStart(5, '0');
}

export const SHARD_PREFIX = '_shard-';

/** The result of shard job `shard` of a window: the final files it wrote and its counts. */
export function shardResultName(eventType: string, w: IntervalWindow, shard: number): string {
  return `${stagingDir(eventType, w)}${SHARD_PREFIX}${pad5(shard)}.json`;
}

/** A replica's claim on shard job `shard` of a window, with its expiry. */
export function shardClaimName(eventType: string, w: IntervalWindow, shard: number): string {
  return `${stagingDir(eventType, w)}${SHARD_PREFIX}${pad5(shard)}.claim`;
}

/** Where windows with open shard jobs are announced to every replica: `_shardjobs/<type>/<start ms>.json`. */
export const SHARD_JOBS = '_shardjobs';

export function shardJobName(eventType: string, w: IntervalWindow): string {
  return `${SHARD_JOBS}/${eventType}/${w.start}.json`;
}

/** The type and window start of a `_shardjobs/` entry; undefined for foreign names. */
export function parseShardJobName(name: string): { eventType: string; start: number } | undefined {
  const m = /^_shardjobs\/([^/]+)\/(\d+)\.json$/.exec(name);
  return m ? { eventType: m[1]!, start: Number(m[2]) } : undefined;
}

export function manifestName(eventType: string, w: IntervalWindow): string {
  return `${partitionPath(eventType, w)}/_SUCCESS`;
}

export function leasePrefix(eventType: string): string {
  return `${WATERMARKS}/${eventType}/`;
}

/**
 * A per-type lease's object name: `<replicaId>.<incarnation>.json` (`<replicaId>.json` for leases
 * from before incarnations). Written by versions before replica leases; still read, so that a
 * fleet in a rolling upgrade counts the old replicas' watermarks.
 */
export function leaseName(eventType: string, replicaId: string, incarnation: string): string {
  return `${leasePrefix(eventType)}${incarnation ? `${replicaId}.${incarnation}` : replicaId}.json`;
}

/** Where replica leases live; `_` cannot start an event type's name (EVENT_TYPE_PATTERN), so no type's folder meets it. */
export const REPLICA_LEASE_PREFIX = `${WATERMARKS}/_replicas/`;

/** A replica lease's object name: one per process start, whatever the number of types it serves. */
export function replicaLeaseName(replicaId: string, incarnation: string): string {
  return `${REPLICA_LEASE_PREFIX}${replicaId}.${incarnation}.json`;
}

export function cursorName(eventType: string): string {
  return `${leasePrefix(eventType)}_closed.json`;
}

export function deadLetterName(eventType: string, day: string, messageId: string): string {
  return `${DEADLETTER}/${eventType}/dt=${day}/${messageId.replace(/[^A-Za-z0-9._-]/g, '_')}.json`;
}

/** Replica ids become object names: keep them to safe characters. */
export const REPLICA_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$/;

export function sanitizeReplicaId(raw: string): string {
  const cleaned = raw.replace(/[^A-Za-z0-9.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return (cleaned || 'replica').slice(0, 100);
}

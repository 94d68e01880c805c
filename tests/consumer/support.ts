import { createHash, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import avro from 'avsc';
import { PubSub } from '@google-cloud/pubsub';
import { Defaults, ms, resourceNames, seconds, seededRandom } from '@hourglass/common';
import { type EventRecord, type SchemaRegistry, type SchemaVersion, encodeRecords } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import { type ConsumerConfig } from '@hourglass/consumer';
import { type Manifest, assignWindow, parseManifest } from '@hourglass/bucket-format';
import { MINUTE, T0, tempDir, uniquePrefix } from '../support/fixtures';
import { countIds } from '../support/tally';

/** Shared by the consumer suites: event generators, publishing, and the Jepsen-style audit. */
process.env.METADATA_SERVER_DETECTION = 'none';

export { MINUTE, T0, tempDir, uniquePrefix };

/**
 * Consumer settings for the ManualClock counting suites: one-minute windows, fast leases and
 * ticks, small part and final files so a few thousand events make many of each.
 */
export const FAST_CONSUMER: Partial<ConsumerConfig> = {
  window: ms(MINUTE),
  grace: seconds(20),
  maxPublishDelay: seconds(1),
  idleAfter: seconds(2),
  leaseTtl: seconds(5),
  ackDeadline: seconds(10),
  tick: ms(100),
  stageMaxEvents: 500,
  stageMaxAge: seconds(1),
  finalFileBytes: 64 * 1024,
  blockBytes: 16 * 1024,
};

/** A valid record of `version` of a type, with the given id and gateway time. */
export function makeRecord(version: SchemaVersion, id: string, gatewayTs: number, n = 0): EventRecord {
  const meta = { event_id: id, gateway_ts: gatewayTs, client_ts: gatewayTs - 17, gateway_id: 'gw-test' };
  switch (version.eventType) {
    case 'track_played': {
      const base = {
        meta,
        user_id: `user-${n % 97}`,
        track_id: `track-${n}`,
        ms_played: 1000 + n,
        reason_start: 'CLICK_ROW',
        reason_end: 'TRACK_DONE',
        shuffle: n % 2 === 0,
        platform: 'IOS',
        country: 'SE',
      };
      return version.version >= 2 ? { ...base, offline: false, context_uri: n % 3 ? null : `ctx-${n}` } : base;
    }
    case 'page_viewed':
      return { meta, user_id: null, page: `page-${n % 13}`, referrer: null, duration_ms: n, platform: 'WEB' };
    default: {
      // Any other type: let avsc fill a random valid record, then set meta.
      const rec = version.type.random() as unknown as EventRecord;
      rec.meta = meta;
      return rec;
    }
  }
}

export interface PublishedEvent {
  id: string;
  ts: number;
}

/** What countAgainst expects of records that were published: their ids and gateway timestamps. */
export function publishedOf(records: readonly EventRecord[]): PublishedEvent[] {
  return records.map((r) => ({ id: r.meta.event_id, ts: r.meta.gateway_ts }));
}

export interface Bundle {
  writer: SchemaVersion;
  records: EventRecord[];
}

/**
 * N events over `windows` one-minute windows from `start`, shuffled (out-of-order gateway_ts),
 * bundled 1..maxBundle, writers mixed across versions; `dupRate` of them are published twice
 * (same event_id and content, in another bundle).
 */
export function generateBundles(
  registry: SchemaRegistry,
  eventType: string,
  options: { events: number; start: number; spanMs: number; maxBundle: number; dupRate: number; seed: number },
): { bundles: Bundle[]; distinct: PublishedEvent[] } {
  const random = seededRandom(options.seed);
  const versions = registry.get(eventType).versions;
  const distinct: PublishedEvent[] = [];
  const items: { id: string; ts: number; n: number }[] = [];
  for (let n = 0; n < options.events; n++) {
    const event = { id: randomUUID(), ts: options.start + Math.floor(random() * options.spanMs) };
    distinct.push(event);
    items.push({ ...event, n });
    if (random() < options.dupRate) items.push({ ...event, n });
  }
  // shuffle: gateway_ts arrives out of order, duplicates land in other bundles
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  const bundles: Bundle[] = [];
  for (let i = 0; i < items.length;) {
    // each bundle has one writer; versions mix across bundles (older ones are resolved by the consumer)
    const writer = versions[Math.floor(random() * versions.length)]!;
    const size = 1 + Math.floor(random() * options.maxBundle);
    const slice = items.slice(i, i + size);
    i += slice.length;
    bundles.push({ writer, records: slice.map((e) => makeRecord(writer, e.id, e.ts, e.n)) });
  }
  return { bundles, distinct };
}

export async function publishBundles(
  pubsub: PubSub,
  prefix: string,
  eventType: string,
  bundles: readonly Bundle[],
): Promise<number> {
  const topic = pubsub.topic(resourceNames(prefix, eventType).topic, {
    batching: { maxMessages: 100, maxMilliseconds: 5 },
  });
  const ids = await Promise.all(
    bundles.map((b, i) => {
      const { data, attributes } = encodeRecords(b.writer, b.records, i % 2 ? 'deflate' : 'null');
      return topic.publishMessage({ data, attributes });
    }),
  );
  return ids.length;
}

export async function publishRaw(
  pubsub: PubSub,
  prefix: string,
  eventType: string,
  data: Buffer,
  attributes: Record<string, string>,
): Promise<void> {
  await pubsub.topic(resourceNames(prefix, eventType).topic).publishMessage({ data, attributes });
}

export function newPubSub(): PubSub {
  return new PubSub({ projectId: Defaults.projectId });
}

/** Reads a whole container file with avsc's own decoder and only the schema embedded in it. */
export async function decodeWithEmbeddedSchema(data: Buffer): Promise<{ records: EventRecord[]; schema: unknown }> {
  const decoder = new avro.streams.BlockDecoder();
  const records: EventRecord[] = [];
  let schema: unknown;
  decoder.on('metadata', (type: avro.Type) => {
    schema = type.schema();
  });
  decoder.on('data', (r: EventRecord) => records.push(r));
  await new Promise<void>((resolve, reject) => {
    decoder.on('end', resolve);
    decoder.on('error', reject);
    decoder.end(data);
  });
  return { records, schema };
}

export interface WindowAudit {
  manifest: Manifest;
  records: { id: string; ts: number; late: boolean }[];
}

export interface AuditResult {
  windows: WindowAudit[];
  /** Problems with manifests or files: must be empty. */
  problems: string[];
  /** Occurrences of each event id across closed windows. */
  occurrences: Map<string, number>;
  late: number;
  duplicatesDropped: number;
}

/**
 * Reads every closed window of a type: each manifest, each final file (checksum, size,
 * record count, time bounds, late flags) decoded with its embedded schema only.
 */
export async function auditType(store: ObjectStore, eventType: string, windowMs: number): Promise<AuditResult> {
  const problems: string[] = [];
  const objects = await store.list(`${eventType}/`);
  const manifests = objects.filter((o) => o.name.endsWith('/_SUCCESS')).map((o) => o.name);
  const finals = new Set(objects.filter((o) => o.name.endsWith('.avro')).map((o) => o.name));
  const windows: WindowAudit[] = [];
  const occurrences = new Map<string, number>();
  let late = 0;
  let duplicatesDropped = 0;
  for (const name of manifests) {
    const manifest = parseManifest((await store.get(name))!, name);
    const { startMs, endMs } = manifest.window;
    const records: WindowAudit['records'] = [];
    let onTime = 0;
    let lateHere = 0;
    for (const f of manifest.files) {
      finals.delete(f.path);
      const data = await store.get(f.path);
      if (!data) {
        problems.push(`${f.path}: in ${name} but missing`);
        continue;
      }
      if (data.length !== f.bytes) problems.push(`${f.path}: ${data.length} bytes, manifest says ${f.bytes}`);
      if (createHash('sha256').update(data).digest('hex') !== f.sha256) problems.push(`${f.path}: sha256 mismatch`);
      const decoded = await decodeWithEmbeddedSchema(data);
      if (decoded.records.length !== f.records) {
        problems.push(`${f.path}: ${decoded.records.length} records, manifest says ${f.records}`);
      }
      for (const r of decoded.records) {
        const ts = r.meta.gateway_ts;
        const inWindow = ts >= startMs && ts < endMs;
        if (f.late ? ts >= startMs : !inWindow)
          problems.push(`${f.path}: record ts ${ts} in a ${f.late ? 'late' : 'part'} file`);
        if (ts < f.minGatewayTs || ts > f.maxGatewayTs) problems.push(`${f.path}: ts ${ts} outside the file's bounds`);
        records.push({ id: r.meta.event_id, ts, late: f.late });
        occurrences.set(r.meta.event_id, (occurrences.get(r.meta.event_id) ?? 0) + 1);
        if (f.late) lateHere++;
        else onTime++;
      }
    }
    if (onTime !== manifest.counts.onTime)
      problems.push(`${name}: ${onTime} on-time records, manifest says ${manifest.counts.onTime}`);
    if (lateHere !== manifest.counts.late)
      problems.push(`${name}: ${lateHere} late records, manifest says ${manifest.counts.late}`);
    if (manifest.counts.records !== onTime + lateHere) problems.push(`${name}: records count mismatch`);
    if (endMs - startMs !== windowMs || assignWindow(startMs, windowMs).start !== startMs) {
      problems.push(`${name}: window ${startMs}..${endMs} is not a ${windowMs}ms window`);
    }
    if (manifest.closedBy.watermark < endMs + manifest.closedBy.graceMs) {
      problems.push(`${name}: closed by watermark ${manifest.closedBy.watermark} < end + grace`);
    }
    late += lateHere;
    duplicatesDropped += manifest.counts.duplicatesDropped;
    windows.push({ manifest, records });
  }
  for (const f of finals) {
    const dir = f.slice(0, f.lastIndexOf('/'));
    if (manifests.includes(`${dir}/_SUCCESS`)) problems.push(`${f}: final file not in its manifest`);
  }
  windows.sort((a, b) => a.manifest.window.startMs - b.manifest.window.startMs);
  for (let i = 1; i < windows.length; i++) {
    if (windows[i]!.manifest.window.startMs !== windows[i - 1]!.manifest.window.endMs) {
      problems.push(`gap before ${windows[i]!.manifest.partition}`);
    }
  }
  return { windows, problems, occurrences, late, duplicatesDropped };
}

/** The Jepsen-style count: every distinct published id exactly once across closed windows. */
export function countAgainst(
  audit: AuditResult,
  published: readonly PublishedEvent[],
): { expected: number; present: number; lost: number; duplicated: number; unexpected: number } {
  const { expected, lost, duplicated, unexpected } = countIds(
    published.map((e) => e.id),
    audit.occurrences,
  );
  return { expected, present: audit.occurrences.size, lost, duplicated, unexpected };
}

/** Polls `condition` (real time, for real Pub/Sub delivery) while `step` drives the clock. */
export async function driveUntil(
  condition: () => boolean | Promise<boolean>,
  step: () => Promise<void>,
  { timeoutMs = 45_000, intervalMs = 50 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await step();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A Writable that discards, for quiet child-process output. */
export const sink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });

import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type avro from 'avsc';
import { Defaults, HourglassError } from '@hourglass/common';
import type { EventRecord } from './meta.js';
import type { SchemaRegistry, SchemaVersion } from './registry.js';

/**
 * The Pub/Sub message format shared by gateway and consumer.
 *
 * `data` holds `count` Avro binary datums of the writer schema, concatenated, then
 * compressed by `codec`. A bundle of one with codec "null" is plain Avro binary, so a
 * Pub/Sub topic schema (encoding BINARY) can validate it.
 */
export type BundleCodec = 'null' | 'deflate';

export const Attr = {
  eventType: 'event_type',
  fingerprint: 'schema_fingerprint',
  /** Event id of a single event; for bundles the id of the first event. */
  eventId: 'event_id',
  /** Smallest gateway_ts in the bundle, epoch ms as decimal text. */
  gatewayTs: 'gateway_ts',
  count: 'count',
  codec: 'codec',
  traceparent: 'traceparent',
  /**
   * Set only by `hourglass deadletter replay` on the copy it re-publishes: `<source>:<id>` of the
   * dead letter (e.g. `store:4711`). Decoding ignores it; the consumer counts replayed events by it.
   */
  replayOf: 'replay_of',
} as const;

export interface EncodedBundle {
  data: Buffer;
  attributes: Record<string, string>;
}

export interface BundleInput {
  writer: SchemaVersion;
  /** Each event's Avro binary datum of `writer`. */
  datums: readonly Buffer[];
  firstEventId: string;
  minGatewayTs: number;
  codec: BundleCodec;
  traceparent?: string;
}

export function encodeBundle(input: BundleInput): EncodedBundle {
  const { datums } = input;
  if (datums.length === 0) throw new RangeError('a bundle holds at least one event');
  const raw = datums.length === 1 ? datums[0]! : Buffer.concat(datums);
  return encodeConcatenated({ ...input, raw, count: datums.length });
}

/** A bundle's datums already back to back (`raw`, `count` of them), as the gateway's bundler builds them. */
export interface ConcatenatedBundleInput extends Omit<BundleInput, 'datums'> {
  raw: Buffer;
  count: number;
}

export function encodeConcatenated(input: ConcatenatedBundleInput): EncodedBundle {
  const { writer, raw, count } = input;
  if (count < 1) throw new RangeError('a bundle holds at least one event');
  const data = input.codec === 'deflate' ? deflateRawSync(raw) : raw;
  const attributes: Record<string, string> = {
    [Attr.eventType]: writer.eventType,
    [Attr.fingerprint]: writer.fingerprint,
    [Attr.eventId]: input.firstEventId,
    [Attr.gatewayTs]: String(input.minGatewayTs),
    [Attr.count]: String(count),
    [Attr.codec]: input.codec,
  };
  if (input.traceparent) attributes[Attr.traceparent] = input.traceparent;
  return { data, attributes };
}

/** Convenience for producers holding records rather than datums (tests, the binary client). */
export function encodeRecords(
  writer: SchemaVersion,
  records: readonly EventRecord[],
  codec: BundleCodec = 'null',
  traceparent?: string,
): EncodedBundle {
  const first = records[0];
  if (!first) throw new RangeError('a bundle holds at least one event');
  let minTs = first.meta.gateway_ts;
  for (const r of records) if (r.meta.gateway_ts < minTs) minTs = r.meta.gateway_ts;
  return encodeBundle({
    writer,
    datums: records.map((r) => writer.type.toBuffer(r)),
    firstEventId: first.meta.event_id,
    minGatewayTs: minTs,
    codec,
    ...(traceparent ? { traceparent } : {}),
  });
}

export interface DecodedBundle {
  eventType: string;
  writer: SchemaVersion;
  /** Records resolved to the newest schema of the type. */
  records: EventRecord[];
}

export interface DecodeOptions {
  /** Refuses a deflate body that inflates beyond this (a deflate bomb). */
  maxInflatedBytes?: number;
}

const COUNT_TEXT = /^[1-9][0-9]{0,9}$/;

/** A message whose attributes and codec checked out: its datums, not yet decoded. */
export interface OpenedBundle {
  eventType: string;
  writer: SchemaVersion;
  /** `count` datums of `writer`, back to back, uncompressed. */
  raw: Buffer;
  count: number;
}

/** Decodes a message; throws MESSAGE_CORRUPT or SCHEMA_UNKNOWN_FINGERPRINT (both permanent). */
export function decodeBundle(
  registry: SchemaRegistry,
  data: Buffer,
  attributes: Readonly<Record<string, string>>,
  options: DecodeOptions = {},
): DecodedBundle {
  return decodeOpened(registry, openBundle(registry, data, attributes, options));
}

/** Decodes an opened bundle's datums, resolved to the newest schema; throws MESSAGE_CORRUPT. */
export function decodeOpened(registry: SchemaRegistry, bundle: OpenedBundle): DecodedBundle {
  const { writer, raw, count } = bundle;
  const schemas = registry.get(writer.eventType);
  const resolver = schemas.resolverFor(writer);
  const reader = schemas.latest.type;
  return { eventType: writer.eventType, writer, records: decodeDatums(reader, raw, count, resolver) };
}

/** Checks a message's attributes and inflates it; throws like decodeBundle. */
export function openBundle(
  registry: SchemaRegistry,
  data: Buffer,
  attributes: Readonly<Record<string, string>>,
  options: DecodeOptions = {},
): OpenedBundle {
  const fingerprint = attributes[Attr.fingerprint];
  if (!fingerprint) throw new HourglassError('MESSAGE_CORRUPT', `attribute ${Attr.fingerprint} is missing`);
  const writer = registry.byFingerprint(fingerprint);
  if (!writer) throw new HourglassError('SCHEMA_UNKNOWN_FINGERPRINT', `no schema has fingerprint ${fingerprint}`);
  const eventType = attributes[Attr.eventType];
  if (eventType !== undefined && eventType !== writer.eventType) {
    throw new HourglassError(
      'MESSAGE_CORRUPT',
      `attribute event_type=${eventType} but fingerprint is of ${writer.eventType}`,
    );
  }
  const codec = attributes[Attr.codec] ?? 'null';
  const countText = attributes[Attr.count] ?? '1';
  if (!COUNT_TEXT.test(countText)) {
    throw new HourglassError(
      'MESSAGE_CORRUPT',
      `attribute count=${JSON.stringify(countText)} is not a positive integer`,
    );
  }
  const count = Number(countText);
  let raw: Buffer;
  if (codec === 'null') raw = data;
  else if (codec === 'deflate') {
    const maxOutputLength = options.maxInflatedBytes ?? Defaults.maxInflatedBundleBytes;
    try {
      raw = inflateRawSync(data, { maxOutputLength });
    } catch (e) {
      throw new HourglassError(
        'MESSAGE_CORRUPT',
        `deflate data is corrupt or inflates beyond ${maxOutputLength} bytes (${(e as Error).message})`,
      );
    }
  } else throw new HourglassError('MESSAGE_CORRUPT', `attribute codec=${codec} is unknown`);
  // Every event datum holds at least its meta record, so it takes at least one byte.
  if (count > raw.length) {
    throw new HourglassError('MESSAGE_CORRUPT', `attribute count=${count} but the body has only ${raw.length} bytes`);
  }
  return { eventType: writer.eventType, writer, raw, count };
}

function decodeDatums(
  reader: avro.Type,
  raw: Buffer,
  count: number,
  resolver: avro.Resolver | undefined,
): EventRecord[] {
  const records: EventRecord[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    let res: { value: unknown; offset: number };
    try {
      res = resolver ? reader.decode(raw, pos, resolver) : reader.decode(raw, pos);
    } catch (e) {
      throw new HourglassError('MESSAGE_CORRUPT', `datum ${i} of ${count} cannot be decoded (${(e as Error).message})`);
    }
    if (res.offset < 0) throw new HourglassError('MESSAGE_CORRUPT', `datum ${i} of ${count} is truncated`);
    records.push(res.value as EventRecord);
    pos = res.offset;
  }
  if (pos !== raw.length) {
    throw new HourglassError('MESSAGE_CORRUPT', `${raw.length - pos} trailing bytes after ${count} datums`);
  }
  return records;
}

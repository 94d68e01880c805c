import { type Clock, HourglassError } from '@hourglass/common';
import {
  type EventRecord,
  type OpenedBundle,
  type ScannedEvents,
  type SchemaRegistry,
  type SchemaVersion,
  type Skipper,
  compileSkipper,
  decodeOpened,
  openBundle,
  scanEvents,
} from '@hourglass/schemas';
import { eventRangeAt } from '../source/event-range.js';
import { checkCanonical, checkEvents } from '../source/message-checks.js';

/**
 * A message's events, checked: datums of the type's newest schema are scanned (copied as bytes,
 * `scanned`), any other bundle is decoded (`records`).
 */
export interface DecodedMessage {
  bundle: OpenedBundle;
  scanned: ScannedEvents | undefined;
  records: EventRecord[];
  count: number;
}

/** Opens and checks one type's messages; throws (a dead letter) for what must not be stored. */
export class MessageDecoder {
  private skipper: { fingerprint: string; skip: Skipper | undefined } | undefined;

  constructor(
    private readonly eventType: string,
    private readonly registry: SchemaRegistry,
    private readonly clock: Clock,
  ) {}

  decode(data: Buffer, attributes: Readonly<Record<string, string>>): DecodedMessage {
    const bundle = openBundle(this.registry, data, attributes);
    if (bundle.eventType !== this.eventType) {
      throw new HourglassError(
        'MESSAGE_CORRUPT',
        `message of type ${bundle.eventType} on the subscription of ${this.eventType}`,
      );
    }
    const skip = this.skipperFor(bundle.writer);
    const scanned = skip && scanEvents(bundle.raw, bundle.count, skip);
    let records: EventRecord[] = [];
    if (!scanned) {
      checkCanonical(bundle);
      records = decodeOpened(this.registry, bundle).records;
    }
    checkEvents(bundle, scanned, records, eventRangeAt(this.clock.now()));
    return { bundle, scanned, records, count: scanned ? bundle.count : records.length };
  }

  /** The skipper of the newest schema when `writer` is it (its datums need no resolving), else undefined. */
  private skipperFor(writer: SchemaVersion): Skipper | undefined {
    const latest = this.registry.get(this.eventType).latest;
    if (writer.fingerprint !== latest.fingerprint) return undefined;
    if (this.skipper?.fingerprint !== latest.fingerprint) {
      this.skipper = { fingerprint: latest.fingerprint, skip: compileSkipper(latest.type) };
    }
    return this.skipper.skip;
  }
}

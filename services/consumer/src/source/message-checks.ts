import { HourglassError } from '@hourglass/common';
import {
  type EventRecord,
  type OpenedBundle,
  type ScannedEvents,
  checkDatum,
  displayPath,
  isUuidBytesAt,
  readVarint,
  varintValue,
} from '@hourglass/schemas';
import { type EventRange, eventTimeProblem } from './event-range.js';

/**
 * What a message must be, beyond decodable, before any of its events is staged: every event
 * id a lower-case UUID (the dedup key; the gateway publishes no other), every gateway_ts in the
 * range a deployment can have produced, and — on the decoding path, where datums are not copied
 * as bytes — every datum in canonical form, so decoding stores what was sent. A message that
 * fails is dead-lettered whole (throws a permanent HourglassError).
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The consumer's rule for datums: anything avsc reads back as written (±Infinity is). */
const CONSUMER_RULES = { finiteNumbers: false };

/** Before decoding: throws MESSAGE_CORRUPT when a datum is not canonical (see checkDatum). */
export function checkCanonical(bundle: OpenedBundle): void {
  const type = bundle.writer.type;
  let pos = 0;
  for (let i = 0; i < bundle.count; i++) {
    const checked = checkDatum(type, bundle.raw, pos, CONSUMER_RULES);
    if (checked.problem) {
      const { path, reason } = checked.problem;
      throw new HourglassError('MESSAGE_CORRUPT', `datum ${i} of ${bundle.count}: ${displayPath(path)} ${reason}`);
    }
    if (checked.end < 0) return; // decoding names it
    pos = checked.end;
  }
}

/** After scanning or decoding: each event's id and gateway_ts. */
export function checkEvents(
  bundle: OpenedBundle,
  scanned: ScannedEvents | undefined,
  records: readonly EventRecord[],
  range: EventRange,
): void {
  const count = scanned ? bundle.count : records.length;
  for (let i = 0; i < count; i++) {
    const start = scanned ? (i === 0 ? 0 : scanned.ends[i - 1]!) : 0;
    if (scanned ? !isUuidAt(bundle.raw, start) : !UUID.test(records[i]!.meta.event_id)) {
      const id = scanned ? idAt(bundle.raw, start) : records[i]!.meta.event_id;
      throw new HourglassError(
        'MESSAGE_EVENT_ID_INVALID',
        `event ${i} of ${count}: meta.event_id ${JSON.stringify(id.slice(0, 64))} is not a lower-case UUID`,
      );
    }
    const ts = scanned ? scanned.gatewayTs[i]! : records[i]!.meta.gateway_ts;
    if (ts >= range.oldest && ts <= range.newest) continue;
    const problem = eventTimeProblem(ts, range);
    if (problem) throw new HourglassError('MESSAGE_EVENT_TIME_INVALID', `event ${i} of ${count}: meta.${problem}`);
  }
}

/** Is the datum at `pos` led by a lower-case UUID: length 36 (zigzag 72), then its bytes? No string built: this runs per event. */
function isUuidAt(raw: Buffer, pos: number): boolean {
  return raw[pos] === 72 && isUuidBytesAt(raw, pos + 1);
}

/** The event id at the start of a scanned datum: a string (length varint, UTF-8 bytes), meta's first field. */
function idAt(raw: Buffer, pos: number): string {
  const start = readVarint(raw, pos);
  const length = varintValue(); // a non-negative length: the scanner accepted the datum
  return raw.toString('utf8', start, start + Math.min(length, 64));
}

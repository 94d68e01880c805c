import { setImmediate as nextTurn } from 'node:timers/promises';
import avro from 'avsc';
import {
  type SchemaVersion,
  fingerprintOf,
  readVarint as sharedReadVarint,
  varintValue as sharedVarintValue,
} from '@hourglass/schemas';
import { type OcfHeader, ocfBlocks, readOcfHeader } from './avro-file.js';

/**
 * Walks the datums of a container file written by the consumer, handing out each datum's raw
 * bytes with its event id's position and its `gateway_ts`, so finalize copies and deduplicates
 * records without decoding them. `meta` is every schema's first field (the registry enforces it),
 * so a datum starts with the event id's length and bytes, then `gateway_ts`: read here by hand;
 * avsc only skips the rest of the record to find where the datum ends. Files written with an older
 * schema than the target are resolved and re-encoded record by record instead.
 */
export interface ScannedDatum {
  /** The datum in the target schema's binary encoding. */
  bytes: Buffer;
  /** The event id is `bytes[idStart, idEnd)`, its UTF-8 bytes. */
  idStart: number;
  idEnd: number;
  gatewayTs: number;
}

/** The event id of a scanned datum, as a string (for logs and tests; finalize keeps bytes). */
export function eventIdOf(datum: ScannedDatum): string {
  return datum.bytes.toString('utf8', datum.idStart, datum.idEnd);
}

interface FileReader {
  /** A reader with no fields: decoding with it skips a whole datum and tells where it ends. */
  skipType: avro.Type;
  skipResolver: avro.Resolver;
  /** Set when the file's schema is not the target's: resolves whole records to the target. */
  toTarget?: { resolver: avro.Resolver; target: avro.Type };
}

const readers = new Map<string, FileReader>();

function readerFor(header: OcfHeader, target: SchemaVersion): FileReader {
  const key = `${target.fingerprint}:${JSON.stringify(header.schema)}`;
  let reader = readers.get(key);
  if (!reader) {
    const fileType = avro.Type.forSchema(header.schema);
    const name = (fileType as avro.types.RecordType).name ?? 'record';
    const skipType = avro.Type.forSchema({ type: 'record', name, fields: [] } as unknown as avro.Schema);
    reader = { skipType, skipResolver: skipType.createResolver(fileType) };
    if (fingerprintOf(fileType) !== target.fingerprint) {
      reader.toTarget = { resolver: target.type.createResolver(fileType), target: target.type };
    }
    readers.set(key, reader);
  }
  return reader;
}

/**
 * Bound once: an import from another workspace compiles to a getter read at every call, which
 * cost ≈100 ns per datum in this loop (two varints per datum, measured on Node 20).
 */
const readVarint = sharedReadVarint;
const varintValue = sharedVarintValue;

/**
 * Calls `visit` for every datum of `file`, in order; awaits `between` after each block (by
 * default one turn of the event loop).
 */
export function scanContainer(
  file: Buffer,
  what: string,
  target: SchemaVersion,
  visit: (datum: ScannedDatum) => void | Promise<void>,
  between: () => Promise<void> = nextTurn,
): Promise<number> {
  const header = readOcfHeader(file, what);
  return scanBlocks(header, file.subarray(header.dataOffset), what, target, visit, between);
}

/**
 * As scanContainer, for `blocks`: whole blocks of the file `header` was read from (e.g. a ranged
 * read of some hash groups of a staged file, grouped-ocf.ts).
 */
export async function scanBlocks(
  header: OcfHeader,
  blocks: Buffer,
  what: string,
  target: SchemaVersion,
  visit: (datum: ScannedDatum) => void | Promise<void>,
  between: () => Promise<void> = nextTurn,
): Promise<number> {
  const reader = readerFor(header, target);
  let records = 0;
  for (const block of ocfBlocks(blocks, { ...header, dataOffset: 0 }, what)) {
    let pos = 0;
    for (let i = 0; i < block.count; i++) {
      const { offset } = reader.skipType.decode(block.data, pos, reader.skipResolver);
      if (offset < 0) throw new RangeError(`${what}: datum ${i} of a block is truncated`);
      let bytes = block.data.subarray(pos, offset);
      if (reader.toTarget) {
        const record = reader.toTarget.target.decode(block.data, pos, reader.toTarget.resolver).value;
        bytes = reader.toTarget.target.toBuffer(record);
      }
      // meta.event_id (a string: length, bytes), then meta.gateway_ts; the datum is whole, so both are inside it
      const idStart = readVarint(bytes, 0);
      const idLength = varintValue();
      const idEnd = idStart + idLength;
      const afterTs = idStart < 0 || idLength < 0 ? -1 : readVarint(bytes, idEnd);
      if (afterTs < 0) throw new RangeError(`${what}: datum ${i} has no readable meta`);
      const gatewayTs = varintValue();
      const result = visit({ bytes, idStart, idEnd, gatewayTs });
      if (result) await result;
      pos = offset;
      records++;
    }
    // Keep leases renewing, Pub/Sub leases extending and staging going while a big window finalizes.
    await between();
  }
  return records;
}

import avro from 'avsc';
import { META_SCHEMA, fingerprintOf, type EventMeta, type SchemaVersion } from '@hourglass/schemas';
import { type OcfHeader, ocfBlocks, readOcfHeader } from './avro-file.js';

/**
 * Walks the datums of a container file written by the consumer, decoding only `meta` (the
 * dedup key and the time) and handing out each datum's raw bytes, so finalize copies records
 * without decoding them. Files written with an older schema than the target are resolved and
 * re-encoded record by record instead.
 */
export interface ScannedDatum {
  meta: EventMeta;
  /** The datum in the target schema's binary encoding. */
  bytes: Buffer;
}

interface FileReader {
  /** Decodes meta only, skipping the rest of the datum. */
  metaType: avro.Type;
  metaResolver: avro.Resolver;
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
    const metaType = avro.Type.forSchema({
      type: 'record',
      name,
      fields: [{ name: 'meta', type: META_SCHEMA }],
    } as unknown as avro.Schema);
    reader = { metaType, metaResolver: metaType.createResolver(fileType) };
    if (fingerprintOf(fileType) !== target.fingerprint) {
      reader.toTarget = { resolver: target.type.createResolver(fileType), target: target.type };
    }
    readers.set(key, reader);
  }
  return reader;
}

/** Calls `visit` for every datum of `file`, in order; yields to the event loop between blocks. */
export async function scanContainer(
  file: Buffer,
  what: string,
  target: SchemaVersion,
  visit: (datum: ScannedDatum) => void | Promise<void>,
): Promise<number> {
  const header = readOcfHeader(file, what);
  const reader = readerFor(header, target);
  let records = 0;
  for (const block of ocfBlocks(file, header, what)) {
    let pos = 0;
    for (let i = 0; i < block.count; i++) {
      const { value, offset } = reader.metaType.decode(block.data, pos, reader.metaResolver);
      if (offset < 0) throw new RangeError(`${what}: datum ${i} of a block is truncated`);
      let bytes = block.data.subarray(pos, offset);
      if (reader.toTarget) {
        const record = reader.toTarget.target.decode(block.data, pos, reader.toTarget.resolver).value;
        bytes = reader.toTarget.target.toBuffer(record);
      }
      const result = visit({ meta: (value as { meta: EventMeta }).meta, bytes });
      if (result) await result;
      pos = offset;
      records++;
    }
    // Keep leases renewing and Pub/Sub leases extending while a big window finalizes.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return records;
}

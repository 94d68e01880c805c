/**
 * @hourglass/bucket-format: the stored format of a bucket, the contract between the consumer
 * that writes it, the CLI and every downstream reader. See README.md.
 */
export * from './windows.js';
export * from './layout.js';
export * from './manifest.js';
export * from './lease.js';
export * from './replica-lease.js';
export * from './type-assignment.js';
export * from './cursor.js';
export * from './shared-records.js';
export {
  OcfWriter,
  type OcfWriterOptions,
  type OcfHeader,
  type OcfBlock,
  readOcfHeader,
  ocfHeaderIn,
  ocfBlocks,
  syncMarkerFor,
  schemaText,
  schemaTextOf,
} from './avro-file.js';
export { eventIdOf, scanBlocks, scanContainer, type ScannedDatum } from './datums.js';
export * from './shard-hash.js';
export { GROUPS_META_KEY, GROUP_CRCS_META_KEY, GroupedOcfWriter, groupCrcsOf, groupIndexOf } from './grouped-ocf.js';

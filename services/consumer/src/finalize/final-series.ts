import { createHash } from 'node:crypto';
import { HourglassError } from '@hourglass/common';
import type { SchemaVersion } from '@hourglass/schemas';
import { type ObjectBytes, byteLengthOf } from '@hourglass/storage';
import {
  OcfWriter,
  schemaTextOf,
  syncMarkerFor,
  finalFileName,
  unpublishedName,
  type ManifestFile,
  type IntervalWindow,
  windowLabel,
} from '@hourglass/bucket-format';
import type { FinalizeContext, FinalizeFormat } from './context.js';

export function sha256(data: ObjectBytes): string {
  const hash = createHash('sha256');
  for (const part of Buffer.isBuffer(data) ? [data] : data) hash.update(part);
  return hash.digest('hex');
}

/** Raw bytes appended to a final file between waits for its blocks' compression. */
const DRAIN_BYTES = 8 * 1024 * 1024;

/** A sequence of final files (part-* or late-*), rolled at a size of uncompressed record data. */
export class FinalSeries {
  readonly files: ManifestFile[] = [];
  private writer: OcfWriter | undefined;
  private index = 0;
  private minTs = Infinity;
  private maxTs = -Infinity;
  private drainAt = DRAIN_BYTES;

  constructor(
    private readonly ctx: FinalizeContext,
    private readonly w: IntervalWindow,
    private readonly late: boolean,
    private readonly target: SchemaVersion,
    private readonly format: FinalizeFormat,
    /** A shard job's series (shard-jobs.ts): its own file names, `part-sSSSSS-NNNNN.avro`. */
    private readonly shard?: number,
  ) {}

  add(bytes: Buffer, gatewayTs: number): Promise<void> | undefined {
    if (!this.writer) {
      const name = finalFileName(this.ctx.eventType, this.w, this.late, this.index, this.shard);
      this.writer = new OcfWriter({
        type: this.target.type,
        schema: schemaTextOf(this.target),
        syncMarker: syncMarkerFor(name),
        deflateLevel: this.format.deflateLevel,
        blockBytes: this.format.blockBytes,
      });
    }
    this.writer.appendDatum(bytes);
    if (gatewayTs < this.minTs) this.minTs = gatewayTs;
    if (gatewayTs > this.maxTs) this.maxTs = gatewayTs;
    if (this.writer.rawBytes >= this.format.finalFileBytes) return this.complete();
    if (this.writer.rawBytes < this.drainAt) return undefined;
    // bounds the raw blocks waiting for deflate to DRAIN_BYTES, not a file's finalFileBytes
    this.drainAt = this.writer.rawBytes + DRAIN_BYTES;
    return this.writer.drained();
  }

  async complete(): Promise<void> {
    const writer = this.writer;
    if (!writer || writer.records === 0) return;
    const name = finalFileName(this.ctx.eventType, this.w, this.late, this.index, this.shard);
    const unpublished = unpublishedName(this.ctx.eventType, this.w, name);
    const data = await writer.finishParts();
    const digest = sha256(data);
    if (!(await this.ctx.store.createIfAbsent(unpublished, data))) {
      const earlier = await this.ctx.store.get(unpublished);
      if (!earlier || sha256(earlier) !== digest) {
        throw new HourglassError(
          'FINAL_FILE_CONFLICT',
          `${name} exists with other bytes than this finalize of ${windowLabel(this.w)} produced`,
        );
      }
    }
    this.files.push({
      path: name,
      late: this.late,
      records: writer.records,
      bytes: byteLengthOf(data),
      sha256: digest,
      minGatewayTs: this.minTs,
      maxGatewayTs: this.maxTs,
    });
    this.writer = undefined;
    this.drainAt = DRAIN_BYTES;
    this.index++;
    this.minTs = Infinity;
    this.maxTs = -Infinity;
    await this.ctx.onStep?.('part-written', unpublished);
  }
}

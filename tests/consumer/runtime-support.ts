import { randomBytes, randomUUID } from 'node:crypto';
import { Defaults, type ManualClock, silentLogger } from '@hourglass/common';
import { SchemaRegistry, encodeRecords, type EventRecord } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import {
  type FinalizeContext,
  type InboundMessage,
  TypeRuntime,
  type TypeRuntimeOptions,
  createConsumerMetrics,
} from '@hourglass/consumer';
import { MINUTE, makeRecord } from './support';

/**
 * For the staging, finalize and closing suites: a type runtime on a given store, fed messages
 * directly (no Pub/Sub) with time from a ManualClock.
 */
export const registry = SchemaRegistry.load('schemas');
export const TYPE = 'track_played';
export const v1 = registry.get(TYPE).versions[0]!;
export const v2 = registry.get(TYPE).latest;
export const GRACE = 10_000;

export interface FakeMessageLog {
  acked: number;
  nacked: number;
}

export function message(log: FakeMessageLog, data: Buffer, attributes: Record<string, string>): InboundMessage {
  let settled = false;
  return {
    id: randomUUID(),
    data,
    attributes,
    ack: () => {
      if (settled) throw new Error('settled twice');
      settled = true;
      log.acked++;
    },
    nack: () => {
      if (settled) throw new Error('settled twice');
      settled = true;
      log.nacked++;
    },
  };
}

export function bundle(log: FakeMessageLog, records: EventRecord[], writer = v2): InboundMessage {
  const { data, attributes } = encodeRecords(writer, records, 'deflate');
  return message(log, data, attributes);
}

export function runtime(
  store: ObjectStore,
  clock: ManualClock,
  replicaId = 'r1',
  onStep?: FinalizeContext['onStep'],
  maxAckExtensionMs = 600_000,
  eventType = TYPE,
  overrides: Partial<TypeRuntimeOptions> = {},
) {
  return new TypeRuntime(
    {
      eventType,
      replicaId,
      incarnation: randomBytes(3).toString('hex'), // one per process start, as in consumer.ts
      windowMs: MINUTE,
      graceMs: GRACE,
      startAt: undefined,
      leaseTtlMs: 5_000,
      ackDeadlineMs: 10_000,
      maxAckExtensionMs,
      maxPublishDelayMs: 1_000,
      idleAfterMs: 2_000,
      stageMaxEvents: 40,
      stageMaxBytes: 1 << 20,
      stageMaxAgeMs: 1_000,
      blockBytes: 4096,
      finalFileBytes: 8 * 1024,
      stageDeflateLevel: 1, // the default stages uncompressed: cover the deflate path here
      finalDeflateLevel: Defaults.finalDeflateLevel,
      earlySegments: 3,
      dedupHorizonMs: Defaults.dedupHorizon,
      closer: true,
      ...overrides,
    },
    {
      store,
      registry,
      clock,
      logger: silentLogger,
      metrics: createConsumerMetrics(),
      ...(onStep ? { onFinalizeStep: onStep } : {}),
    },
  );
}

export function records(n: number, start: number, span: number, writer = v2): EventRecord[] {
  return Array.from({ length: n }, (_, i) => makeRecord(writer, randomUUID(), start + Math.floor((i * span) / n), i));
}

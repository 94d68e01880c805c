import { randomBytes, randomUUID } from 'node:crypto';
import { Defaults, type Duration, type ManualClock, silentLogger } from '@hourglass/common';
import { SchemaRegistry, encodeRecords, type EventRecord } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import {
  type ConsumerConfig,
  type FinalizeContext,
  type InboundMessage,
  TypeRuntime,
  consumerConfig,
  consumerParts,
  createConsumerMetrics,
  typeScope,
} from '@hourglass/consumer';
import { FinalizeQueue } from '@hourglass/consumer/close/finalize-queue';
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

/** The runtimes' settings: one-minute windows, 10 s grace, ttl 5 s, ack deadline 10 s, small files. */
export function testConfig(replicaId: string, overrides: Partial<ConsumerConfig> = {}): ConsumerConfig {
  return consumerConfig({
    replicaId,
    window: MINUTE as Duration,
    grace: GRACE as Duration,
    leaseTtl: 5_000 as Duration,
    ackDeadline: 10_000 as Duration,
    redeliveryAllowance: 0 as Duration, // leases: stale for the ack deadline alone
    maxAckExtension: 600_000 as Duration,
    maxPublishDelay: 1_000 as Duration,
    idleAfter: 2_000 as Duration,
    stageMaxEvents: 40,
    stageMaxBytes: 1 << 20,
    stageMaxAge: 1_000 as Duration,
    blockBytes: 4096,
    finalFileBytes: 8 * 1024,
    stageDeflateLevel: 1, // the default stages uncompressed: cover the deflate path here
    finalDeflateLevel: Defaults.finalDeflateLevel,
    earlySegments: 3,
    earlySegmentMinBytes: 0, // these windows are a few KB: segments of any size, so they are covered
    dedupHorizon: Defaults.dedupHorizon,
    closer: true,
    ...overrides,
  });
}

/** One finalize queue for every runtime a test builds, as a consumer shares one among its types. */
const finalizeQueue = new FinalizeQueue();

export function runtime(
  store: ObjectStore,
  clock: ManualClock,
  replicaId = 'r1',
  onStep?: FinalizeContext['onStep'],
  maxAckExtensionMs = 600_000,
  eventType = TYPE,
  overrides: Partial<ConsumerConfig> = {},
) {
  const config = testConfig(replicaId, { maxAckExtension: maxAckExtensionMs as Duration, ...overrides });
  const { stage, watermark, close } = consumerParts(config);
  // one incarnation per process start, as in consumer.ts
  const scope = typeScope(config, eventType, randomBytes(3).toString('hex'));
  return new TypeRuntime(
    { scope, stage, watermark, close },
    {
      store,
      registry,
      clock,
      logger: silentLogger,
      metrics: createConsumerMetrics(),
      ...(onStep ? { onFinalizeStep: onStep } : {}),
      queue: finalizeQueue,
    },
  );
}

export function records(n: number, start: number, span: number, writer = v2): EventRecord[] {
  return Array.from({ length: n }, (_, i) => makeRecord(writer, randomUUID(), start + Math.floor((i * span) / n), i));
}

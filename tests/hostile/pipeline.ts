import { provisionTopology } from '@hourglass/cli';
import { Defaults, ManualClock, seconds, silentLogger } from '@hourglass/common';
import { type RunningConsumer, consumerConfig, startConsumer } from '@hourglass/consumer';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import type { PubSub } from '@google-cloud/pubsub';
import type { Gateway } from '@hourglass/gateway';
import { startTestGateway } from '../gateway/support';
import {
  FAST_CONSUMER,
  MINUTE,
  auditType,
  decodeWithEmbeddedSchema,
  driveUntil,
  newPubSub,
  tempDir,
  uniquePrefix,
} from '../consumer/support';

/**
 * The consumer in process on the real emulator and a real directory, its time a ManualClock
 * (one-minute windows close in a few ticks): what the hostile suites publish, gateway or raw,
 * is read back from the final files of closed windows and from `_deadletter/`.
 */
export interface Pipeline {
  prefix: string;
  clock: ManualClock;
  store: ObjectStore;
  consumer: RunningConsumer;
  pubsub: PubSub;
  /** Messages every type has settled (acked, or dead-lettered and acked). */
  acked(): number;
  /** Drives ticks until `messages` are acked and nothing is held. */
  settle(messages: number): Promise<void>;
  /** Drives ticks until the consumer has read `events` events and dead-lettered `deadLettered` messages, and holds nothing. */
  receive(events: number, deadLettered?: number): Promise<void>;
  /** Advances the clock past `untilTs` and drives ticks until every window up to it closed. */
  closeThrough(untilTs: number): Promise<void>;
  stop(): Promise<void>;
}

export type GatewayPipeline = Pipeline & { gateway: Gateway };

/** A pipeline with the gateway in process in front of it (same prefix, same clock). */
export async function startPipelineWithGateway(types: readonly string[], start: number): Promise<GatewayPipeline> {
  const pipeline = await startPipeline(types, start);
  const gateway = await startTestGateway({ prefix: pipeline.prefix, clock: pipeline.clock });
  return {
    ...pipeline,
    gateway,
    async stop() {
      await gateway.close();
      await pipeline.stop();
    },
  };
}

export async function startPipeline(types: readonly string[], start: number): Promise<Pipeline> {
  const prefix = uniquePrefix();
  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: types, ackDeadline: seconds(10) });
  const store = new LocalDirectoryStore(tempDir('hostile'));
  const clock = new ManualClock(start);
  const config = consumerConfig({
    prefix,
    eventTypes: [...types],
    replicaId: 'hostile',
    host: '127.0.0.1',
    port: 0,
    ...FAST_CONSUMER,
  });
  const consumer = await startConsumer(config, { clock, store, logger: silentLogger, autoTick: false });
  const pubsub = newPubSub();
  const acked = () => consumer.status().reduce((n, s) => n + s.stats.acked, 0);
  const step = async (ms: number) => {
    clock.advance(ms);
    await consumer.tick();
  };
  return {
    prefix,
    clock,
    store,
    consumer,
    pubsub,
    acked,
    async settle(messages) {
      await driveUntil(
        () => acked() >= messages && consumer.status().every((s) => s.heldEvents === 0),
        () => step(100),
      );
    },
    async receive(events, deadLettered = 0) {
      const sum = (of: (s: ReturnType<RunningConsumer['status']>[number]) => number) =>
        consumer.status().reduce((n, s) => n + of(s), 0);
      await driveUntil(
        () =>
          sum((s) => s.stats.events) >= events &&
          sum((s) => s.stats.deadLettered) >= deadLettered &&
          sum((s) => s.heldEvents) === 0,
        () => step(100),
        { timeoutMs: 60_000 },
      );
    },
    async closeThrough(untilTs) {
      const closedTo = (type: string) =>
        Math.max(
          -Infinity,
          ...consumer
            .closedWindows()
            .filter((c) => c.eventType === type)
            .map((c) => c.window.end),
        );
      if (clock.now() < untilTs) clock.set(untilTs);
      await driveUntil(
        () => types.every((t) => closedTo(t) >= untilTs - (untilTs % MINUTE)),
        () => step(500),
      );
    },
    async stop() {
      await consumer.stop();
      await pubsub.close();
    },
  };
}

/** Starts a pipeline with its gateway before the file's tests and stops it after; the getter is for inside tests. */
export function pipelineWithGatewayFor(types: readonly string[], start: number): () => GatewayPipeline {
  let pipeline: GatewayPipeline | undefined;
  beforeAll(async () => {
    pipeline = await startPipelineWithGateway(types, start);
  });
  afterAll(() => pipeline?.stop());
  return () => pipeline!;
}

/** Every record of the type's closed windows, decoded from the final files with their own schema. */
export async function storedRecords(store: ObjectStore, eventType: string): Promise<Record<string, unknown>[]> {
  const audit = await auditType(store, eventType, MINUTE);
  if (audit.problems.length > 0) throw new Error(audit.problems.join('\n'));
  const records: Record<string, unknown>[] = [];
  for (const w of audit.windows) {
    for (const f of w.manifest.files) {
      records.push(
        ...((await decodeWithEmbeddedSchema((await store.get(f.path))!)).records as Record<string, unknown>[]),
      );
    }
  }
  return records;
}

/** The dead letters of a type: each one's message id and reason code. */
export async function deadLetters(
  store: ObjectStore,
  eventType: string,
): Promise<{ attributes: Record<string, string>; code: string; message: string }[]> {
  const out = [];
  for (const o of await store.list(`_deadletter/${eventType}/`)) {
    const body = JSON.parse((await store.get(o.name))!.toString('utf8')) as {
      attributes: Record<string, string>;
      reason: { code: string; message: string };
    };
    out.push({ attributes: body.attributes, code: body.reason.code, message: body.reason.message });
  }
  return out;
}

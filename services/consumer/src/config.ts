import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  EVERY_REPLICA,
  REPLICA_ID_PATTERN,
  type ReplicasPerType,
  checkWindowSize,
  parseReplicasPerType,
  sanitizeReplicaId,
} from '@hourglass/bucket-format';
import {
  Defaults,
  HourglassError,
  PREFIX_PATTERN,
  checkPrefix,
  loadConfig,
  parseDuration,
  setting,
  type ConfigOf,
  type Duration,
  type Setting,
} from '@hourglass/common';
import type { FinalizeFormat } from './finalize/context.js';

/** Per-type grace overrides: "track_played=10m,page_viewed=30s". */
function graceOverrides(env: string): Setting<Record<string, Duration>> {
  return {
    env,
    default: {},
    expect: 'a comma-separated list of <event_type>=<duration>, e.g. track_played=10m',
    parse: (raw) => {
      const out: Record<string, Duration> = {};
      for (const item of raw.split(',').map((s) => s.trim())) {
        if (!item) continue;
        const [type, value] = item.split('=');
        const d = value === undefined ? undefined : parseDuration(value);
        if (!type || d === undefined) return undefined;
        out[type.trim()] = d;
      }
      return out;
    },
  };
}

function replicasPerTypeSetting(env: string): Setting<ReplicasPerType> {
  return {
    env,
    default: EVERY_REPLICA,
    expect:
      '"all" or a whole number of replicas, then optional <event_type>=<n|all> exceptions, e.g. 2,track_played=all',
    parse: parseReplicasPerType,
  };
}

/** An ISO-8601 instant, e.g. 2026-01-01T00:00:00Z, as epoch ms. */
function optionalInstant(env: string): Setting<number | undefined> {
  return {
    env,
    default: undefined,
    expect: 'an ISO-8601 instant such as 2026-01-01T00:00:00Z',
    parse: (raw) => {
      const t = Date.parse(raw);
      return Number.isNaN(t) ? undefined : t;
    },
  };
}

/** `<hostname>-<pid>-<8 random hex digits>`: readable in logs, unique per process start. */
export function defaultReplicaId(): string {
  return sanitizeReplicaId(`${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Every consumer setting: environment variable, parser, default (docs/operations.md lists them). */
export const consumerSettings = {
  /** A directory path (or file:// URL) or a gs://bucket/prefix URL. */
  store: setting.string('HOURGLASS_STORE', Defaults.storeRoot),
  schemasDir: setting.string('HOURGLASS_SCHEMAS_DIR', Defaults.schemasDir),
  projectId: setting.string('HOURGLASS_PROJECT_ID', Defaults.projectId),
  prefix: setting.string('HOURGLASS_PREFIX', Defaults.prefix, PREFIX_PATTERN),
  /** Subset of event types this process serves; empty = every type in the registry. */
  eventTypes: setting.list('HOURGLASS_EVENT_TYPES', []),
  /**
   * How many live replicas pull each of those types: `all` (every replica, the default), or k with
   * per-type exceptions (`2,track_played=all`). Same value on every replica (type-assignment.ts).
   */
  replicasPerType: replicasPerTypeSetting('HOURGLASS_REPLICAS_PER_TYPE'),
  /**
   * Unique per process start by default: in containers every instance may be PID 1 with the same
   * hostname (Cloud Run's is `localhost`), so host and pid alone name every replica alike.
   */
  replicaId: setting.string('HOURGLASS_REPLICA_ID', defaultReplicaId(), REPLICA_ID_PATTERN),
  host: setting.string('HOURGLASS_CONSUMER_HOST', Defaults.gatewayHost),
  port: setting.int('HOURGLASS_CONSUMER_PORT', Defaults.consumerPort, 0, 65535),
  window: setting.duration('HOURGLASS_WINDOW', Defaults.window, 60_000),
  grace: setting.duration('HOURGLASS_GRACE', Defaults.grace),
  graceByType: graceOverrides('HOURGLASS_GRACE_BY_TYPE'),
  /** Windows before this instant are never closed empty; default: from the first staged window on. */
  startAt: optionalInstant('HOURGLASS_START'),
  stageMaxEvents: setting.int('HOURGLASS_STAGE_MAX_EVENTS', Defaults.stageMaxEvents, 1, 10_000_000),
  stageMaxBytes: setting.bytes('HOURGLASS_STAGE_MAX_BYTES', Defaults.stageMaxBytes, 1024),
  stageMaxAge: setting.duration('HOURGLASS_STAGE_MAX_AGE', Defaults.stageMaxAge, 1),
  /** Process-wide: shared by every subscription the process reads (unary pull; split evenly when streaming). */
  flowMaxMessages: setting.int('HOURGLASS_FLOW_MAX_MESSAGES', Defaults.flowMaxMessages, 1, 1_000_000),
  flowMaxBytes: setting.bytes('HOURGLASS_FLOW_MAX_BYTES', Defaults.flowMaxBytes, 1024),
  /**
   * How subscriptions are read: `unary` Pull RPCs (default) or `streaming` pull. On the emulator a
   * SIGKILLed streaming subscriber's messages are never redelivered, so the kill tests — and every
   * other test — run unary pull (see source/unary-pull.ts).
   */
  pull: setting.oneOf('HOURGLASS_PULL', Defaults.pullMode, ['unary', 'streaming']),
  /**
   * Unary pull only: `on` long-polls (a Pull waits for messages), `off` polls with returnImmediately
   * and a 20–250 ms backoff, `auto` = off on the emulator (PUBSUB_EMULATOR_HOST), on otherwise. On the
   * emulator a Pull left pending by a killed process keeps taking redelivered messages.
   */
  longPoll: setting.oneOf('HOURGLASS_LONG_POLL', 'auto', ['auto', 'on', 'off']),
  /** The gateway's publish timeout: the idle watermark is now minus this. Must match the gateway. */
  maxPublishDelay: setting.duration('HOURGLASS_PUBLISH_TIMEOUT', Defaults.publishTimeout),
  idleAfter: setting.duration('HOURGLASS_IDLE_AFTER', Defaults.idleAfter, 1),
  leaseTtl: setting.duration('HOURGLASS_LEASE_TTL', Defaults.leaseTtl, 1),
  /** The subscriptions' ack deadline (10 s to 600 s, Pub/Sub's range); the client keeps every held message's deadline at this. */
  ackDeadline: setting.duration('HOURGLASS_ACK_DEADLINE', Defaults.ackDeadline, 10_000),
  maxAckExtension: setting.duration('HOURGLASS_MAX_ACK_EXTENSION', Defaults.maxAckExtension, 10_000),
  /** Added to the ack deadline in leases: how late an expired message may come back. */
  redeliveryAllowance: setting.duration('HOURGLASS_REDELIVERY_ALLOWANCE', Defaults.redeliveryAllowance),
  tick: setting.duration('HOURGLASS_TICK', Defaults.tick, 1),
  finalFileBytes: setting.bytes('HOURGLASS_FINAL_FILE_BYTES', Defaults.finalFileBytes, 1024),
  blockBytes: setting.bytes('HOURGLASS_AVRO_BLOCK_BYTES', Defaults.avroBlockBytes, 1024),
  /** 0 (the default) stages uncompressed; 1–9 deflate staged files. */
  stageDeflateLevel: setting.int('HOURGLASS_STAGE_DEFLATE_LEVEL', Defaults.stageDeflateLevel, 0, 9),
  /** Deflate level of final files (0 writes the null codec). */
  finalDeflateLevel: setting.int('HOURGLASS_FINAL_DEFLATE_LEVEL', Defaults.finalDeflateLevel, 0, 9),
  /** Segments in which a window's on-time files are finalized before it closes (0: none). */
  earlySegments: setting.int('HOURGLASS_EARLY_SEGMENTS', Defaults.earlySegments, 0, 60),
  /** Least staged bytes an early segment before the window's end takes (fewer wait for the next). */
  earlySegmentMinBytes: setting.bytes('HOURGLASS_EARLY_SEGMENT_MIN_BYTES', Defaults.earlySegmentMinBytes, 0),
  /** Receive lag above which finalize gives way to staging (0: never; close/finalize-pacer.ts). */
  finalizeYieldLag: setting.duration('HOURGLASS_FINALIZE_YIELD_LAG', Defaults.finalizeYieldLag),
  /** Percent of the time finalize keeps while it gives way. */
  finalizeYieldShare: setting.int('HOURGLASS_FINALIZE_YIELD_SHARE', Defaults.finalizeYieldSharePercent, 1, 100),
  /** Small finalize jobs run at once (close/finalize-queue.ts); 1: one job at a time. */
  finalizeConcurrency: setting.int('HOURGLASS_FINALIZE_CONCURRENCY', Defaults.finalizeConcurrency, 1, 64),
  /** Staged bytes per finalize shard: bounds finalize memory whatever the window's size. */
  finalizeShardBytes: setting.bytes('HOURGLASS_FINALIZE_SHARD_BYTES', Defaults.finalizeShardBytes, 1024 * 1024),
  /** Where a sharded finalize keeps its shards: local disk, or none (each shard rereads staging). */
  finalizeSpill: setting.oneOf('HOURGLASS_FINALIZE_SPILL', Defaults.finalizeSpill, ['local', 'none']),
  /** Sharded windows become shard jobs any replica runs (on), or the closer writes every shard (off). */
  finalizeShardJobs: setting.bool('HOURGLASS_FINALIZE_SHARD_JOBS', Defaults.finalizeShardJobs),
  /** Copies of an event this far apart in gateway_ts are deduplicated across windows too (0: off). */
  dedupHorizon: setting.duration('HOURGLASS_DEDUP_HORIZON', Defaults.dedupHorizon),
  /** false: this replica stages and publishes its lease but never finalizes. */
  closer: setting.bool('HOURGLASS_CLOSER', true),
  /** Publish a notice per closed window to `<prefix>-closed` (docs/operations.md). */
  closedNotices: setting.bool('HOURGLASS_CLOSED_NOTICES', Defaults.closedNotices),
};

/** The flat settings, one field per environment variable (tests and `hourglass up` build it in code). */
export type ConsumerConfig = ConfigOf<typeof consumerSettings>;

export function loadConsumerConfig(env: Record<string, string | undefined> = process.env): ConsumerConfig {
  const config: ConsumerConfig = loadConfig(consumerSettings, env);
  checkConsumerConfig(config);
  return config;
}

/** Cross-setting checks; also used for configs built in code (tests, `hourglass up`). */
export function checkConsumerConfig(config: ConsumerConfig): void {
  const fail = (path: string, message: string): never => {
    throw new HourglassError('CONFIG_INVALID', `${path}: ${message}`, { path });
  };
  const prefixProblem = checkPrefix(config.prefix);
  if (prefixProblem) fail('HOURGLASS_PREFIX', prefixProblem);
  const windowProblem = checkWindowSize(config.window);
  if (windowProblem) fail('HOURGLASS_WINDOW', windowProblem);
  if (!REPLICA_ID_PATTERN.test(config.replicaId))
    fail('HOURGLASS_REPLICA_ID', `must match ${REPLICA_ID_PATTERN.source}`);
  if (config.ackDeadline > Defaults.ackDeadlineMax) {
    fail('HOURGLASS_ACK_DEADLINE', `must be at most ${Defaults.ackDeadlineMax / 1000}s (the Pub/Sub maximum)`);
  }
  if (config.maxAckExtension < config.ackDeadline) {
    fail('HOURGLASS_MAX_ACK_EXTENSION', 'must be at least HOURGLASS_ACK_DEADLINE');
  }
  if (config.leaseTtl < config.tick * 2) {
    fail(
      'HOURGLASS_LEASE_TTL',
      `must be at least two ticks (${config.tick * 2}ms) so a healthy replica never looks dead`,
    );
  }
}

/** Config with every default, for tests and in-process use; `overrides` wins. */
export function consumerConfig(overrides: Partial<ConsumerConfig> = {}): ConsumerConfig {
  const config = { ...loadConfig(consumerSettings, {}), ...overrides };
  checkConsumerConfig(config);
  return config;
}

export function graceFor(config: ConsumerConfig, eventType: string): Duration {
  return config.graceByType[eventType] ?? config.grace;
}

/** Who and what one type's runtime serves: the same for its stager, its leases and its closer. */
export interface TypeScope {
  eventType: string;
  replicaId: string;
  /** Random per process start: tells this process's leases and staged files from an earlier run's. */
  incarnation: string;
  windowMs: number;
  /** HOURGLASS_GRACE_BY_TYPE's value for the type, else HOURGLASS_GRACE. */
  graceMs: number;
}

/** Reading the subscriptions (source/). */
export interface SourceConfig {
  pull: 'unary' | 'streaming';
  /** HOURGLASS_LONG_POLL resolved: `auto` is off on the emulator (PUBSUB_EMULATOR_HOST), on elsewhere. */
  longPoll: boolean;
  /** The subscriptions' ack deadline, the plain one: every held message's deadline is kept at it. */
  ackDeadlineMs: number;
  /** The ack deadline plus the redelivery allowance: how long a failed Pull's lost messages may take to come back. */
  redeliveryBoundMs: number;
  /** After this a held message is no longer extended: Pub/Sub redelivers it. */
  maxExtensionMs: number;
  /** Process-wide flow control: what all subscriptions hold together. */
  flowMaxMessages: number;
  flowMaxBytes: number;
  /** Messages asked for per unary Pull. */
  pullBatch: number;
  /** How long one unary Pull waits for messages. */
  pullWaitMs: number;
  /** Streaming: liveness fails when the stream has been closed this long. */
  deadAfterMs: number;
}

/** Part files and their writes, per type (stage/). */
export interface StageConfig {
  maxEvents: number;
  maxBytes: number;
  maxAgeMs: number;
  blockBytes: number;
  /** 0: staged files use Avro's null codec. */
  deflateLevel: number;
  /** Tries of a failing write once the stager drains (shutdown); before that a write retries for as long as it takes. */
  writeAttempts: number;
  /** The Pub/Sub client stops extending a held message after this (HOURGLASS_MAX_ACK_EXTENSION). */
  maxHoldMs: number;
}

/** The replica's watermark and its leases (watermark/). */
export interface WatermarkConfig {
  idleAfterMs: number;
  /** The gateway's publish timeout: the idle watermark is now minus this. */
  maxPublishDelayMs: number;
  leaseTtlMs: number;
  /**
   * How long after a lease's last renewal its replica's messages may still come back: the ack
   * deadline plus the redelivery allowance. Leases store it under the name `ackDeadlineMs`.
   */
  redeliveryBoundMs: number;
}

/** Closing windows and the final files' format (close/, finalize/). */
export interface CloseConfig {
  /** Windows before this instant are never closed empty. */
  startAt: number | undefined;
  /** false: this replica stages and publishes its lease but never finalizes. */
  closer: boolean;
  /** Segments in which a window's on-time staged files are finalized before it closes (0: none). */
  earlySegments: number;
  /** Least staged bytes an early segment before the window's end takes (0: any). */
  earlySegmentMinBytes: number;
  /** Recorded in every plan as is (plans are stored JSON: the key order is part of the bytes). */
  format: FinalizeFormat;
  /** Staged bytes per finalize shard (finalize/sharded-close.ts); a plan records the shard count it gave. */
  shardBytes: number;
  /** local: shards spilled to TMPDIR (sharded-close.ts); none: each shard rereads staging (sharded-reread.ts). */
  spill: 'local' | 'none';
  /** Sharded windows as shard jobs any replica may run (finalize/shard-jobs.ts). */
  shardJobs: boolean;
}

/** The settings, derived once and handed to each mechanism unchanged. */
export interface ConsumerParts {
  source: SourceConfig;
  stage: StageConfig;
  watermark: WatermarkConfig;
  close: CloseConfig;
}

export function consumerParts(
  config: ConsumerConfig,
  env: Record<string, string | undefined> = process.env,
): ConsumerParts {
  return {
    source: {
      pull: config.pull,
      longPoll: config.longPoll === 'on' || (config.longPoll === 'auto' && !env.PUBSUB_EMULATOR_HOST),
      ackDeadlineMs: config.ackDeadline,
      redeliveryBoundMs: config.ackDeadline + config.redeliveryAllowance,
      maxExtensionMs: config.maxAckExtension,
      flowMaxMessages: config.flowMaxMessages,
      flowMaxBytes: config.flowMaxBytes,
      pullBatch: Defaults.pullBatchMessages,
      pullWaitMs: Defaults.pullWait,
      deadAfterMs: Defaults.pullDeadAfter,
    },
    stage: {
      maxEvents: config.stageMaxEvents,
      maxBytes: config.stageMaxBytes,
      maxAgeMs: config.stageMaxAge,
      blockBytes: config.blockBytes,
      deflateLevel: config.stageDeflateLevel,
      writeAttempts: Defaults.stageWriteAttempts,
      maxHoldMs: config.maxAckExtension,
    },
    watermark: {
      idleAfterMs: config.idleAfter,
      maxPublishDelayMs: config.maxPublishDelay,
      leaseTtlMs: config.leaseTtl,
      redeliveryBoundMs: config.ackDeadline + config.redeliveryAllowance,
    },
    close: {
      startAt: config.startAt,
      closer: config.closer,
      earlySegments: config.earlySegments,
      earlySegmentMinBytes: config.earlySegmentMinBytes,
      format: {
        finalFileBytes: config.finalFileBytes,
        blockBytes: config.blockBytes,
        deflateLevel: config.finalDeflateLevel,
        dedupHorizonMs: config.dedupHorizon,
      },
      shardBytes: config.finalizeShardBytes,
      spill: config.finalizeSpill,
      shardJobs: config.finalizeShardJobs,
    },
  };
}

export function typeScope(config: ConsumerConfig, eventType: string, incarnation: string): TypeScope {
  return {
    eventType,
    replicaId: config.replicaId,
    incarnation,
    windowMs: config.window,
    graceMs: graceFor(config, eventType),
  };
}

import { randomBytes } from 'node:crypto';
import { type ClientConfig, PubSub, v1 } from '@google-cloud/pubsub';
import { type Clock, Defaults, HourglassError, type Logger, installTelemetry, resourceNames } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import { type ConsumerConfig, checkConsumerConfig, graceFor } from './config.js';
import type { FinalizeStep } from './finalize.js';
import { startHttp, type HttpServer } from './http.js';
import { FlowBudget } from './flow-budget.js';
import { createConsumerMetrics } from './metrics.js';
import type { InboundMessage, StagerStats } from './stager.js';
import { StreamingSource, type StreamingSourceOptions, streamingOptions } from './streaming-source.js';
import { TypeRuntime, type WindowClosed } from './type-runtime.js';
import { closedWindowNotifier } from './notify/start.js';
import { UnaryPullSource } from './unary-pull.js';

/**
 * The consumer process: one subscription per served event type (all replicas share it),
 * staging, watermark leases and window closing for each type, and /healthz /readyz /metrics.
 */
export interface ConsumerDeps {
  clock: Clock;
  store: ObjectStore;
  logger: Logger;
  /** Default: SchemaRegistry.load(config.schemasDir). */
  registry?: SchemaRegistry;
  /** false: no timer; the caller drives `tick()` (tests with a ManualClock). Default true. */
  autoTick?: boolean;
  /** false: no HTTP server. Default true. */
  http?: boolean;
  /** Test hook after each finalize step (crash tests). */
  onFinalizeStep?: (step: FinalizeStep, detail: string) => void | Promise<void>;
}

export interface TypeStatus {
  eventType: string;
  subscription: string;
  watermark: { local: number; published: number | undefined; global: number | undefined };
  heldEvents: number;
  stats: StagerStats;
  windowsClosed: number;
}

export interface RunningConsumer {
  readonly replicaId: string;
  /** The HTTP port (0 when http is off). */
  readonly port: number;
  eventTypes(): string[];
  status(): TypeStatus[];
  /** Windows this replica closed, per type, in order. */
  closedWindows(): WindowClosed[];
  /** One tick for every type: flush aged part files, advance watermarks, renew leases, close windows. */
  tick(): Promise<void>;
  isReady(): boolean;
  /** Why the process is not ready (empty when ready): subscriptions not readable, staging failing, leases not live. */
  readiness(): string[];
  /** Why the process needs a restart (empty when live): a pull loop stopped or stuck, the tick loop stalled. */
  liveness(): string[];
  /** Graceful stop: nack new messages, stage and ack what is held, write leases, close. */
  stop(): Promise<void>;
}

export async function startConsumer(config: ConsumerConfig, deps: ConsumerDeps): Promise<RunningConsumer> {
  checkConsumerConfig(config);
  const telemetry = installTelemetry();
  const metrics = createConsumerMetrics();
  const log = deps.logger.child({ replicaId: config.replicaId });
  const registry = deps.registry ?? SchemaRegistry.load(config.schemasDir);
  const eventTypes = config.eventTypes.length > 0 ? config.eventTypes : registry.eventTypes();
  for (const t of eventTypes) {
    if (!registry.has(t)) {
      throw new HourglassError('CONFIG_INVALID', `HOURGLASS_EVENT_TYPES names unknown type "${t}"`, {
        path: 'HOURGLASS_EVENT_TYPES',
      });
    }
  }
  const notices = config.closedNotices ? closedWindowNotifier(config, deps, log) : undefined;
  const incarnation = `${deps.clock.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const runtimes = eventTypes.map(
    (eventType) =>
      new TypeRuntime(
        {
          eventType,
          replicaId: config.replicaId,
          incarnation,
          windowMs: config.window,
          graceMs: graceFor(config, eventType),
          startAt: config.startAt,
          leaseTtlMs: config.leaseTtl,
          // how long after its last renewal a dead replica's messages may still come back
          ackDeadlineMs: config.ackDeadline + config.redeliveryAllowance,
          maxAckExtensionMs: config.maxAckExtension,
          maxPublishDelayMs: config.maxPublishDelay,
          idleAfterMs: config.idleAfter,
          stageMaxEvents: config.stageMaxEvents,
          stageMaxBytes: config.stageMaxBytes,
          stageMaxAgeMs: config.stageMaxAge,
          blockBytes: config.blockBytes,
          finalFileBytes: config.finalFileBytes,
          stageDeflateLevel: config.stageDeflateLevel,
          finalDeflateLevel: config.finalDeflateLevel,
          earlySegments: config.earlySegments,
          dedupHorizonMs: config.dedupHorizon,
          closer: config.closer,
        },
        {
          store: deps.store,
          registry,
          clock: deps.clock,
          logger: log,
          metrics,
          ...(deps.onFinalizeStep ? { onFinalizeStep: deps.onFinalizeStep } : {}),
          ...(notices ? { notices } : {}),
        },
      ),
  );
  for (const rt of runtimes) await rt.start();

  metrics.watermarkLag.addCallback((result) => {
    const now = deps.clock.now();
    for (const rt of runtimes) {
      const g = rt.watermarks().global;
      if (g !== undefined && Number.isFinite(g)) result.observe((now - g) / 1000, { event_type: rt.eventType });
    }
  });
  metrics.heldEvents.addCallback((result) => {
    for (const rt of runtimes) result.observe(rt.stager.heldEvents(), { event_type: rt.eventType });
  });

  // Reconnect quickly after Pub/Sub comes back; grpc's default backoff grows to 2 minutes.
  const clientConfig: ClientConfig & Record<string, unknown> = {
    projectId: config.projectId,
    'grpc.max_reconnect_backoff_ms': 2000,
  };
  const pubsub = new PubSub(clientConfig);
  // One flow-control budget for every subscription of the process (#13.3).
  const budget = new FlowBudget(config.flowMaxMessages, config.flowMaxBytes, runtimes.length);
  const subscriptions: { rt: TypeRuntime; name: string; source: MessageSource }[] = [];
  for (const rt of runtimes) {
    const name = resourceNames(config.prefix, rt.eventType).subscription;
    // unary: a client (gRPC channel) per subscription, closed with its source
    const source: MessageSource =
      config.pull === 'unary'
        ? unarySource(await subscriberClientFor(pubsub), pubsub.subscription(name).name, config, log, budget)
        : streamingSource(pubsub, name, streamingShare(config, runtimes.length), log.child({ subscription: name }));
    // Not idle before the first Pull answers, nor while Pulls fail (an empty or failed Pull is
    // no proof that nothing waits); no Pull while staging writes fail (back pressure).
    rt.watermark.setSourceHealthy(false, deps.clock.now());
    source.onHealth((healthy) => rt.watermark.setSourceHealthy(healthy, deps.clock.now()));
    rt.stager.watchStoreHealth((healthy) => (healthy ? source.resume() : source.pause('staging writes failing')));
    source.start((m) => rt.stager.handle(m));
    subscriptions.push({ rt, name, source });
  }

  let ticking: Promise<void> | undefined;
  let lastTickDone = deps.clock.now();
  let lastProgressLog = 0;
  const tick = (): Promise<void> => {
    const now = deps.clock.now();
    if (now - lastProgressLog >= PROGRESS_LOG_INTERVAL) {
      lastProgressLog = now;
      log.debug({ status: status() }, 'progress');
    }
    if (!ticking) {
      ticking = Promise.all(
        runtimes.map(async (rt) => {
          await rt.tick();
          if (!stopping) void rt.closeWindows();
        }),
      )
        .then(() => undefined)
        .finally(() => {
          ticking = undefined;
          lastTickDone = deps.clock.now();
        });
    }
    return ticking;
  };
  let stopping = false;
  // A timer that fires a tick late means the process was frozen or blocked: what a Pull answered
  // meanwhile is still unread, so no type may count as idle yet (see ReplicaWatermark.resumed).
  let lastTimerAt = performance.now();
  const onTimer = (): void => {
    const awake = performance.now();
    if (awake - lastTimerAt > 2 * config.tick) for (const rt of runtimes) rt.watermark.resumed(deps.clock.now());
    lastTimerAt = awake;
    void tick();
  };
  const timer = deps.autoTick === false ? undefined : setInterval(onTimer, config.tick);
  timer?.unref();
  // Part files flush on their own, finer timer: tied to the tick, a file would wait up to
  // stageMaxAge + tick before its write starts (and its messages before their ack).
  const flushTimer =
    deps.autoTick === false
      ? undefined
      : setInterval(
          () => {
            const now = deps.clock.now();
            for (const rt of runtimes) rt.stager.flushAged(now);
          },
          Math.max(FLUSH_CHECK_MIN, Math.min(config.tick, config.stageMaxAge / 4)),
        );
  flushTimer?.unref();

  const status = (): TypeStatus[] =>
    subscriptions.map(({ rt, name }) => ({
      eventType: rt.eventType,
      subscription: name,
      watermark: rt.watermarks(),
      heldEvents: rt.stager.heldEvents(),
      stats: { ...rt.stager.stats },
      windowsClosed: rt.closed.length,
    }));

  const readiness = (): string[] => {
    const reasons = stopping ? ['stopping'] : [];
    for (const { rt, source } of subscriptions) {
      const problem = source.problem();
      if (problem) reasons.push(`${rt.eventType}: ${problem}`);
      if (!rt.stager.storeHealthy) reasons.push(`${rt.eventType}: staging writes failing`);
      const lease = rt.leaseStateNow();
      if (lease !== 'live') reasons.push(`${rt.eventType}: lease ${lease ?? 'not written yet'}`);
    }
    return reasons;
  };
  const isReady = (): boolean => readiness().length === 0;
  // Outages of the store or Pub/Sub are not here (a restart would not help): only what one would.
  const stallAfter = Math.max(Defaults.tickStallAfter, 10 * config.tick);
  const liveness = (): string[] => {
    const reasons: string[] = [];
    for (const { rt, source } of subscriptions) {
      const problem = source.liveness();
      if (problem) reasons.push(`${rt.eventType}: ${problem}`);
    }
    const sinceTick = deps.clock.now() - lastTickDone;
    if (!stopping && sinceTick > stallAfter) {
      reasons.push(`tick loop stalled: no tick completed for ${Math.round(sinceTick / 1000)} s`);
    }
    return reasons;
  };

  let http: HttpServer | undefined;
  if (deps.http !== false) {
    http = await startHttp({ host: config.host, port: config.port, telemetry, readiness, liveness, logger: log });
  }
  log.info(
    { eventTypes, window: config.window, store: deps.store.url, port: http?.port ?? 0, incarnation },
    'consumer started',
  );

  return {
    replicaId: config.replicaId,
    port: http?.port ?? 0,
    eventTypes: () => [...eventTypes],
    status,
    closedWindows: () => runtimes.flatMap((rt) => rt.closed),
    tick: async () => {
      await tick();
      await Promise.all(runtimes.map((rt) => rt.closeWindows()));
    },
    isReady,
    readiness,
    liveness,
    stop: async () => {
      if (stopping) return;
      stopping = true;
      if (timer) clearInterval(timer);
      if (flushTimer) clearInterval(flushTimer);
      await ticking;
      // Stage everything held and ack it before closing the streams (close nacks the rest).
      await Promise.all(runtimes.map((rt) => rt.stager.drain()));
      await Promise.all(subscriptions.map(({ source }) => source.close()));
      await Promise.all(runtimes.map((rt) => rt.stop()));
      await notices?.stop();
      await pubsub.close();
      await http?.close();
      log.info(
        { status: subscriptions.map(({ rt }) => ({ type: rt.eventType, ...rt.stager.stats })) },
        'consumer stopped',
      );
    },
  };
}

/** What consumer.ts needs of a subscription reader, whichever pull mode. */
interface MessageSource {
  start(handle: (m: InboundMessage) => void): void;
  /** Stops reading; held messages are released (nacked). */
  close(): Promise<void>;
  /** Called when the subscription becomes readable (a Pull answered) or stops being so. */
  onHealth(listener: (healthy: boolean) => void): void;
  /** Back pressure: no new messages until resume() (held ones keep their leases). */
  pause(reason: string): void;
  resume(): void;
  /** Why the subscription cannot be read now (the replica is not ready), or undefined. */
  problem(): string | undefined;
  /** Why only a restart would help (the replica is not live), or undefined. */
  liveness(): string | undefined;
}

/** The generated client with the same endpoint and credentials as `pubsub` (emulator included). */
export async function subscriberClientFor(pubsub: PubSub): Promise<v1.SubscriberClient> {
  const { port, ...rest } = await pubsub.getClientConfig();
  return new v1.SubscriberClient({ ...rest, ...(port !== undefined ? { port: Number(port) } : {}) });
}

function unarySource(
  client: v1.SubscriberClient,
  subscription: string,
  config: ConsumerConfig,
  log: Logger,
  budget: FlowBudget,
): MessageSource {
  return new UnaryPullSource(
    client,
    {
      subscription,
      budget,
      ackDeadlineMs: config.ackDeadline,
      maxExtensionMs: config.maxAckExtension,
      pullBatch: Defaults.pullBatchMessages,
      pullWaitMs: Defaults.pullWait,
      longPoll: config.longPoll === 'on' || (config.longPoll === 'auto' && !process.env.PUBSUB_EMULATOR_HOST),
    },
    log.child({ subscription }),
  );
}

function streamingSource(pubsub: PubSub, name: string, options: StreamingSourceOptions, log: Logger): MessageSource {
  return new StreamingSource(pubsub.subscription(name, streamingOptions(options)), options, log);
}

/**
 * Streaming pull: the SDK's flow control is per subscription, so the process budget is split
 * evenly between the subscriptions (a bound, not shared as in unary mode).
 */
function streamingShare(config: ConsumerConfig, subscriptions: number): StreamingSourceOptions {
  return {
    deadAfterMs: Defaults.pullDeadAfter,
    maxMessages: Math.max(1, Math.floor(config.flowMaxMessages / subscriptions)),
    maxBytes: Math.max(1024, Math.floor(config.flowMaxBytes / subscriptions)),
    ackDeadlineMs: config.ackDeadline,
    maxExtensionMs: config.maxAckExtension,
  };
}

/** The finest part-file age check: below this the checks cost more than they save. */
const FLUSH_CHECK_MIN = 50;

/** How often the debug log shows every type's counters and watermarks. */
const PROGRESS_LOG_INTERVAL = 2_000;

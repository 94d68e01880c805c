import { randomBytes } from 'node:crypto';
import { Duration, type Message, PubSub, type Subscription, type SubscriberOptions, v1 } from '@google-cloud/pubsub';
import { type Clock, Defaults, HourglassError, type Logger, installTelemetry, resourceNames } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import { type ConsumerConfig, checkConsumerConfig, graceFor } from './config.js';
import type { FinalizeStep } from './finalize.js';
import { startHttp, type HttpServer } from './http.js';
import { createConsumerMetrics } from './metrics.js';
import type { InboundMessage, StagerStats } from './stager.js';
import { TypeRuntime, type WindowClosed } from './type-runtime.js';
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

  const pubsub = new PubSub({ projectId: config.projectId });
  const subscriptions: { rt: TypeRuntime; name: string; source: MessageSource }[] = [];
  for (const rt of runtimes) {
    const name = resourceNames(config.prefix, rt.eventType).subscription;
    // unary: a client (gRPC channel) per subscription, closed with its source
    const source =
      config.pull === 'unary'
        ? unarySource(await subscriberClientFor(pubsub), pubsub.subscription(name).name, config, log)
        : streamingSource(pubsub.subscription(name, streamingOptions(config)), log.child({ subscription: name }));
    source.start((m) => rt.stager.handle(m));
    subscriptions.push({ rt, name, source });
  }

  let ticking: Promise<void> | undefined;
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

  const isReady = (): boolean =>
    !stopping &&
    subscriptions.every(({ source }) => source.error === undefined) &&
    runtimes.every((rt) => rt.leaseStateNow() === 'live');

  let http: HttpServer | undefined;
  if (deps.http !== false) {
    http = await startHttp({ host: config.host, port: config.port, telemetry, isReady, logger: log });
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
  /** Set while the subscription cannot be read: the replica is not ready. */
  readonly error: Error | undefined;
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
): MessageSource {
  return new UnaryPullSource(
    client,
    {
      subscription,
      maxMessages: config.flowMaxMessages,
      maxBytes: config.flowMaxBytes,
      ackDeadlineMs: config.ackDeadline,
      maxExtensionMs: config.maxAckExtension,
      pullBatch: Defaults.pullBatchMessages,
      pullWaitMs: Defaults.pullWait,
      longPoll: config.longPoll === 'on' || (config.longPoll === 'auto' && !process.env.PUBSUB_EMULATOR_HOST),
    },
    log.child({ subscription }),
  );
}

function streamingOptions(config: ConsumerConfig): SubscriberOptions {
  const ackDeadline = Duration.from({ milliseconds: config.ackDeadline });
  return {
    // A message is a bundle of up to ~100 events: these bound memory whatever the backlog.
    flowControl: { maxMessages: config.flowMaxMessages, maxBytes: config.flowMaxBytes, allowExcessMessages: false },
    // The client keeps extending a held message's deadline by exactly the subscription's ack
    // deadline (the lease promises others that, plus the redelivery allowance), and gives up after
    // maxAckExtension (staging takes seconds; the stuck-write check logs long before).
    minAckDeadline: ackDeadline,
    maxAckDeadline: ackDeadline,
    maxExtensionTime: Duration.from({ milliseconds: config.maxAckExtension }),
  };
}

/** nodejs-pubsub's streaming Subscriber behind the same interface (HOURGLASS_PULL=streaming). */
function streamingSource(sub: Subscription, log: Logger): MessageSource {
  const source = {
    error: undefined as Error | undefined,
    start(handle: (m: InboundMessage) => void): void {
      sub.on('message', (m: Message) => handle(inbound(m)));
      sub.on('error', (e: Error) => {
        source.error = e;
        log.error({ err: e }, 'subscription error');
      });
    },
    close: () => sub.close(),
  };
  return source;
}

/** The finest part-file age check: below this the checks cost more than they save. */
const FLUSH_CHECK_MIN = 50;

/** How often the debug log shows every type's counters and watermarks. */
const PROGRESS_LOG_INTERVAL = 2_000;

function inbound(m: Message): InboundMessage {
  return {
    id: m.id,
    data: m.data,
    attributes: m.attributes,
    publishTime: m.publishTime,
    deliveryAttempt: m.deliveryAttempt,
    ack: () => m.ack(),
    nack: () => m.nack(),
  };
}

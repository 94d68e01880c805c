import { randomBytes } from 'node:crypto';
import { type ClientConfig, PubSub } from '@google-cloud/pubsub';
import { type Clock, Defaults, HourglassError, type Logger, installTelemetry, resourceNames } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import {
  type ConsumerConfig,
  type ConsumerParts,
  type SourceConfig,
  checkConsumerConfig,
  consumerParts,
  typeScope,
} from './config.js';
import type { FinalizeStep } from './finalize/context.js';
import { startHttp, type HttpServer } from './http.js';
import { type ConsumerMetrics, createConsumerMetrics } from './metrics.js';
import { FlowBudget } from './source/flow-budget.js';
import { openSource } from './source/message-source.js';
import type { StagerStats } from './stage/stats.js';
import { TickLoop } from './tick-loop.js';
import { ShardWorker } from './close/shard-worker.js';
import { FinalizeQueue } from './close/finalize-queue.js';
import { FinalizePacer } from './close/finalize-pacer.js';
import { closedWindowNotifier } from './notify/start.js';
import type { WindowNotices } from './notify/notifier.js';
import { statusRoutes } from './status/wiring.js';
import { TypeRuntime, type WindowClosed, writeLastLease } from './type-runtime.js';
import { ServedTypes, type Subscribed } from './served-types.js';
import type { FinalizeContext } from './finalize/context.js';
import { ReplicaLeaseKeeper } from './watermark/replica-lease.js';

export { subscriberClientFor } from './source/message-source.js';

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
  /** Messages this process acked since it started, for types it serves and types it stopped serving. */
  acked(): number;
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
  const eventTypes = servedTypes(config, registry);
  const parts = consumerParts(config);
  const notices = config.closedNotices ? closedWindowNotifier(config, deps, log) : undefined;
  const incarnation = `${deps.clock.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const queue = new FinalizeQueue({
    concurrency: config.finalizeConcurrency,
    sharedBytes: Defaults.finalizeSharedBytes,
  });
  const pacer = new FinalizePacer(
    {
      lagMs: config.finalizeYieldLag,
      share: config.finalizeYieldShare / 100,
      holdMs: Defaults.finalizeYieldHold,
      maxPauseMs: Defaults.finalizeYieldMaxPause,
      sliceMs: Defaults.finalizeYieldSlice,
    },
    undefined,
    (ms) => metrics.finalizePaused.add(ms / 1000),
  );
  // One lease for all the types this process serves: read and written once per tick.
  const replicaLease = new ReplicaLeaseKeeper(
    { replicaId: config.replicaId, incarnation, closes: config.closer },
    parts.watermark,
    deps,
  );
  const leaseError = (operation: string, e: unknown): void => {
    metrics.storeErrors.add(1, { operation });
    log.warn({ err: e, operation }, 'store operation failed; retrying next tick');
  };
  // Reconnect quickly after Pub/Sub comes back; grpc's default backoff grows to 2 minutes.
  const clientConfig: ClientConfig & Record<string, unknown> = {
    projectId: config.projectId,
    'grpc.max_reconnect_backoff_ms': 2000,
    'grpc-node.flow_control_window': Defaults.pullFlowControlWindow,
  };
  const pubsub = new PubSub(clientConfig);
  const typeDeps = { ...deps, notices, queue, pacer, replicaLease };
  // Shard jobs of every type this process serves or served (a type that moves on may still have some).
  const contexts = new Map<string, FinalizeContext>();
  let budget: FlowBudget | undefined;
  const served = new ServedTypes(eventTypes, config.replicasPerType, {
    lease: replicaLease,
    clock: deps.clock,
    logger: log,
    runtime: (eventType) => typeRuntime(config, parts, eventType, incarnation, typeDeps, registry, metrics, log),
    subscribe: async (rt, share) => {
      // One flow-control budget for every subscription of the process (#13.3), split by the types served at first.
      budget ??= new FlowBudget(parts.source.flowMaxMessages, parts.source.flowMaxBytes, share);
      contexts.set(rt.eventType, rt.finalizeContext);
      return subscribe(pubsub, rt, config.prefix, parts.source, budget, share, deps.clock, log);
    },
  });
  await replicaLease.refresh();
  await served.reconcile();
  observeRuntimes(metrics, () => served.runtimes, deps.clock);

  // After stop: the types served when it began, with their final counts.
  let lastServed: Subscribed[] | undefined;
  const status = (): TypeStatus[] => (lastServed ?? served.subscriptions).map(typeStatus);
  const loop = new TickLoop(
    () => served.runtimes,
    { tickMs: config.tick, stageMaxAgeMs: config.stageMaxAge, autoTick: deps.autoTick !== false },
    deps.clock,
    log,
    status,
    {
      keeper: replicaLease,
      storeError: leaseError,
      afterRead: () => void served.reconcile().catch((e: unknown) => leaseError('assign', e)),
    },
  );
  loop.start();
  const shardWorker = new ShardWorker(deps.store, contexts, queue, Defaults.finalizeShardPoll, log);
  shardWorker.start();
  const readiness = (): string[] => readinessProblems(served.subscriptions, loop.stopping);
  // Outages of the store or Pub/Sub are not here (a restart would not help): only what one would.
  const stallAfter = Math.max(Defaults.tickStallAfter, 10 * config.tick);
  const liveness = (): string[] => livenessProblems(served.subscriptions, loop, stallAfter);

  let http: HttpServer | undefined;
  if (deps.http !== false) {
    const options = { host: config.host, port: config.port, telemetry, readiness, liveness, logger: log };
    http = await startHttp({ ...options, routes: statusRoutes(config, deps, eventTypes, () => served.runtimes) });
  }
  log.info(
    { eventTypes, window: config.window, store: deps.store.url, port: http?.port ?? 0, incarnation },
    'consumer started',
  );

  return {
    replicaId: config.replicaId,
    port: http?.port ?? 0,
    eventTypes: () => served.runtimes.map((rt) => rt.eventType),
    status,
    closedWindows: () => served.closed(),
    acked: () => served.acked(),
    tick: async () => {
      await loop.tick();
      await served.reconcile();
      await Promise.all(served.runtimes.map((rt) => rt.closeWindows()));
    },
    isReady: () => readiness().length === 0,
    readiness,
    liveness,
    stop: async () => {
      if (loop.stopping) return;
      await loop.stop();
      shardWorker.stop();
      lastServed = served.subscriptions;
      // Each type: stage everything held and ack it, close the stream (which nacks the rest), finish its close.
      await served.stopAll();
      await writeLastLease(replicaLease, (e) => leaseError('lease', e));
      await notices?.stop();
      await pubsub.close();
      await http?.close();
      log.info(
        { status: lastServed.map(({ rt }) => ({ type: rt.eventType, ...rt.stager.stats })) },
        'consumer stopped',
      );
    },
  };
}

function typeRuntime(
  config: ConsumerConfig,
  parts: ConsumerParts,
  eventType: string,
  incarnation: string,
  deps: ConsumerDeps & {
    notices: WindowNotices | undefined;
    queue: FinalizeQueue;
    pacer: FinalizePacer;
    replicaLease: ReplicaLeaseKeeper;
  },
  registry: SchemaRegistry,
  metrics: ConsumerMetrics,
  logger: Logger,
): TypeRuntime {
  const { stage, watermark, close } = parts;
  return new TypeRuntime(
    { scope: typeScope(config, eventType, incarnation), stage, watermark, close },
    {
      store: deps.store,
      registry,
      clock: deps.clock,
      logger,
      metrics,
      ...(deps.onFinalizeStep ? { onFinalizeStep: deps.onFinalizeStep } : {}),
      ...(deps.notices ? { notices: deps.notices } : {}),
      queue: deps.queue,
      pacer: deps.pacer,
      replicaLease: deps.replicaLease,
    },
  );
}

/** The types this process serves: HOURGLASS_EVENT_TYPES (each must be in the registry), else all. */
function servedTypes(config: ConsumerConfig, registry: SchemaRegistry): string[] {
  const eventTypes = config.eventTypes.length > 0 ? config.eventTypes : registry.eventTypes();
  for (const t of eventTypes) {
    if (!registry.has(t)) {
      throw new HourglassError('CONFIG_INVALID', `HOURGLASS_EVENT_TYPES names unknown type "${t}"`, {
        path: 'HOURGLASS_EVENT_TYPES',
      });
    }
  }
  return eventTypes;
}

function observeRuntimes(metrics: ConsumerMetrics, runtimes: () => readonly TypeRuntime[], clock: Clock): void {
  metrics.watermarkLag.addCallback((result) => {
    const now = clock.now();
    for (const rt of runtimes()) {
      const g = rt.watermarks().global;
      if (g !== undefined && Number.isFinite(g)) result.observe((now - g) / 1000, { event_type: rt.eventType });
    }
  });
  metrics.heldEvents.addCallback((result) => {
    for (const rt of runtimes()) result.observe(rt.stager.heldEvents(), { event_type: rt.eventType });
  });
}

/** A type's source, wired to its runtime: health to the watermark, staging failures to back pressure. */
async function subscribe(
  pubsub: PubSub,
  rt: TypeRuntime,
  prefix: string,
  config: SourceConfig,
  budget: FlowBudget,
  share: number,
  clock: Clock,
  log: Logger,
): Promise<Subscribed> {
  const name = resourceNames(prefix, rt.eventType).subscription;
  const source = await openSource(pubsub, name, config, budget, share, log);
  // Not idle before the first Pull answers, nor while Pulls fail (an empty or failed Pull is
  // no proof that nothing waits); no Pull while staging writes fail (back pressure).
  rt.watermark.setSourceHealthy(false, clock.now());
  source.onHealth((healthy) => rt.watermark.setSourceHealthy(healthy, clock.now()));
  rt.stager.watchStoreHealth((healthy) => (healthy ? source.resume() : source.pause('staging writes failing')));
  source.start((m) => rt.stager.handle(m));
  return { rt, name, source };
}

function typeStatus({ rt, name }: Subscribed): TypeStatus {
  return {
    eventType: rt.eventType,
    subscription: name,
    watermark: rt.watermarks(),
    heldEvents: rt.stager.heldEvents(),
    stats: { ...rt.stager.stats },
    windowsClosed: rt.closed.length,
  };
}

/** Why the process is not ready: subscriptions not readable, staging failing, leases not live, stopping. */
function readinessProblems(subscriptions: readonly Subscribed[], stopping: boolean): string[] {
  const reasons = stopping ? ['stopping'] : [];
  for (const { rt, source } of subscriptions) {
    const problem = source.problem();
    if (problem) reasons.push(`${rt.eventType}: ${problem}`);
    if (!rt.stager.storeHealthy) reasons.push(`${rt.eventType}: staging writes failing`);
    const lease = rt.leaseStateNow();
    if (lease !== 'live') reasons.push(`${rt.eventType}: lease ${lease ?? 'not written yet'}`);
  }
  return reasons;
}

/** Why only a restart would help: a pull loop stopped or stuck, the tick loop stalled. */
function livenessProblems(subscriptions: readonly Subscribed[], loop: TickLoop, stallAfter: number): string[] {
  const reasons: string[] = [];
  for (const { rt, source } of subscriptions) {
    const problem = source.liveness();
    if (problem) reasons.push(`${rt.eventType}: ${problem}`);
  }
  const sinceTick = loop.sinceTickMs();
  if (!loop.stopping && sinceTick > stallAfter) {
    reasons.push(`tick loop stalled: no tick completed for ${Math.round(sinceTick / 1000)} s`);
  }
  return reasons;
}

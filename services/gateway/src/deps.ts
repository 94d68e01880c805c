import {
  HourglassError,
  createLogger,
  installTelemetry,
  systemClock,
  type Clock,
  type Logger,
  type Telemetry,
} from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { KeyRing, anonymousKey, readApiKeysFile, type ApiKey } from './api-keys.js';
import { Bundler } from './bundler.js';
import { gatewayParts, type GatewayConfig } from './config.js';
import { DatumArena } from './datum-arena.js';
import { GatewayMetrics } from './metrics.js';
import { OutstandingBudget } from './outstanding.js';
import type { PrepareContext } from './prepare.js';
import type { MessagePublisher, PubSubPublisherOptions } from './publisher.js';
import { RateLimiter } from './rate-limiter.js';
import { TopicWatch } from './readiness.js';
import { NewestVersionEncoder } from './reencode.js';
import { ThreadedPublisher } from './threaded-publisher.js';

/**
 * What the routes share: built once per gateway by `createDeps` and decorated on the root
 * fastify instance as `hourglass`, so every route plugin reads it as `scope.hourglass`.
 */
export interface GatewayDeps {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly registry: SchemaRegistry;
  /** Undefined when HOURGLASS_AUTH=disabled: every request then goes as `anonymous`. */
  readonly keys: KeyRing | undefined;
  readonly anonymous: ApiKey;
  readonly telemetry: Telemetry;
  readonly publisher: MessagePublisher;
  readonly budget: OutstandingBudget;
  readonly metrics: GatewayMetrics;
  readonly bundler: Bundler;
  readonly limiter: RateLimiter;
  readonly readiness: TopicWatch;
  readonly prepareContext: PrepareContext;
  /** Set when closing starts: new requests are refused, /readyz says 503, answers close their connection. */
  draining: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The gateway's shared state (deps.ts), decorated on the root instance by buildGateway. */
    readonly hourglass: GatewayDeps;
  }
}

/** What buildGateway takes: the config, and the parts a test or an embedder may supply. */
export interface GatewayOptions {
  config: GatewayConfig;
  /** Default: loaded from config.schemasDir. */
  registry?: SchemaRegistry;
  /** Source of gateway_ts and of rate-limit refills. */
  clock?: Clock;
  logger?: Logger;
  /** Default: Pub/Sub (the emulator when PUBSUB_EMULATOR_HOST is set). */
  publisher?: MessagePublisher;
  /** Default: read from config.apiKeysFile when auth is enabled. */
  apiKeys?: readonly ApiKey[];
}

/** Builds the shared state: registry, keys, publisher, budget, bundler and the rest. */
export function createDeps(options: GatewayOptions): GatewayDeps {
  const { config } = options;
  const logger = options.logger ?? createLogger('hourglass-gateway');
  const clock = options.clock ?? systemClock;
  const registry = options.registry ?? SchemaRegistry.load(config.schemasDir);
  const eventTypes = registry.eventTypes();
  for (const t of config.unbundledTypes) {
    if (!registry.has(t)) {
      throw new HourglassError('CONFIG_INVALID', `HOURGLASS_UNBUNDLED_TYPES names unknown event type "${t}"`, {
        path: 'HOURGLASS_UNBUNDLED_TYPES',
      });
    }
  }
  const keys =
    config.auth === 'disabled'
      ? undefined
      : new KeyRing(options.apiKeys ?? readApiKeysFile(config.apiKeysFile ?? '', eventTypes, config.rateLimitPerKey));
  const anonymous = anonymousKey(config.rateLimitPerKey);
  if (!keys)
    logger.warn('HOURGLASS_AUTH=disabled: every request is accepted without an API key (local development only)');

  const parts = gatewayParts(config);
  const telemetry = installTelemetry();
  const publisher = options.publisher ?? defaultPublisher(parts.publisher, config.publishInWorker);
  const budget = new OutstandingBudget(config.maxOutstandingBytes, config.maxOutstandingEvents);
  const metrics = new GatewayMetrics(eventTypes, budget);
  const bundler = new Bundler({
    ...parts.bundling,
    publisher,
    budget,
    clock,
    metrics,
    logger,
    newest: new NewestVersionEncoder(registry, config.unbundledTypes),
  });
  return {
    config,
    logger,
    clock,
    registry,
    keys,
    anonymous,
    telemetry,
    publisher,
    budget,
    metrics,
    bundler,
    limiter: new RateLimiter(clock),
    readiness: new TopicWatch(publisher, eventTypes, config.readinessInterval, logger),
    prepareContext: { registry, ...parts.preparing, metrics, arena: new DatumArena() },
    draining: false,
  };
}

/**
 * The Pub/Sub client in a worker thread, or in this thread. Loaded lazily: with the worker,
 * the request thread never loads the Pub/Sub library (tens of MB of RSS saved).
 */
function defaultPublisher(options: PubSubPublisherOptions, inWorker: boolean): MessagePublisher {
  if (inWorker) return new ThreadedPublisher(options);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PubSubPublisher } = require('./publisher.js') as typeof import('./publisher.js');
  return new PubSubPublisher(options);
}

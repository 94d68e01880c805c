import { hostname } from 'node:os';
import {
  Defaults,
  HourglassError,
  checkPrefix,
  loadConfig,
  setting,
  type ConfigOf,
  type Duration,
} from '@hourglass/common';
import type { BundleCodec } from '@hourglass/schemas';
import type { BundlingConfig } from './bundler.js';
import type { PrepareContext } from './prepare.js';
import type { PubSubPublisherOptions } from './publisher.js';

/** Every gateway setting: its environment variable, parser and default (see docs/http-api.md). */
export const gatewaySettings = {
  host: setting.string('HOURGLASS_GATEWAY_HOST', Defaults.gatewayHost),
  port: setting.int('HOURGLASS_GATEWAY_PORT', Defaults.gatewayPort, 0, 65535),
  gatewayId: setting.string('HOURGLASS_GATEWAY_ID', hostname()),
  projectId: setting.string('HOURGLASS_PROJECT_ID', Defaults.projectId),
  prefix: setting.string('HOURGLASS_PREFIX', Defaults.prefix),
  schemasDir: setting.string('HOURGLASS_SCHEMAS_DIR', Defaults.schemasDir),
  auth: setting.string('HOURGLASS_AUTH', 'enabled', /^(enabled|disabled)$/),
  apiKeysFile: setting.optionalString('HOURGLASS_API_KEYS_FILE'),
  rateLimitPerKey: setting.int('HOURGLASS_RATE_LIMIT_PER_KEY', Defaults.rateLimitPerKey, 1, 1_000_000_000),
  publishTimeout: setting.duration('HOURGLASS_PUBLISH_TIMEOUT', Defaults.publishTimeout, 1),
  bundleMaxEvents: setting.int('HOURGLASS_BUNDLE_MAX_EVENTS', Defaults.bundleMaxEvents, 1, 100_000),
  bundleMaxBytes: setting.bytes('HOURGLASS_BUNDLE_MAX_BYTES', Defaults.bundleMaxBytes, 1024),
  bundleLinger: setting.duration('HOURGLASS_BUNDLE_LINGER', Defaults.bundleLinger),
  bundleMaxLinger: setting.duration('HOURGLASS_BUNDLE_MAX_LINGER', Defaults.bundleMaxLinger),
  bundleLingerTargetEvents: setting.int(
    'HOURGLASS_BUNDLE_LINGER_TARGET_EVENTS',
    Defaults.bundleLingerTargetEvents,
    1,
    100_000,
  ),
  bundleCodec: setting.string('HOURGLASS_BUNDLE_CODEC', 'null', /^(null|deflate)$/),
  unbundledTypes: setting.list('HOURGLASS_UNBUNDLED_TYPES', []),
  maxOutstandingBytes: setting.bytes('HOURGLASS_MAX_OUTSTANDING_BYTES', Defaults.maxOutstandingBytes, 1024),
  maxOutstandingEvents: setting.int('HOURGLASS_MAX_OUTSTANDING_EVENTS', Defaults.maxOutstandingEvents, 1, 100_000_000),
  maxBodyBytes: setting.bytes('HOURGLASS_MAX_BODY_BYTES', Defaults.maxBodyBytes, 1024),
  maxDecompressedBytes: setting.bytes('HOURGLASS_MAX_DECOMPRESSED_BYTES', Defaults.maxDecompressedBytes, 1024),
  maxEventsPerBatch: setting.int('HOURGLASS_MAX_EVENTS_PER_BATCH', Defaults.maxEventsPerBatch, 1, 100_000),
  maxEventBytes: setting.bytes('HOURGLASS_MAX_EVENT_BYTES', Defaults.maxEventBytes, 64),
  readinessInterval: setting.duration('HOURGLASS_READINESS_INTERVAL', Defaults.readinessInterval, 100),
  pubsubBatchMaxMessages: setting.int('HOURGLASS_PUBSUB_BATCH_MAX_MESSAGES', Defaults.pubsubBatchMaxMessages, 1, 1000),
  pubsubBatchMaxDelay: setting.duration('HOURGLASS_PUBSUB_BATCH_MAX_DELAY', Defaults.pubsubBatchMaxDelay),
  requestReceiveTimeout: setting.duration('HOURGLASS_REQUEST_RECEIVE_TIMEOUT', Defaults.requestReceiveTimeout, 1000),
  publishInWorker: setting.bool('HOURGLASS_PUBLISH_IN_WORKER', Defaults.publishInWorker),
};

type RawGatewayConfig = ConfigOf<typeof gatewaySettings>;

export interface GatewayConfig extends Omit<RawGatewayConfig, 'auth' | 'bundleCodec'> {
  auth: 'enabled' | 'disabled';
  bundleCodec: BundleCodec;
  publishTimeout: Duration;
  bundleLinger: Duration;
  bundleMaxLinger: Duration;
}

/**
 * Reads and checks the gateway settings; throws one CONFIG_INVALID naming the bad setting.
 * Checks that need the schema registry (types named in keys or lists) happen in createDeps (deps.ts).
 */
export function loadGatewayConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  const raw = loadConfig(gatewaySettings, env);
  const prefixProblem = checkPrefix(raw.prefix);
  if (prefixProblem) throw new HourglassError('CONFIG_INVALID', prefixProblem, { path: 'HOURGLASS_PREFIX' });
  const config: GatewayConfig = {
    ...raw,
    auth: raw.auth === 'disabled' ? 'disabled' : 'enabled',
    bundleCodec: raw.bundleCodec === 'deflate' ? 'deflate' : 'null',
  };
  if (config.auth === 'enabled' && !config.apiKeysFile) {
    throw new HourglassError(
      'CONFIG_INVALID',
      'HOURGLASS_API_KEYS_FILE is required while HOURGLASS_AUTH=enabled (the default); ' +
        'set HOURGLASS_AUTH=disabled only for local development',
      { path: 'HOURGLASS_API_KEYS_FILE' },
    );
  }
  if (config.bundleMaxBytes < config.maxEventBytes) {
    throw new HourglassError(
      'CONFIG_INVALID',
      `HOURGLASS_BUNDLE_MAX_BYTES (${config.bundleMaxBytes}) must be at least HOURGLASS_MAX_EVENT_BYTES (${config.maxEventBytes})`,
      { path: 'HOURGLASS_BUNDLE_MAX_BYTES' },
    );
  }
  const longest = Math.max(config.bundleLinger, config.bundleMaxLinger);
  if (longest >= config.publishTimeout) {
    // Every event that waited the whole linger would be answered `retry` without being published.
    const name =
      config.bundleMaxLinger > config.bundleLinger ? 'HOURGLASS_BUNDLE_MAX_LINGER' : 'HOURGLASS_BUNDLE_LINGER';
    throw new HourglassError(
      'CONFIG_INVALID',
      `${name} (${longest} ms) must be shorter than HOURGLASS_PUBLISH_TIMEOUT (${config.publishTimeout} ms)`,
      { path: name },
    );
  }
  return config;
}

/** The defaults, for tests and embedders; auth disabled because no key file is given. */
export function defaultGatewayConfig(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...loadGatewayConfig({ HOURGLASS_AUTH: 'disabled' }), ...overrides };
}

/**
 * The settings each part of the gateway takes, under the names that part uses, derived in
 * this one place (a new setting for the publisher or the bundler is added here and there only).
 */
export interface GatewayParts {
  publisher: PubSubPublisherOptions;
  bundling: BundlingConfig;
  preparing: Pick<PrepareContext, 'gatewayId' | 'maxEventBytes'>;
}

export function gatewayParts(config: GatewayConfig): GatewayParts {
  return {
    publisher: {
      projectId: config.projectId,
      prefix: config.prefix,
      publishTimeout: config.publishTimeout,
      batchMaxMessages: config.pubsubBatchMaxMessages,
      batchMaxDelay: config.pubsubBatchMaxDelay,
    },
    bundling: {
      maxEvents: config.bundleMaxEvents,
      maxBytes: config.bundleMaxBytes,
      linger: config.bundleLinger,
      maxLinger: config.bundleMaxLinger,
      lingerTargetEvents: config.bundleLingerTargetEvents,
      codec: config.bundleCodec,
      publishTimeout: config.publishTimeout,
      unbundledTypes: new Set(config.unbundledTypes),
    },
    preparing: { gatewayId: config.gatewayId, maxEventBytes: config.maxEventBytes },
  };
}

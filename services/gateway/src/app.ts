import Fastify, { type FastifyInstance } from 'fastify';
import type { GatewayConfig } from './config.js';
import { createDeps, type GatewayDeps, type GatewayOptions } from './deps.js';
import { classify, sendError, statusOf } from './http-errors.js';
import type { OutstandingBudget } from './outstanding.js';
import { answerClientError, answerFrameworkError } from './protocol-errors.js';
import type { TopicWatch } from './readiness.js';
import { avroEventRoutes } from './routes/avro-events.js';
import { corsRoutes } from './routes/browser.js';
import { healthRoutes } from './routes/health.js';
import { jsonEventRoutes } from './routes/json-events.js';

export type { GatewayOptions } from './deps.js';
export { AVRO_CONTENT_TYPE, SCHEMA_FINGERPRINT_HEADER, SCHEMA_VERSION_HEADER } from './routes/avro-events.js';

export interface Gateway {
  readonly app: FastifyInstance;
  readonly config: GatewayConfig;
  readonly readiness: TopicWatch;
  /** Events and bytes in open bundles or in flight to Pub/Sub. */
  readonly outstanding: Readonly<OutstandingBudget>;
  /** Resolves after the first topic check (it never fails: a miss only makes /readyz say 503). */
  checked: Promise<void>;
  /** Stops accepting, publishes what is open, answers in-flight requests, closes Pub/Sub. */
  close(): Promise<void>;
}

/**
 * Builds the gateway: the shared state (deps.ts), decorated on a fastify instance as
 * `hourglass`, and one plugin per route group (routes/). The process itself (listen,
 * signals) is server.ts.
 */
export async function buildGateway(options: GatewayOptions): Promise<Gateway> {
  const deps = createDeps(options);
  const { config, readiness } = deps;
  const app = Fastify({
    logger: false,
    bodyLimit: config.maxBodyBytes,
    requestTimeout: config.requestReceiveTimeout,
    // Requests that arrive while closing are answered by our own hook (SHUTTING_DOWN, Connection: close).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Errors before any route runs, in our error shape (protocol-errors.ts).
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
  });
  app.decorate('hourglass', deps);
  answerErrors(app, deps);

  // Registered in this order: the CORS hook (root level) must exist before the JSON scope inherits hooks.
  await app.register(healthRoutes);
  // Browsers and apps: CORS with publishable keys (docs/http-api.md, "Browsers and apps").
  if (deps.keys) await app.register(corsRoutes);
  await app.register(jsonEventRoutes);
  await app.register(avroEventRoutes);
  closeInOrder(app, deps);

  const checked = readiness.start();
  await app.ready();
  return {
    app,
    config,
    readiness,
    outstanding: deps.budget,
    checked,
    close: () => app.close(),
  };
}

/** Every error a route throws, and every unknown path, in the gateway's error shape (http-errors.ts). */
function answerErrors(app: FastifyInstance, { logger }: GatewayDeps): void {
  app.setErrorHandler((error, req, reply) => {
    const { code, message } = classify(error);
    if (statusOf(code) >= 500) logger.error({ err: error, url: req.url }, 'request failed');
    return sendError(reply, code, message);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, 'HTTP_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]?.slice(0, 100)}`),
  );
}

/** Closing: refuse new requests and publish what is open, then wait for the bundles and close Pub/Sub. */
function closeInOrder(app: FastifyInstance, deps: GatewayDeps): void {
  app.addHook('preClose', async () => {
    deps.draining = true;
    deps.readiness.stop();
    deps.bundler.drain();
  });
  app.addHook('onClose', async () => {
    await deps.bundler.idle();
    await deps.publisher.close();
  });
}

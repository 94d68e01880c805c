import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger, Telemetry } from '@hourglass/common';

/**
 * /healthz: liveness (contracts §4): 200 while the process can pull and stage; 503 with the
 * reasons when only a restart would help (a pull loop stopped or stuck, the tick loop stalled).
 * A store or Pub/Sub outage is not among them: a restart would hand back every held message and
 * spend delivery attempts. /readyz: 503 with reasons while a subscription cannot be read, staging
 * writes fail or a lease is not live. /metrics: Prometheus text.
 */
export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

export async function startHttp(options: {
  host: string;
  port: number;
  telemetry: Telemetry;
  /** Why the process is not ready; empty when ready. */
  readiness: () => string[];
  /** Why the process needs a restart; empty when live. */
  liveness: () => string[];
  logger: Logger;
  /** More routes (the status page). */
  routes?: (app: FastifyInstance) => void;
}): Promise<HttpServer> {
  // A browser left on /status keeps keep-alive connections open (some never carry a request):
  // without this, stop() waited for them to time out (65 s in the status page's browser test).
  const app = Fastify({ logger: false, forceCloseConnections: true });
  let lastUnhealthy = '';
  app.get('/healthz', async (_req, reply) => {
    const reasons = options.liveness();
    if (reasons.length === 0) return reply.code(200).send({ status: 'ok' });
    const key = reasons.join('; ');
    if (key !== lastUnhealthy) options.logger.error({ reasons }, 'liveness check failing');
    lastUnhealthy = key;
    return reply.code(503).send({ status: 'unhealthy', reasons });
  });
  app.get('/readyz', async (_req, reply) => {
    const reasons = options.readiness();
    if (reasons.length === 0) return reply.code(200).send({ status: 'ready' });
    return reply.code(503).send({ status: 'not ready', reasons });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(await options.telemetry.renderMetrics()),
  );
  options.routes?.(app);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { port, close: () => app.close() };
}

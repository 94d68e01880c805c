import Fastify from 'fastify';
import type { Logger, Telemetry } from '@hourglass/common';

/** /healthz (the process answers), /readyz (subscribed and leases live), /metrics (Prometheus text). */
export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

export async function startHttp(options: {
  host: string;
  port: number;
  telemetry: Telemetry;
  isReady: () => boolean;
  logger: Logger;
}): Promise<HttpServer> {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ready = options.isReady();
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(await options.telemetry.renderMetrics()),
  );
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { port, close: () => app.close() };
}

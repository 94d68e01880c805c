import type { FastifyPluginAsync } from 'fastify';

/**
 * Probes and metrics, open to anyone (no key, no admission): `/healthz` (the process
 * answers), `/readyz` (every topic exists and the gateway is not draining; readiness.ts)
 * and `/metrics` (Prometheus text).
 */
export const healthRoutes: FastifyPluginAsync = async (scope) => {
  const deps = scope.hourglass;
  scope.get('/healthz', (_req, reply) => reply.type('application/json').send('{"status":"ok"}'));
  scope.get('/readyz', (_req, reply) => {
    const state = deps.draining ? { ready: false, reason: 'shutting down' } : deps.readiness.current;
    return reply
      .code(state.ready ? 200 : 503)
      .type('application/json')
      .send(JSON.stringify(state));
  });
  scope.get('/metrics', async (_req, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(await deps.telemetry.renderMetrics()),
  );
};

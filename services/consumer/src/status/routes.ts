import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StatusCollector } from './collector.js';
import { MANIFEST_ROUTE, renderStatusPage } from './render.js';

/**
 * GET /status: the status page (HTML; gzip when the browser takes it). GET
 * /status/manifest/<type>/<window start ms>: a closed window's `_SUCCESS`, read-only, as stored.
 * The page runs no script: its Content-Security-Policy forbids any, so even a name that slipped
 * past escaping could not execute.
 */
const PAGE_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export function registerStatusRoutes(app: FastifyInstance, collector: StatusCollector): void {
  app.get('/status', async (req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
    const snapshot = await collector.snapshot();
    const html = renderStatusPage(snapshot, {
      q: typeof req.query.q === 'string' ? req.query.q : '',
      problemsOnly: req.query.problems === '1',
    });
    reply
      .header('content-security-policy', PAGE_POLICY)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-store');
    return send(req, reply, 'text/html; charset=utf-8', Buffer.from(html));
  });
  app.get(
    `${MANIFEST_ROUTE}/:type/:start`,
    async (req: FastifyRequest<{ Params: { type: string; start: string } }>, reply) => {
      const start = /^\d{1,15}$/.test(req.params.start) ? Number(req.params.start) : NaN;
      const data = await collector.manifest(req.params.type, start);
      reply.header('x-content-type-options', 'nosniff').header('content-security-policy', "default-src 'none'");
      if (!data)
        return reply.code(404).type('text/plain; charset=utf-8').send('no manifest: the window is not closed\n');
      return send(req, reply, 'application/json; charset=utf-8', data);
    },
  );
}

function send(req: FastifyRequest, reply: FastifyReply, type: string, body: Buffer): FastifyReply {
  reply.type(type).header('vary', 'accept-encoding');
  if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '') && body.length > 1024) {
    return reply.header('content-encoding', 'gzip').send(gzipSync(body));
  }
  return reply.send(body);
}

'use strict';
/**
 * The raw ceiling for bench/gateway.js: a bare fastify route that reads and JSON-parses
 * the same bodies, publishes nothing and answers a small JSON. Whatever the gateway
 * adds (validation, Avro encoding, bundling, Pub/Sub) shows as the gap to this.
 * Usage: node bench/gateway-ceiling.js <port>
 */
const Fastify = require('fastify');

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, async (_req, body) =>
  JSON.parse(body.toString('utf8')),
);
app.post('/v1/events', async (req, reply) => {
  const n = req.body.events.length;
  return reply.type('application/json').send(`{"accepted":${n},"rejected":0,"retry":0}`);
});
app.get('/healthz', async () => ({ status: 'ok' }));
app.listen({ host: '127.0.0.1', port: Number(process.argv[2]) }).then(() => process.stdout.write('listening\n'));
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));

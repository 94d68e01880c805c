import Fastify, { type FastifyInstance } from 'fastify';
import { silentLogger } from '@hourglass/common';
import { defaultGatewayConfig } from '@hourglass/gateway';
import { createDeps, type GatewayDeps } from '@hourglass/gateway/deps';
import { healthRoutes } from '@hourglass/gateway/routes/health';
import { jsonEventRoutes } from '@hourglass/gateway/routes/json-events';
import { RecordingPublisher } from '../../hostile/support';
import { registry, samplePayloads } from '../../gateway/support';

/**
 * Each route group is a fastify plugin that needs nothing but the `hourglass` decoration:
 * registered alone on a bare fastify instance, it serves its routes (issue #16: a route can
 * be read, tested or moved alone). No Pub/Sub: a recording publisher takes the bundles.
 */
describe('gateway route plugins, each on its own', () => {
  let deps: GatewayDeps;
  let published: RecordingPublisher;
  let app: FastifyInstance;

  beforeEach(() => {
    published = new RecordingPublisher();
    deps = createDeps({ config: defaultGatewayConfig(), registry, publisher: published, logger: silentLogger });
    app = Fastify();
    app.decorate('hourglass', deps);
  });
  afterEach(async () => {
    await app.close();
    deps.bundler.drain();
    await deps.bundler.idle();
  });

  test('health: /readyz follows the topic watch and the draining flag of the shared state', async () => {
    await app.register(healthRoutes);
    const ready = async () => {
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      return { status: res.statusCode, body: res.json() as unknown };
    };
    expect(await ready()).toEqual({ status: 503, body: { ready: false, reason: 'topics not checked yet' } });
    await deps.readiness.check();
    const types = registry.eventTypes().length;
    expect(await ready()).toEqual({ status: 200, body: { ready: true, reason: `${types} topics found` } });
    deps.draining = true;
    expect(await ready()).toEqual({ status: 503, body: { ready: false, reason: 'shutting down' } });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).body).toBe('{"status":"ok"}');
  });

  test('JSON events: a batch is admitted, bundled, published once and answered per event', async () => {
    await app.register(jsonEventRoutes);
    const events = [
      { type: 'track_played', payload: samplePayloads.track_played },
      { type: 'page_viewed', payload: samplePayloads.page_viewed },
    ];
    const res = await app.inject({ method: 'POST', url: '/v1/events', payload: { events } });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { results: { status: string }[] };
    expect(body.results.map((r) => r.status)).toEqual(['accepted', 'accepted']);
    expect(published.messages.map((m) => m.eventType).sort()).toEqual(['page_viewed', 'track_played']);
    expect(deps.budget).toMatchObject({ events: 0, bytes: 0 });
  });
});

import type { FastifyInstance } from 'fastify';
import { type Clock, Defaults } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import { type ConsumerConfig, graceFor } from '../config.js';
import type { TypeRuntime } from '../type-runtime.js';
import { StatusCollector } from './collector.js';
import { registerStatusRoutes } from './routes.js';
import type { LocalView } from './snapshot.js';

/** The status page of a consumer process: the types it may serve, its store, and its own state of those it serves now. */
export function statusRoutes(
  config: ConsumerConfig,
  deps: { store: ObjectStore; clock: Clock },
  eventTypes: readonly string[],
  served: () => readonly TypeRuntime[],
): (app: FastifyInstance) => void {
  const collector = new StatusCollector({
    store: deps.store,
    clock: deps.clock,
    eventTypes: [...eventTypes],
    windowMs: config.window,
    graceFor: (eventType) => graceFor(config, eventType),
    replicaId: config.replicaId,
    ttlMs: Defaults.statusCacheTtl,
    local: (eventType) => {
      const rt = served().find((r) => r.eventType === eventType);
      return rt && localViewOf(rt);
    },
  });
  return (app) => registerStatusRoutes(app, collector);
}

function localViewOf(rt: TypeRuntime): LocalView {
  const local = rt.watermarks().local;
  return {
    heldEvents: rt.stager.heldEvents(),
    events: rt.stager.stats.events,
    deadLettered: rt.stager.stats.deadLettered,
    watermark: Number.isFinite(local) ? local : null,
  };
}

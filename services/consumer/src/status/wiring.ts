import type { FastifyInstance } from 'fastify';
import { type Clock, Defaults } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import { type ConsumerConfig, graceFor } from '../config.js';
import type { TypeRuntime } from '../type-runtime.js';
import { StatusCollector } from './collector.js';
import { registerStatusRoutes } from './routes.js';
import type { LocalView } from './snapshot.js';

/** The status page of a consumer process: its types, its store, and its own per-type state. */
export function statusRoutes(
  config: ConsumerConfig,
  deps: { store: ObjectStore; clock: Clock },
  runtimes: readonly TypeRuntime[],
): (app: FastifyInstance) => void {
  const byType = new Map(runtimes.map((rt) => [rt.eventType, rt]));
  const collector = new StatusCollector({
    store: deps.store,
    clock: deps.clock,
    eventTypes: runtimes.map((rt) => rt.eventType),
    windowMs: config.window,
    graceFor: (eventType) => graceFor(config, eventType),
    replicaId: config.replicaId,
    ttlMs: Defaults.statusCacheTtl,
    local: (eventType) => {
      const rt = byType.get(eventType);
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

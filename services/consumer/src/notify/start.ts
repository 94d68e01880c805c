import { type Logger, closedNoticeTopic } from '@hourglass/common';
import type { ObjectStore } from '@hourglass/storage';
import type { ConsumerConfig } from '../config.js';
import { ClosedWindowNotifier } from './notifier.js';

/** The notifier of a consumer process: its own Pub/Sub client on the project of the config. */
export function closedWindowNotifier(
  config: Pick<ConsumerConfig, 'projectId' | 'prefix'>,
  deps: { store: ObjectStore },
  log: Logger,
): ClosedWindowNotifier {
  return new ClosedWindowNotifier({
    store: deps.store,
    logger: log.child({ component: 'notices' }),
    topic: closedNoticeTopic(config.prefix),
    pubsub: { projectId: config.projectId },
  });
}

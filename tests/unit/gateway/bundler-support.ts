import { ms, silentLogger } from '@hourglass/common';
import { Bundler, type BundlerOptions } from '@hourglass/gateway/bundler';
import { GatewayMetrics } from '@hourglass/gateway/metrics';
import { OutstandingBudget } from '@hourglass/gateway/outstanding';
import type { MessagePublisher } from '@hourglass/gateway/publisher';
import { registry } from '../../gateway/support';

/** A bundler over `publish` (a fake Pub/Sub), an unbounded budget and the wall clock (or Jest's fake one). */
export function bundlerOver(
  publish: MessagePublisher['publish'],
  settings: Pick<BundlerOptions, 'maxEvents' | 'maxBytes' | 'linger' | 'maxLinger' | 'lingerTargetEvents'> &
    Partial<BundlerOptions>,
): Bundler {
  const budget = new OutstandingBudget(1e12, 1e12);
  return new Bundler({
    publisher: {
      publish,
      topicExists: () => Promise.resolve(true),
      topicName: (t) => t,
      close: () => Promise.resolve(),
    },
    budget,
    clock: { now: () => Date.now() },
    metrics: new GatewayMetrics(registry.eventTypes(), budget),
    logger: silentLogger,
    codec: 'null',
    publishTimeout: ms(5000),
    unbundledTypes: new Set(),
    ...settings,
  });
}

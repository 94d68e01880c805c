#!/usr/bin/env node
import { createLogger, isHourglassError, loadTraceConfig, startTracing, systemClock } from '@hourglass/common';
import { createStore } from '@hourglass/storage';
import { loadConsumerConfig } from './config.js';
import { startConsumer } from './consumer.js';
import { crashHookFromEnv } from './test-hooks.js';

/**
 * `node services/consumer/dist/main.js`: configuration from the environment (see
 * consumerSettings), structured logs on stdout, graceful stop on SIGTERM/SIGINT: stage and
 * ack what is held, write the leases, exit 0.
 */
async function main(): Promise<void> {
  const logger = createLogger('hourglass-consumer');
  const config = loadConsumerConfig();
  const tracing = startTracing('hourglass-consumer', loadTraceConfig()); // off unless HOURGLASS_TRACE_ENDPOINT
  const store = createStore(config.store);
  const onFinalizeStep = crashHookFromEnv();
  const consumer = await startConsumer(config, {
    clock: systemClock,
    store,
    logger,
    ...(onFinalizeStep ? { onFinalizeStep } : {}),
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    consumer
      .stop()
      .then(() => tracing.shutdown())
      .then(
        () => process.exit(0),
        (e: unknown) => {
          logger.error({ err: e }, 'stop failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  process.stderr.write(`${isHourglassError(e) ? e.toLine() : `error: ${(e as Error).stack ?? String(e)}`}\n`);
  process.exit(isHourglassError(e, 'CONFIG_INVALID') ? 2 : 1);
});

import { type Tracing, createLogger, isHourglassError, loadTraceConfig, startTracing } from '@hourglass/common';
import { buildGateway, type Gateway } from './app.js';
import { loadGatewayConfig } from './config.js';

/**
 * The gateway process: read config, listen, and on SIGTERM/SIGINT stop accepting,
 * finish in-flight publishes, answer them and exit. Exit codes: 0 clean stop,
 * 2 bad configuration (one line on stderr), 1 anything else.
 */
const log = createLogger('hourglass-gateway');

async function main(): Promise<void> {
  // On the emulator there are no credentials to discover; skip the metadata-server probe.
  if (process.env.PUBSUB_EMULATOR_HOST) process.env.METADATA_SERVER_DETECTION ??= 'none';
  let gateway: Gateway;
  let tracing: Tracing;
  try {
    const config = loadGatewayConfig();
    tracing = startTracing('hourglass-gateway', loadTraceConfig()); // off unless HOURGLASS_TRACE_ENDPOINT
    gateway = await buildGateway({ config, logger: log });
  } catch (e) {
    if (isHourglassError(e)) {
      process.stderr.write(`hourglass-gateway: ${e.toLine()}\n`);
      process.exit(2);
    }
    throw e;
  }
  const { config } = gateway;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new requests, finishing in-flight publishes');
    // Past this point nothing unanswered was acked, so exiting loses nothing; the bound keeps a stuck close from hanging.
    const hardStop = setTimeout(() => {
      log.error('in-flight publishes did not finish in time; exiting (their requests were not acked)');
      process.exit(1);
    }, config.publishTimeout + 5000);
    hardStop.unref();
    gateway
      .close()
      .then(() => tracing.shutdown())
      .then(
        () => {
          log.info('stopped');
          process.exit(0);
        },
        (e: unknown) => {
          log.error({ err: e }, 'error while stopping');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const address = await gateway.app.listen({ host: config.host, port: config.port });
  log.info(
    { address, gatewayId: config.gatewayId, auth: config.auth, prefix: config.prefix, project: config.projectId },
    'gateway listening',
  );
}

main().catch((e: unknown) => {
  log.error({ err: e }, 'gateway failed to start');
  process.stderr.write(`hourglass-gateway: ${isHourglassError(e) ? e.toLine() : (e as Error).message}\n`);
  process.exit(1);
});

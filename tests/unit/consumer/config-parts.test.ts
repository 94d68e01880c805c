import { loadConsumerConfig, consumerParts } from '@hourglass/consumer/config';

/**
 * The typed sub-configs are derived once from the flat settings (consumerParts); these pin the
 * derivations that are more than a copy, with the environment variables as an operator sets them.
 */
const env = {
  HOURGLASS_ACK_DEADLINE: '20s',
  HOURGLASS_REDELIVERY_ALLOWANCE: '45s',
  HOURGLASS_MAX_ACK_EXTENSION: '30m',
  HOURGLASS_FINAL_FILE_BYTES: '2MiB',
  HOURGLASS_AVRO_BLOCK_BYTES: '64KiB',
  HOURGLASS_FINAL_DEFLATE_LEVEL: '6',
  HOURGLASS_DEDUP_HORIZON: '2m',
};

test('two ack deadlines: the plain one for the subscription, plus the redelivery allowance for leases', () => {
  const parts = consumerParts(loadConsumerConfig(env), {});
  expect(parts.source.ackDeadlineMs).toBe(20_000);
  expect(parts.watermark.redeliveryBoundMs).toBe(65_000);
  expect(parts.source.maxExtensionMs).toBe(30 * 60_000);
  expect(parts.stage.maxHoldMs).toBe(30 * 60_000);
});

test('HOURGLASS_LONG_POLL=auto long-polls except on the emulator', () => {
  const config = loadConsumerConfig(env);
  expect(consumerParts(config, {}).source.longPoll).toBe(true);
  expect(consumerParts(config, { PUBSUB_EMULATOR_HOST: '127.0.0.1:8085' }).source.longPoll).toBe(false);
  expect(
    consumerParts(loadConsumerConfig({ ...env, HOURGLASS_LONG_POLL: 'on' }), { PUBSUB_EMULATOR_HOST: 'x' }).source
      .longPoll,
  ).toBe(true);
});

test('the final format keeps its keys and their order: plans store it as JSON', () => {
  const { format } = consumerParts(loadConsumerConfig(env), {}).close;
  expect(JSON.stringify(format)).toBe(
    '{"finalFileBytes":2097152,"blockBytes":65536,"deflateLevel":6,"dedupHorizonMs":120000}',
  );
});

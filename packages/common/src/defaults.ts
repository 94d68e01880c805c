import { minutes, ms, seconds } from './duration.js';

/**
 * Every default of Hourglass, in one place, each with the reason for its value.
 * Services read these through their typed config (config.ts), which lets environment
 * variables or a JSON file override them and validates the result at start-up.
 */
export const Defaults = {
  // --- shared ---
  /** Prefix of every Pub/Sub resource name; lets several pipelines share a project. */
  prefix: 'hourglass',
  /** Local Pub/Sub project id; any id works on the emulator. */
  projectId: 'hourglass-local',
  /** Schema directory relative to the repo root. */
  schemasDir: 'schemas',
  /** Local object store root; the brief's default store is a local directory. */
  storeRoot: './data',

  // --- topology (provisioning) ---
  /** Ack deadline of consumer subscriptions: long enough to stage a part file, short enough for quick redelivery after a crash. */
  ackDeadline: seconds(60),
  /** Delivery attempts before a message goes to the dead-letter topic (Pub/Sub allows 5..100). */
  maxDeliveryAttempts: 10,
  /** Subscription retention: a week of backlog survives a consumer outage. */
  retention: minutes(7 * 24 * 60),

  // --- gateway ---
  /** Gateway HTTP port. */
  gatewayPort: 8080,
  /** Upper bound on one publish; the consumer's idle watermark subtracts this, so it must match both sides. */
  publishTimeout: seconds(10),
  /** Events per Pub/Sub message: ~100 lifts the emulator from ~10k msgs/s to hundreds of thousands of events/s. */
  bundleMaxEvents: 100,
  /** Bytes per bundle before it is sent; well under Pub/Sub's 10 MB message limit. */
  bundleMaxBytes: 1_000_000,
  /** Linger before a partial bundle is sent: adds at most this to answer latency. */
  bundleLinger: ms(5),
  /** Outstanding bytes toward Pub/Sub before the gateway answers 503 instead of queuing. */
  maxOutstandingBytes: 64 * 1024 * 1024,
  /** Outstanding events toward Pub/Sub before the gateway answers 503. */
  maxOutstandingEvents: 200_000,
  /** Largest request body (compressed bytes on the wire). */
  maxBodyBytes: 1024 * 1024,
  /** Largest decompressed body: refuses gzip bombs. */
  maxDecompressedBytes: 5 * 1024 * 1024,
  /** Events in one batch. */
  maxEventsPerBatch: 1000,
  /** Encoded bytes of one event. */
  maxEventBytes: 64 * 1024,
  /** Events per second per API key (token bucket, burst = one second's worth). */
  rateLimitPerKey: 50_000,

  // --- consumer ---
  /** Consumer health/metrics HTTP port. */
  consumerPort: 8081,
  /** Window size: hourly buckets. Tests and the demo use one minute. */
  window: minutes(60),
  /** Grace after a window's end before it may close; late events after that go to the next open window. */
  grace: minutes(5),
  /** A staged part file is flushed at this many events... */
  stageMaxEvents: 50_000,
  /** ...or this many bytes... */
  stageMaxBytes: 16 * 1024 * 1024,
  /** ...or this age: bounds how long a message is held before its ack. */
  stageMaxAge: seconds(2),
  /** Unacked messages held by one consumer: keeps memory bounded whatever the backlog. */
  flowMaxMessages: 2_000,
  /** Unacked bytes held by one consumer. */
  flowMaxBytes: 128 * 1024 * 1024,
  /** Watermark lease lifetime; a replica that stops renewing is presumed dead after this plus the ack deadline. */
  leaseTtl: seconds(30),
  /** How often watermarks and leases are written and windows checked for closing. */
  tick: seconds(1),
  /** Target size of a final Avro file. */
  finalFileBytes: 256 * 1024 * 1024,
  /** Avro container block size (records per block) in staged and final files. */
  avroBlockBytes: 64 * 1024,
} as const;

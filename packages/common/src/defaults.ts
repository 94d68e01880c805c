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
  /** The longest ack deadline Pub/Sub accepts (HOURGLASS_ACK_DEADLINE is checked against it at start-up). */
  ackDeadlineMax: seconds(600),
  /** Delivery attempts before a message goes to the dead-letter topic (Pub/Sub allows 5..100). */
  maxDeliveryAttempts: 10,
  /** Subscription retention: a week of backlog survives a consumer outage. */
  retention: minutes(7 * 24 * 60),

  // --- gateway ---
  /** Gateway HTTP port. */
  gatewayPort: 8080,
  /**
   * Upper bound on one publish; the consumer's watermark trails the clock by this, so it must match
   * both sides, and every window closes at least this long after end + grace. Pub/Sub publish p99 is
   * tens of ms (13.7 ms on the emulator, bench/gateway.js); a slower one is answered `retry`.
   */
  publishTimeout: seconds(5),
  /**
   * Events per Pub/Sub message: ~100 lifts the emulator from ~10k msgs/s to hundreds of thousands
   * of events/s. Up to 500 halves the messages again at full load (the linger usually sends a
   * bundle first), and each message costs a gRPC call in the gateway and the consumer and work in
   * Pub/Sub: end to end on 2 cores 88,807 → 93,816 events/s accepted, stage p99 30 → 5 s.
   */
  bundleMaxEvents: 500,
  /** Bytes per bundle before it is sent; well under Pub/Sub's 10 MB message limit. */
  bundleMaxBytes: 1_000_000,
  /**
   * Linger before a partial bundle is sent: adds at most this to answer latency. 15 ms, not 5
   * (2026-12-04, bench/gateway.js, three alternating pairs): half-load bundles of 157 events
   * instead of 58, gateway CPU there 0.64-0.65 → 0.49-0.52 cores and the emulator's 0.14-0.17 →
   * 0.06-0.09, full load 150-153k → 156-161k events/s; half-load answers p50 8.5-8.7 → 14.3-14.6 ms.
   */
  bundleLinger: ms(15),
  /**
   * Longest linger for a type whose bundles stay small (the gateway's linger.ts): every bundle is a
   * Publish call, so a gateway that sees T light types makes up to T / this calls a second. At 300
   * types and 100 ms that is 3,000 calls/s, 0.4-0.7 of a core on calls alone; at 250 ms 1,200
   * (docs/capacity.md, Publish calls). Adds at most this to light types' answers; dense types keep
   * bundleLinger. At or below bundleLinger the linger never grows.
   */
  bundleMaxLinger: ms(250),
  /**
   * Events a longer linger tries to gather: a Publish call costs the gateway 125-145 µs of CPU alone
   * (bench/publish-call.js) and ~220 µs in use, so at 100 events it adds 1.3-2.2 µs per event
   * against ~3 µs for the rest of an event's work.
   */
  bundleLingerTargetEvents: 100,
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
  /** How long a browser may cache a CORS preflight answer (Chromium caps it at 2 h, Firefox at 24 h). */
  corsMaxAge: seconds(600),
  /** Interface the gateway binds; all interfaces so containers work (API keys are on by default). */
  gatewayHost: '0.0.0.0',
  /** How often the gateway re-checks that every topic exists (for /readyz). */
  readinessInterval: seconds(10),
  /** Pub/Sub client batch size in messages; our bundles already batch events, so keep it small. */
  pubsubBatchMaxMessages: 10,
  /** Pub/Sub client batch delay; must stay far below bundleLinger + answer latency budget. */
  pubsubBatchMaxDelay: ms(1),
  /** Time to receive a whole request body; shields against slow uploads holding sockets. */
  requestReceiveTimeout: seconds(30),
  /** Pub/Sub client in a worker thread: a third less request-thread CPU, but +60 MB RSS and more CPU in total; off on 2 shared cores (bench/gateway.js). */
  publishInWorker: false,

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
  /** ...or this age: bounds how long a message is held before its ack (receive → staged p99 < 2 s). */
  stageMaxAge: seconds(1),
  /** Read subscriptions with unary Pull RPCs: the mode whose redelivery after a kill the tests can check (unary-pull.ts). */
  pullMode: 'unary' as 'unary' | 'streaming',
  /** Messages per Pull request (Pub/Sub's maximum is 1,000; a message is a bundle of up to 500 events). */
  pullBatchMessages: 1000,
  /**
   * HTTP/2 receive window of the consumer's Pub/Sub channels (grpc-js's default is 64 KiB). A
   * Pull answer is up to 1,000 bundles, 11 MB for bundles of 100 events: with 64 KiB windows the
   * server waited for a window update every 64 KiB, and the updates waited for the stager, so the
   * emulator and the stager took turns. 16 MiB: 448,000–513,000 against 380,000–399,000 events/s
   * drained, 1.85–2.09 against 2.26–2.46 µs of CPU per event (bench/consumer.js, 4 M events, 4 runs
   * each). What the answers hold is bounded by the flow budget, not by this window.
   */
  pullFlowControlWindow: 16 * 1024 * 1024,
  /**
   * Client deadline of one long-polling Pull. Long, because a deadline that fires cancels the call,
   * and the emulator then keeps messages it had just handed to it for ~60 s (and a process frozen
   * past it would drop an answer already on its socket); Cloud Pub/Sub answers empty sooner.
   */
  pullWait: minutes(5),
  /** Unacked messages held by one consumer process, over all its subscriptions: keeps memory bounded whatever the backlog. */
  flowMaxMessages: 2_000,
  /** Unacked bytes held by one consumer process, over all its subscriptions. */
  flowMaxBytes: 128 * 1024 * 1024,
  /** Watermark lease lifetime; a replica that stops renewing is presumed dead after this plus the ack deadline. */
  leaseTtl: seconds(30),
  /** How often watermarks and leases are written and windows checked for closing. */
  tick: seconds(1),
  /**
   * A replica reads a type's closed cursor this often, and while a close of it is due at once,
   * then 1, 2, 4 … s apart up to this: the fleet's cursor reads do not grow with types × replicas × ticks.
   */
  cursorRefresh: seconds(30),
  /**
   * Liveness: no tick completed for this long (at least 10 ticks) means the tick loop is stalled.
   * Longer than a few store requests timing out in a row, so a store outage alone never trips it.
   */
  tickStallAfter: minutes(5),
  /** Liveness: a streaming pull closed for good and not reopened for this long. */
  pullDeadAfter: minutes(5),
  /**
   * Early finalize segments per window: the closer writes the part files of what was staged at
   * 1/3 and 2/3 of a window (by watermark) and at its end, so the close after the grace has only
   * the stragglers; at 100,000 events/s a one-minute window's close took 10–12 s without.
   * Each segment ends a part file: a window has at least this many. 0 turns early finalize off.
   */
  earlySegments: 3,
  /**
   * Least staged bytes an early segment before the window's end takes; fewer wait for the next
   * segment (the one at the end takes any). A segment costs a plan, part files and their syncs
   * whatever it holds: at 255 types and 75,000 events/s (2 MB one-minute windows), three segments a
   * window were 883 jobs and 197 s of finalize time per run (bench/e2e.js). 8 MiB is ~150 ms of a
   * close's work.
   */
  earlySegmentMinBytes: 8 * 1024 * 1024,
  /**
   * Finalize gives way to staging while messages reach the consumer this long after the gateway
   * took their oldest event, less the type's steady wait in the gateway (stage/receive-lag.ts):
   * with the 1 s stage age and the write, half a second keeps receive → staged within the 2 s
   * target. 0 turns the pacer off.
   */
  finalizeYieldLag: ms(500),
  /** Percent of the time finalize keeps while it gives way: a floor, so closes still move under a lasting backlog. */
  finalizeYieldSharePercent: 25,
  /** How long one late message keeps finalize slowed: a few stage ages, so it does not flap per Pull. */
  finalizeYieldHold: seconds(2),
  /** Longest pause between two finalize chunks (a chunk's time includes its reads). */
  finalizeYieldMaxPause: ms(200),
  /**
   * Finalize work between two yields to staging: staging waits at most about this long for a
   * turn. At 255 types a staged file's hash-group block holds ~5 events, and a turn per block
   * made finalize 7x slower per event than in a quiet process (bench/e2e.js, 255 types).
   */
  finalizeYieldSlice: ms(5),
  /**
   * Finalize jobs of at most finalizeSharedBytes run this many at once (close/finalize-queue.ts).
   * A small window's close is mostly waits for the store: at 255 types, closed one at a time,
   * the closes of one window end were still running when the next window ended.
   */
  finalizeConcurrency: 4,
  /** A finalize job reading more staged bytes than this runs alone (its ids, reads and CPU are a large window's). */
  finalizeSharedBytes: 8 * 1024 * 1024,
  /**
   * Cross-window dedup: a client re-sends an unanswered event with the same id, and the gateway
   * stamps the copy with a new `gateway_ts`, so it may land in the next window. Finalize drops an
   * on-time record whose id a closed window stored up to this long before it. The Hourglass client
   * re-sends for at most its deadline (60 s). The closer keeps this much of the last closed window's
   * ids in memory (at 100,000 events/s, 6 M ids); at most one window long avoids reading files back.
   */
  dedupHorizon: minutes(1),
  /**
   * Staged bytes per finalize shard: a window with more is deduplicated and written in
   * ceil(bytes / this) shards by a hash of event_id, spilled to local disk (TMPDIR) and each
   * held alone, so finalize memory follows this setting, not the window: ≈ 1.2 M track_played
   * events per shard, and a 20 M-event window peaked at 325–332 MB instead of 1,585 MB, for 35–65%
   * more CPU (bench/finalize-memory.js). Smaller windows keep the one-pass finalize and its bytes.
   */
  finalizeShardBytes: 128 * 1024 * 1024,
  /**
   * Staged files a finalize reads ahead of the one it scans (finalize/read-ahead.ts): a close of
   * 60 small files read one at a time spent most of its time waiting for the store, and on GCS a
   * read is a round trip of tens of milliseconds.
   */
  finalizeReadAheadFiles: 8,
  /** Planned bytes of those reads at most (memory: staged files are up to stageMaxBytes each). */
  finalizeReadAheadBytes: 32 * 1024 * 1024,
  /**
   * Where a sharded finalize keeps its shards: `local` spills them to TMPDIR (each staged byte read
   * once from the store); `none` rereads the staged files once per shard (shards + 1 reads), for
   * hosts whose filesystem is memory, as Cloud Run's is (infra/ sets it there).
   */
  finalizeSpill: 'local' as 'local' | 'none',
  /**
   * A window over the shard target becomes shard jobs that any replica may claim and run, so its
   * close spreads over the fleet; off, the closer writes every shard itself (finalizeSpill says how).
   */
  finalizeShardJobs: true,
  /**
   * How long a claim on a shard job holds without renewal (renewed every third of it): a replica
   * that dies mid-job has its shard taken over this long after its last renewal.
   */
  finalizeShardClaim: seconds(30),
  /** How often the closer checks for other replicas' shard results, and every replica for announced shard jobs. */
  finalizeShardPoll: seconds(1),
  /** Target size of a final Avro file. */
  finalFileBytes: 256 * 1024 * 1024,
  /** Avro container block size (records per block) in staged and final files. */
  avroBlockBytes: 64 * 1024,
  /** No message for this long and nothing held: the replica is idle and its watermark may follow the clock. */
  idleAfter: seconds(5),
  /** Longest the Pub/Sub client extends a held message; staging takes seconds, so more means something is stuck. */
  maxAckExtension: minutes(10),
  /**
   * Deflate level of staged files; 0 writes them uncompressed (Avro's null codec). They are
   * written and read once within the hour, and at level 1 compressing and inflating them cost
   * about 1 µs of CPU per event, a tenth of a core at 100,000 events/s.
   */
  stageDeflateLevel: 0,
  /**
   * Deflate level of final files, recorded in the finalize plan so a rerun reproduces the same
   * bytes. Level 1 compresses 2.5 times faster than 6 (0.8 against 2.0 µs per event) for
   * files 5% larger (ratio 0.363 against 0.346 on track_played).
   */
  finalDeflateLevel: 1,
  /** During a shutdown, attempts to write one staged file before its messages are nacked (otherwise a write is retried until it succeeds). */
  stageWriteAttempts: 3,
  /** Windows one closer finalizes per tick: a long outage catches up over several ticks, leases keep renewing. */
  maxClosesPerTick: 50,
  /**
   * How often a closer walks `_staging/<type>/` for windows with staged data once it has a cursor:
   * only leftovers at or before the cursor need it, and the walk costs requests on every tick.
   */
  stagingScanInterval: seconds(10),
  /**
   * A dead replica's messages come back after their ack deadline plus Pub/Sub's redelivery delay: its
   * stale lease holds the watermark this much longer. With unary pull the emulator redelivers at the
   * deadline; the margin covers Cloud Pub/Sub's best-effort timing. Later arrivals are late, not lost.
   * The same bound holds a replica's own watermark after a failed Pull, whose lost answer may have
   * held messages (source/unary-pull.ts).
   */
  redeliveryAllowance: seconds(60),
  /** Largest inflated Pub/Sub bundle a decoder accepts: far above bundleMaxBytes, refuses a deflate bomb. */
  maxInflatedBundleBytes: 64 * 1024 * 1024,
  /**
   * Oldest `meta.gateway_ts` the consumer stages, behind its clock: a subscription keeps a message
   * at most 7 days (`retention`, Pub/Sub's maximum), plus an hour for the publish delay and clock
   * skew. No gateway can have published anything older that is still deliverable; staging it would
   * open a window that starts closing there (1970 for a gateway_ts of 0). It is dead-lettered.
   */
  maxEventAge: minutes(7 * 24 * 60 + 60),
  /** Furthest a `meta.gateway_ts` may be ahead of the consumer's clock (gateway clock skew); beyond it, dead-lettered. */
  maxEventAhead: minutes(60),

  // --- object store ---
  /**
   * Bound on one GCS request with its retries (HOURGLASS_STORE_TIMEOUT); past it the store call
   * fails STORAGE_UNAVAILABLE instead of hanging. Half the ack deadline: a stage write that
   * times out, plus the read that checks whether it landed, still ends before its messages expire.
   */
  storeTimeout: seconds(30),
  /** Deletes in flight at once in deleteMany (HOURGLASS_STORE_DELETE_PARALLELISM): GCS has no batch delete in the JSON client. */
  storeDeleteParallelism: 16,

  // --- object store (GCS) ---
  /** Uploads above this size use a resumable session, so a failed chunk is resent alone; smaller ones go in one request. */
  gcsResumableThreshold: 8 * 1024 * 1024,
  /** Resumable chunk: GCS recommends >= 8 MiB (a multiple of 256 KiB); the client buffers one chunk to resend it. */
  gcsChunkSize: 8 * 1024 * 1024,
  /** Retries of one GCS request by the client library before the store reports STORAGE_UNAVAILABLE. */
  gcsMaxRetries: 5,
  /** Longest backoff between two retries (the library doubles from 1 s up to this). */
  gcsMaxRetryDelay: seconds(8),
  /** Objects per list request: GCS's maximum page, fewest round trips. */
  gcsListPageSize: 1000,

  // --- status page ---
  /**
   * How long the consumer's /status page reuses one read of the store: every view within it costs
   * no store read, so a page left open (it reloads every 15 s) or many viewers cost one refresh.
   */
  statusCacheTtl: seconds(5),
  // --- closed-window notices ---
  /** The closer publishes a notice per closed window to `<prefix>-closed` (HOURGLASS_CLOSED_NOTICES). */
  closedNotices: true,

  // --- traces ---
  /**
   * Share of new traces recorded when tracing is on (HOURGLASS_TRACE_SAMPLE_RATIO): 1% shows
   * every path of a busy pipeline within minutes while costing little CPU (make bench measures it).
   */
  traceSampleRatio: 0.01,
  /** Spans kept per window for the finalize span's links (each a staged write of a sampled trace). */
  traceLinksPerWindow: 32,
} as const;

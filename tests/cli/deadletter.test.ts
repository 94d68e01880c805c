import { type IntervalWindow, manifestName } from '@hourglass/bucket-format';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { v1 } from '@google-cloud/pubsub';
import { provisionTopology } from '@hourglass/cli';
import { Defaults, resourceNames, seconds } from '@hourglass/common';
import { SchemaRegistry, encodeRecords } from '@hourglass/schemas';
import { LocalDirectoryStore } from '@hourglass/storage';
import { subscriberClientFor } from '@hourglass/consumer';
import {
  MINUTE,
  auditType,
  countAgainst,
  generateBundles,
  makeRecord,
  newPubSub,
  publishBundles,
  publishRaw,
  tempDir,
  uniquePrefix,
  type PublishedEvent,
} from '../consumer/support';
import { type ConsumerProcess, fastProcessEnv, killAll, spawnConsumer, waitFor } from '../consumer/process-support';
import { cliEnv, runCli } from './support';

/**
 * Dead-letter replay with a real fix (issue #17.3): events of a schema version the consumer does
 * not know are dead-lettered (store records, and one message Pub/Sub gave up delivering sits in
 * the keep subscription); the version is added, `hourglass deadletter replay` re-publishes each
 * once (a second run publishes nothing), and every replayed event lands once, counted late, in a
 * window closed after the replay. A message no schema decodes stays "still failing".
 */
jest.setTimeout(360_000);

const TYPE = 'track_played';
const pubsub = newPubSub();
const logDir = tempDir('deadletter-logs');
afterEach(() => killAll());
afterAll(() => pubsub.close());

/** A copy of schemas/ and, beside it, the same plus track_played v3 (a new field with a default). */
function schemaDirs(): { current: string; v3File: string; fixed: SchemaRegistry } {
  const current = tempDir('dl-schemas');
  cpSync('schemas', current, { recursive: true });
  const withV3 = tempDir('dl-schemas-v3');
  cpSync('schemas', withV3, { recursive: true });
  const v2 = JSON.parse(readFileSync(join('schemas', TYPE, 'v2.avsc'), 'utf8')) as { doc: string; fields: unknown[] };
  const v3 = {
    ...v2,
    doc: `${v2.doc} v3 adds volume.`,
    fields: [...v2.fields, { name: 'volume', type: 'int', default: 100 }],
  };
  const v3File = join(withV3, TYPE, 'v3.avsc');
  writeFileSync(v3File, `${JSON.stringify(v3, null, 2)}\n`);
  return { current, v3File, fixed: SchemaRegistry.load(withV3) };
}

/** Pulls the one message on the consumer subscription and nacks it until Pub/Sub dead-letters it. */
async function exhaustDeliveries(prefix: string): Promise<void> {
  const client: v1.SubscriberClient = await subscriberClientFor(pubsub);
  const subscription = pubsub.subscription(resourceNames(prefix, TYPE).subscription).name;
  const keep = pubsub.subscription(resourceNames(prefix, TYPE).deadLetterSubscription);
  try {
    await waitFor(
      async () => {
        const [answer] = await client.pull({ subscription, maxMessages: 10, returnImmediately: true });
        const ackIds = (answer.receivedMessages ?? []).map((m) => m.ackId!);
        if (ackIds.length > 0) await client.modifyAckDeadline({ subscription, ackIds, ackDeadlineSeconds: 0 });
        return ackIds.length === 0 && (await keepHoldsOne(client, keep.name));
      },
      'the message in the keep subscription',
      { timeoutMs: 90_000, intervalMs: 300 },
    );
  } finally {
    await client.close();
  }
}

async function keepHoldsOne(client: v1.SubscriberClient, subscription: string): Promise<boolean> {
  const [answer] = await client.pull({ subscription, maxMessages: 10, returnImmediately: true });
  const ackIds = (answer.receivedMessages ?? []).map((m) => m.ackId!);
  if (ackIds.length > 0) await client.modifyAckDeadline({ subscription, ackIds, ackDeadlineSeconds: 0 });
  return ackIds.length === 1;
}

/** A counter of the consumer's /metrics for TYPE, summed over its series; 0 while it has none. */
async function consumerCounter(consumer: ConsumerProcess, name: string): Promise<number> {
  let port = 0;
  await waitFor(
    () => (port = Number(/"port":(\d+)/.exec(consumer.log())?.[1] ?? 0)) > 0,
    `${consumer.replicaId} listening`,
  );
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(text).toMatch(/^hourglass_consumer_held_events\{/m); // the consumer's exposition, not an empty page
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*event_type="${TYPE}"[^}]*\\} (\\d+)$`, 'gm'))) {
    sum += Number(m[1]);
  }
  return sum;
}

test('unknown schema version: dead-lettered, version added, replayed once, found late in a closed window', async () => {
  const prefix = uniquePrefix();
  await provisionTopology({
    projectId: Defaults.projectId,
    prefix,
    eventTypes: [TYPE],
    ackDeadline: seconds(10),
    maxDeliveryAttempts: 5,
  });
  const { current, v3File, fixed } = schemaDirs();
  const v3 = fixed.get(TYPE).latest;
  expect(v3.version).toBe(3);
  const base = Math.floor(Date.now() / MINUTE) * MINUTE - 6 * MINUTE;
  const unknown: PublishedEvent[] = [];
  const v3Bundle = (n: number, at: number): ReturnType<typeof encodeRecords> => {
    const records = Array.from({ length: n }, (_, i) => {
      const id = crypto.randomUUID();
      unknown.push({ id, ts: at + i });
      return { ...makeRecord(fixed.get(TYPE).versions[1]!, id, at + i, i), volume: 80 };
    });
    return encodeRecords(v3, records);
  };
  // one v3 message that Pub/Sub itself dead-letters (nobody acks it within 5 deliveries)
  const toKeep = v3Bundle(3, base + MINUTE);
  await publishRaw(pubsub, prefix, TYPE, toKeep.data, toKeep.attributes);
  await exhaustDeliveries(prefix);

  const published: PublishedEvent[] = [];
  const { bundles, distinct } = generateBundles(SchemaRegistry.load(current), TYPE, {
    events: 1500,
    start: base,
    spanMs: 3 * MINUTE,
    maxBundle: 100,
    dupRate: 0,
    seed: 71,
  });
  await publishBundles(pubsub, prefix, TYPE, bundles);
  published.push(...distinct);
  for (let i = 0; i < 20; i++) {
    const b = v3Bundle(5, base + MINUTE + i * 1000);
    await publishRaw(pubsub, prefix, TYPE, b.data, b.attributes);
  }
  // no schema will ever decode this one
  await publishRaw(pubsub, prefix, TYPE, Buffer.from('not avro'), {
    event_type: TYPE,
    schema_fingerprint: 'f'.repeat(64),
  });

  const root = tempDir('deadletter');
  const store = new LocalDirectoryStore(root);
  const env = { ...fastProcessEnv(root, prefix, TYPE), HOURGLASS_SCHEMAS_DIR: current };
  const windows = [0, 1, 2].map((i): IntervalWindow => ({ start: base + i * MINUTE, end: base + (i + 1) * MINUTE }));
  const first = spawnConsumer('d1', env, logDir);
  await waitFor(
    async () =>
      (await store.list(`_deadletter/${TYPE}/`)).length === 21 &&
      (await Promise.all(windows.map((w) => store.exists(manifestName(TYPE, w))))).every(Boolean),
    '21 dead letters and windows 0..2 closed',
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  await first.kill('SIGTERM');
  const cli = (command: string, ...args: string[]): ReturnType<typeof runCli> =>
    runCli(['deadletter', command, TYPE, ...args, '--store', root, '--prefix', prefix, '--dir', current], cliEnv());

  const ls = await cli('ls', '--json');
  expect(ls.code).toBe(0);
  const listed = ls.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { source: string; id: string; reason: { code: string } });
  expect(listed.filter((l) => l.source === 'store')).toHaveLength(21);
  expect(listed.filter((l) => l.source === 'pubsub')).toHaveLength(1);
  expect(listed.filter((l) => l.reason.code === 'SCHEMA_UNKNOWN_FINGERPRINT')).toHaveLength(21);
  const shown = await cli('show', listed.find((l) => l.source === 'pubsub')!.id);
  expect(shown.code).toBe(0);
  expect(JSON.parse(shown.stdout)).toMatchObject({
    source: 'pubsub',
    reason: { code: 'MAX_DELIVERY_ATTEMPTS' },
    nowDecodes: false,
  });

  const before = await cli('replay');
  expect(before.stdout).toContain('0 replayed, 0 already replayed, 22 still failing');
  expect(before.code).toBe(1);

  // the fix: the consumer (restarted) and the replay learn v3
  cpSync(v3File, join(current, TYPE, 'v3.avsc'));
  const second = spawnConsumer('d2', env, logDir);
  expect(await consumerCounter(second, 'hourglass_consumer_events_replayed_total')).toBe(0);
  const replay = await cli('replay');
  expect(replay.stdout).toContain('21 replayed, 0 already replayed, 1 still failing');
  const again = await cli('replay');
  expect(again.stdout).toContain('0 replayed, 20 already replayed, 1 still failing');
  expect((await cli('ls', '--source', 'pubsub', '--json')).stdout.trim()).toBe(''); // settled

  await waitFor(
    async () => countAgainst(await auditType(store, TYPE, MINUTE), unknown).lost === 0,
    'every replayed event in a closed window',
    { timeoutMs: 150_000, intervalMs: 1000 },
  );
  // every replayed message marked and counted once: 20 store records of 5 events, 1 keep message of 3
  expect(await consumerCounter(second, 'hourglass_consumer_events_replayed_total')).toBe(103);
  expect(await consumerCounter(second, 'hourglass_consumer_messages_replayed_total')).toBe(21);
  await second.kill('SIGTERM');
  const audit = await auditType(store, TYPE, MINUTE);
  expect(audit.problems).toEqual([]);
  expect(countAgainst(audit, [...published, ...unknown])).toEqual({
    expected: 1500 + 103,
    present: 1500 + 103,
    lost: 0,
    duplicated: 0,
    unexpected: 0,
  });
  const unknownIds = new Set(unknown.map((e) => e.id));
  const late = audit.windows.flatMap((w) => w.records).filter((r) => unknownIds.has(r.id));
  expect(late.every((r) => r.late)).toBe(true);
  const lateWindows = audit.windows.filter((w) => w.records.some((r) => unknownIds.has(r.id)));
  expect(lateWindows.every((w) => w.manifest.window.startMs > windows[1]!.start && w.manifest.counts.late >= 1)).toBe(
    true,
  );
});

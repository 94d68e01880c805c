import {
  type Manifest,
  type IntervalWindow,
  manifestName,
  parseManifest,
  serializeManifest,
  windowFields,
} from '@hourglass/bucket-format';
import { sha256Hex as sha256 } from '@hourglass/common';
import { v1 } from '@google-cloud/pubsub';
import { provisionTopology } from '@hourglass/cli';
import { Defaults, closedNoticeTopic, seconds, silentLogger } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { LocalDirectoryStore, type ObjectStore } from '@hourglass/storage';
import {
  ClosedWindowNotifier,
  type ClosedNotice,
  noticeIdOf,
  noticePrefix,
  subscriberClientFor,
} from '@hourglass/consumer';
import {
  MINUTE,
  auditType,
  countAgainst,
  generateBundles,
  newPubSub,
  publishBundles,
  tempDir,
  uniquePrefix,
  type PublishedEvent,
} from './support';
import { fastProcessEnv, killAll, spawnConsumer, waitFor } from './process-support';

/**
 * Closed-window notices (issue #17.1): a downstream subscription on `<prefix>-closed`, created
 * before the pipeline runs, receives exactly one notice per closed window (empty ones too), with
 * the manifest's path and sha256, through a consumer SIGKILLed between publishing a window and
 * announcing it; a notice left pending in the store by a closer that stopped is sent by the next.
 */
jest.setTimeout(180_000);

const TYPE = 'track_played';
const registry = SchemaRegistry.load('schemas');
const pubsub = newPubSub();
const logDir = tempDir('notices-logs');
afterEach(() => killAll());
afterAll(() => pubsub.close());

interface Received {
  attributes: Record<string, string>;
  notice: ClosedNotice;
}

/** Pulls the subscription until two Pulls in a row return nothing, acking everything. */
async function drain(subscription: string): Promise<Received[]> {
  const client: v1.SubscriberClient = await subscriberClientFor(pubsub);
  const name = pubsub.subscription(subscription).name;
  const out: Received[] = [];
  try {
    for (let empty = 0; empty < 2;) {
      const [answer] = await client.pull({ subscription: name, maxMessages: 100, returnImmediately: true });
      const messages = answer.receivedMessages ?? [];
      if (messages.length === 0) {
        empty++;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      empty = 0;
      for (const m of messages) {
        out.push({
          attributes: (m.message?.attributes ?? {}) as Record<string, string>,
          notice: JSON.parse(Buffer.from(m.message!.data as Uint8Array).toString('utf8')) as ClosedNotice,
        });
      }
      await client.acknowledge({ subscription: name, ackIds: messages.map((m) => m.ackId!) });
    }
  } finally {
    await client.close();
  }
  return out;
}

async function manifests(store: ObjectStore): Promise<Map<string, Manifest & { sha: string }>> {
  const out = new Map<string, Manifest & { sha: string }>();
  for (const o of await store.list(`${TYPE}/`)) {
    if (!o.name.endsWith('/_SUCCESS')) continue;
    const bytes = (await store.get(o.name))!;
    out.set(o.name, { ...parseManifest(bytes, o.name), sha: sha256(bytes) });
  }
  return out;
}

async function downstream(prefix: string): Promise<string> {
  const name = `${prefix}-closed-downstream`;
  await pubsub.topic(closedNoticeTopic(prefix)).createSubscription(name, { ackDeadlineSeconds: 60 });
  return name;
}

test('SIGKILL between publishing a window and announcing it: one notice per closed window, none missing', async () => {
  const prefix = uniquePrefix();
  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [TYPE], ackDeadline: seconds(10) });
  const subscription = await downstream(prefix); // the downstream job subscribes before the pipeline runs
  const root = tempDir('notices');
  const store = new LocalDirectoryStore(root);
  const base = Math.floor(Date.now() / MINUTE) * MINUTE - 8 * MINUTE;
  const published: PublishedEvent[] = [];
  // windows 0, 1 and 3 hold events; window 2 and those after 3 (up to now) close empty
  for (const [start, spanMs, seed] of [
    [base, 2 * MINUTE, 51],
    [base + 3 * MINUTE, MINUTE, 52],
  ] as const) {
    const { bundles, distinct } = generateBundles(registry, TYPE, {
      events: 1500,
      start,
      spanMs,
      maxBundle: 100,
      dupRate: 0.03,
      seed,
    });
    await publishBundles(pubsub, prefix, TYPE, bundles);
    published.push(...distinct);
  }
  const env = fastProcessEnv(root, prefix, TYPE);
  const crashing = spawnConsumer('n1', { ...env, HOURGLASS_TEST_CRASH_AFTER: 'published' }, logDir);
  expect((await crashing.exited).signal).toBe('SIGKILL');
  // the first window is published, and nobody was told
  expect([...(await manifests(store)).keys()]).toHaveLength(1);
  expect(await drain(subscription)).toEqual([]);

  const rerun = spawnConsumer('n2', env, logDir);
  const windows = [0, 1, 2, 3].map((i): IntervalWindow => ({ start: base + i * MINUTE, end: base + (i + 1) * MINUTE }));
  await waitFor(
    async () => {
      for (const w of windows) if (!(await store.exists(manifestName(TYPE, w)))) return false;
      return countAgainst(await auditType(store, TYPE, MINUTE), published).present === published.length;
    },
    'the four windows closed with every event',
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  const port = Number(/"port":(\d+)/.exec(rerun.log())?.[1]);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(await rerun.kill('SIGTERM')).toEqual({ code: 0, signal: null }); // its stop sends what is pending

  const closed = await manifests(store);
  const received = await drain(subscription);
  const byManifest = new Map<string, number>();
  for (const r of received) byManifest.set(r.notice.manifest.path, (byManifest.get(r.notice.manifest.path) ?? 0) + 1);
  expect(closed.size).toBeGreaterThanOrEqual(4); // windows 0..3, and the empty ones after them closed so far
  expect([...byManifest.keys()].sort()).toEqual([...closed.keys()].sort()); // none missing, none unknown
  expect([...byManifest.values()].every((n) => n === 1)).toBe(true); // exactly one each
  for (const { attributes, notice } of received) {
    const m = closed.get(notice.manifest.path)!;
    const window = { start: m.window.startMs, end: m.window.endMs };
    expect(notice.manifest.sha256).toBe(m.sha);
    expect(attributes.notice_id).toBe(noticeIdOf(TYPE, window, m.sha));
    expect(notice).toMatchObject({
      type: 'window.closed',
      eventType: TYPE,
      window: m.window,
      partition: m.partition,
      empty: m.counts.records === 0,
      counts: { records: m.counts.records, late: m.counts.late, duplicatesDropped: m.counts.duplicatesDropped },
      files: m.files.map((f) => ({ path: f.path, late: f.late, records: f.records, bytes: f.bytes, sha256: f.sha256 })),
    });
    expect(notice.uri).toBe(`${store.url}/${m.partition}/`);
  }
  expect(received.some((r) => r.notice.window.startMs === windows[2]!.start && r.notice.empty)).toBe(true);
  expect(await store.list(noticePrefix(TYPE))).toEqual([]); // nothing left pending
  const sent = /hourglass_consumer_notices_published_total\{[^}]*\} (\d+)/.exec(metrics);
  expect(Number(sent?.[1])).toBeGreaterThanOrEqual(4);
});

test('a notice left pending by a closer that could not publish is sent once by the next closer', async () => {
  const prefix = uniquePrefix();
  const store = new LocalDirectoryStore(tempDir('notices-pending'));
  const w = { start: Date.UTC(2026, 0, 1, 10), end: Date.UTC(2026, 0, 1, 11) };
  const manifest: Manifest = {
    manifestVersion: 1,
    eventType: TYPE,
    window: windowFields(w),
    partition: `${TYPE}/dt=2026-01-01/hour=10`,
    schema: { fingerprint: 'f', version: 2 },
    files: [],
    counts: {
      records: 0,
      onTime: 0,
      late: 0,
      duplicatesDropped: 0,
      duplicatesOfClosedWindows: 0,
      stagedFiles: 0,
      stagedRecords: 0,
    },
    gatewayTs: { min: null, max: null },
    closedBy: { watermark: w.end, watermarkIso: new Date(w.end).toISOString(), graceMs: 0 },
  };
  const bytes = serializeManifest(manifest);
  await store.createIfAbsent(manifestName(TYPE, w), bytes);
  const options = {
    store,
    logger: silentLogger,
    topic: closedNoticeTopic(prefix),
    pubsub: { projectId: Defaults.projectId },
    retryMs: 50,
  };

  // the topic does not exist yet: the publish fails, the notice stays pending in the store
  const first = new ClosedWindowNotifier(options);
  await first.closed(TYPE, w);
  await waitFor(() => first.pendingCount() === 1 && first.failures() > 0, 'a failed publish');
  await first.stop();
  expect((await store.list(noticePrefix(TYPE))).length).toBe(1);

  await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: [] });
  const subscription = await downstream(prefix);
  const next = new ClosedWindowNotifier(options);
  next.resume(TYPE);
  next.resume(TYPE); // once per process
  await waitFor(async () => (await store.list(noticePrefix(TYPE))).length === 0, 'the pending notice sent');
  await next.stop();
  const received = await drain(subscription);
  expect(received).toHaveLength(1);
  expect(received[0]!.attributes).toMatchObject({
    notice_type: 'window.closed',
    event_type: TYPE,
    window_start: '2026-01-01T10:00:00.000Z',
    notice_id: noticeIdOf(TYPE, w, sha256(bytes)),
    records: '0',
  });
  expect(received[0]!.notice).toMatchObject({
    empty: true,
    manifest: { path: manifestName(TYPE, w), sha256: sha256(bytes) },
  });
});

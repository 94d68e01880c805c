import { PubSub, v1 } from '@google-cloud/pubsub';
import { HourglassError, isHourglassError, resourceNames } from '@hourglass/common';
import { Attr, type SchemaRegistry, decodeBundle } from '@hourglass/schemas';
import type { ObjectStore } from '@hourglass/storage';
import { DEADLETTER, REPLAYED } from '@hourglass/bucket-format';

/**
 * Dead letters of a type from both places they wait: the store's `_deadletter/<type>/` records
 * (messages the consumer could not decode, acked) and the Pub/Sub dead-letter topic's keeping
 * subscription `<prefix>-<type>-deadletter-keep` (messages Pub/Sub gave up delivering). Replay
 * re-publishes each one that now decodes to the type's topic (marked `replay_of`) and records it in
 * `_deadletter/<type>/_replayed/`, so a second run does not publish it again.
 */

export type DeadLetterSource = 'store' | 'pubsub';

export interface DeadLetter {
  source: DeadLetterSource;
  /** The dead-lettered message's Pub/Sub message id (as the store record or the keep subscription has it). */
  id: string;
  /** Store records: the object name. */
  object?: string;
  receivedAt: string | null;
  reason: { code: string; message: string };
  attributes: Record<string, string>;
  data: Buffer;
  replayed?: ReplayRecord;
  /** Keep-subscription messages: the ack id of this pull. */
  ackId?: string;
}

export interface ReplayRecord {
  source: DeadLetterSource;
  id: string;
  replayedAt: string;
  topic: string;
  /** The message id the replayed copy got on the topic. */
  messageId: string;
}

export interface DeadLetterAccess {
  store: ObjectStore;
  eventType: string;
  projectId: string;
  prefix: string;
  sources: readonly DeadLetterSource[];
}

/** Pub/Sub's own attributes on a forwarded dead letter; not part of the original message. */
const PUBSUB_DEAD_LETTER_ATTRIBUTE = /^CloudPubSubDeadLetter/;

export function replayRecordName(eventType: string, source: DeadLetterSource, id: string): string {
  return `${DEADLETTER}/${eventType}/${REPLAYED}/${source}-${id.replace(/[^A-Za-z0-9._-]/g, '_')}.json`;
}

async function replayRecordOf(
  store: ObjectStore,
  eventType: string,
  source: DeadLetterSource,
  id: string,
): Promise<ReplayRecord | undefined> {
  const data = await store.get(replayRecordName(eventType, source, id));
  return data ? (JSON.parse(data.toString('utf8')) as ReplayRecord) : undefined;
}

/** The store's dead-letter records of a type, oldest day first. */
export async function storeDeadLetters(store: ObjectStore, eventType: string): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  const prefix = `${DEADLETTER}/${eventType}/`;
  for (const o of await store.list(prefix)) {
    if (!o.name.endsWith('.json') || o.name.startsWith(`${prefix}${REPLAYED}/`)) continue;
    const body = (await store.get(o.name))?.toString('utf8');
    if (!body) continue;
    const r = JSON.parse(body) as {
      messageId: string;
      receivedAt?: string;
      reason?: { code: string; message: string };
      attributes?: Record<string, string>;
      dataBase64: string;
    };
    const replayed = await replayRecordOf(store, eventType, 'store', r.messageId);
    out.push({
      source: 'store',
      id: r.messageId,
      object: o.name,
      receivedAt: r.receivedAt ?? null,
      reason: r.reason ?? { code: 'INTERNAL', message: 'no reason recorded' },
      attributes: r.attributes ?? {},
      data: Buffer.from(r.dataBase64, 'base64'),
      ...(replayed ? { replayed } : {}),
    });
  }
  return out;
}

/** The keep subscription read with unary Pulls until it answers empty; messages stay leased until settled. */
export class KeepSubscription {
  private readonly pubsub: PubSub;
  private client: v1.SubscriberClient | undefined;
  readonly name: string;

  constructor(private readonly access: DeadLetterAccess) {
    this.pubsub = new PubSub({ projectId: access.projectId });
    this.name = this.pubsub.subscription(resourceNames(access.prefix, access.eventType).deadLetterSubscription).name;
  }

  private async subscriber(): Promise<v1.SubscriberClient> {
    if (!this.client) {
      const { port, ...rest } = await this.pubsub.getClientConfig();
      this.client = new v1.SubscriberClient({ ...rest, ...(port !== undefined ? { port: Number(port) } : {}) });
    }
    return this.client;
  }

  async pullAll(): Promise<DeadLetter[]> {
    const client = await this.subscriber();
    const out: DeadLetter[] = [];
    for (let empty = 0; empty < 2;) {
      const [answer] = await client.pull({ subscription: this.name, maxMessages: 1000, returnImmediately: true });
      const received = answer.receivedMessages ?? [];
      empty = received.length === 0 ? empty + 1 : 0;
      for (const m of received) {
        const all = (m.message?.attributes ?? {}) as Record<string, string>;
        const attributes = Object.fromEntries(
          Object.entries(all).filter(([k]) => !PUBSUB_DEAD_LETTER_ATTRIBUTE.test(k)),
        );
        const id = m.message?.messageId ?? '';
        const replayed = await replayRecordOf(this.access.store, this.access.eventType, 'pubsub', id);
        const publish = m.message?.publishTime?.seconds;
        out.push({
          source: 'pubsub',
          id,
          ackId: m.ackId ?? '',
          receivedAt: publish !== undefined && publish !== null ? new Date(Number(publish) * 1000).toISOString() : null,
          reason: {
            code: 'MAX_DELIVERY_ATTEMPTS',
            message: `not acked after ${all.CloudPubSubDeadLetterSourceDeliveryCount ?? '?'} deliveries on ${all.CloudPubSubDeadLetterSourceSubscription ?? '?'}`,
          },
          attributes,
          data: Buffer.from(m.message?.data ?? new Uint8Array()),
          ...(replayed ? { replayed } : {}),
        });
      }
    }
    return out;
  }

  async ack(letters: readonly DeadLetter[]): Promise<void> {
    const ackIds = letters.map((l) => l.ackId!).filter(Boolean);
    if (ackIds.length > 0) await (await this.subscriber()).acknowledge({ subscription: this.name, ackIds });
  }

  /** Hands messages back at once (deadline 0), so the next command sees them again. */
  async release(letters: readonly DeadLetter[]): Promise<void> {
    const ackIds = letters.map((l) => l.ackId!).filter(Boolean);
    if (ackIds.length > 0) {
      await (await this.subscriber()).modifyAckDeadline({ subscription: this.name, ackIds, ackDeadlineSeconds: 0 });
    }
  }

  async close(): Promise<void> {
    await this.client?.close();
    await this.pubsub.close();
  }
}

/** Every dead letter of the type from the chosen sources; the caller releases the pulled ones. */
export async function listDeadLetters(
  access: DeadLetterAccess,
  keep: KeepSubscription | undefined,
): Promise<DeadLetter[]> {
  const fromStore = access.sources.includes('store') ? await storeDeadLetters(access.store, access.eventType) : [];
  const fromPubSub = keep ? await keep.pullAll() : [];
  return [...fromStore, ...fromPubSub];
}

/** Why the message would fail again with these schemas, or undefined when it now decodes. */
export function stillFailing(
  registry: SchemaRegistry,
  eventType: string,
  letter: DeadLetter,
): { code: string; message: string } | undefined {
  try {
    const bundle = decodeBundle(registry, letter.data, letter.attributes);
    if (bundle.eventType !== eventType) {
      return { code: 'MESSAGE_CORRUPT', message: `a message of type ${bundle.eventType} among ${eventType}'s` };
    }
    return undefined;
  } catch (e) {
    return { code: isHourglassError(e) ? e.code : 'INTERNAL', message: (e as Error).message };
  }
}

export interface ReplaySummary {
  replayed: DeadLetter[];
  alreadyReplayed: DeadLetter[];
  stillFailing: { letter: DeadLetter; reason: { code: string; message: string } }[];
}

/**
 * The original attributes plus `replay_of` (Attr.replayOf) naming this dead letter, so the
 * consumer can count replayed events and an operator can trace a stored copy back to it. A
 * replayed copy that dead-letters again and is replayed once more names its newest dead letter.
 */
export function replayAttributes(letter: DeadLetter): Record<string, string> {
  return { ...letter.attributes, [Attr.replayOf]: `${letter.source}:${letter.id}` };
}

/**
 * Publishes each dead letter that now decodes to the type's topic once: publish, then the replay
 * record (create-if-absent), then (keep subscription) the ack. A crash between publish and record
 * publishes it again on the next run; its event ids make the consumer drop the second copy.
 */
export async function replayDeadLetters(
  access: DeadLetterAccess,
  registry: SchemaRegistry,
  keep: KeepSubscription | undefined,
): Promise<ReplaySummary> {
  const letters = await listDeadLetters(access, keep);
  const summary: ReplaySummary = { replayed: [], alreadyReplayed: [], stillFailing: [] };
  const pubsub = new PubSub({ projectId: access.projectId });
  const topicName = resourceNames(access.prefix, access.eventType).topic;
  const topic = pubsub.topic(topicName);
  try {
    for (const letter of letters) {
      if (letter.replayed) {
        summary.alreadyReplayed.push(letter);
        continue;
      }
      const reason = stillFailing(registry, access.eventType, letter);
      if (reason) {
        summary.stillFailing.push({ letter, reason });
        continue;
      }
      const messageId = await topic.publishMessage({ data: letter.data, attributes: replayAttributes(letter) });
      const record: ReplayRecord = {
        source: letter.source,
        id: letter.id,
        replayedAt: new Date().toISOString(),
        topic: topicName,
        messageId,
      };
      const name = replayRecordName(access.eventType, letter.source, letter.id);
      await access.store.createIfAbsent(name, Buffer.from(`${JSON.stringify(record, null, 2)}\n`));
      summary.replayed.push({ ...letter, replayed: record });
    }
    if (keep) {
      const settled = [...summary.replayed, ...summary.alreadyReplayed].filter((l) => l.source === 'pubsub');
      await keep.ack(settled);
      await keep.release(summary.stillFailing.map((f) => f.letter).filter((l) => l.source === 'pubsub'));
    }
  } finally {
    await pubsub.close();
  }
  return summary;
}

export function notFound(eventType: string, id: string): HourglassError {
  return new HourglassError('STORAGE_NOT_FOUND', `no dead letter ${id} of "${eventType}"`);
}

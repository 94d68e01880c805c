import { PubSub } from '@google-cloud/pubsub';
import { Defaults } from '@hourglass/common';

/** Pub/Sub helpers shared by the suites: a client for the emulator and synchronous pulls. */
export function pubsubFor(apiEndpoint?: string, projectId: string = Defaults.projectId): PubSub {
  return new PubSub({ projectId, ...(apiEndpoint ? { apiEndpoint } : {}) });
}

export interface PulledMessage {
  id: string;
  data: Buffer;
  attributes: Record<string, string>;
}

interface PullResponse {
  receivedMessages?: {
    ackId?: string;
    message?: { messageId?: string; data?: Uint8Array | string; attributes?: Record<string, string> };
  }[];
}

/**
 * Pulls (and acks) everything on a subscription. Every publish the gateway acked is
 * already stored, so synchronous pulls until two empty answers see all of it.
 */
export async function pullAll(
  subscription: string,
  apiEndpoint?: string,
  projectId: string = Defaults.projectId,
): Promise<PulledMessage[]> {
  const pubsub = pubsubFor(apiEndpoint, projectId);
  const name = pubsub.subscription(subscription).name;
  const out: PulledMessage[] = [];
  const call = <T>(method: string, reqOpts: object): Promise<T> =>
    new Promise((resolve, reject) =>
      pubsub.request<T>({ client: 'SubscriberClient', method, reqOpts, gaxOpts: { timeout: 10_000 } }, (err, res) =>
        err ? reject(err) : resolve(res as T),
      ),
    );
  try {
    let empties = 0;
    while (empties < 2) {
      const res = await call<PullResponse>('pull', { subscription: name, maxMessages: 1000, returnImmediately: true });
      const received = res.receivedMessages ?? [];
      if (received.length === 0) {
        empties++;
        continue;
      }
      empties = 0;
      for (const r of received) {
        const data = r.message?.data;
        out.push({
          id: r.message?.messageId ?? '',
          data: typeof data === 'string' ? Buffer.from(data, 'base64') : Buffer.from(data ?? new Uint8Array()),
          attributes: { ...(r.message?.attributes ?? {}) },
        });
      }
      await call('acknowledge', { subscription: name, ackIds: received.map((r) => r.ackId) });
    }
  } finally {
    await pubsub.close();
  }
  return out;
}

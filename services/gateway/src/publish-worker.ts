import { parentPort, workerData } from 'node:worker_threads';
import { PubSubPublisher, type PubSubPublisherOptions } from './publisher.js';
import type { WorkerReply, WorkerRequest } from './threaded-publisher.js';

/**
 * The Pub/Sub client in its own thread (see threaded-publisher.ts). Each request is
 * answered with its id; errors travel as their gRPC code and message only.
 */
const port = parentPort;
if (!port) throw new Error('publish-worker.js runs only as a worker thread');
const publisher = new PubSubPublisher(workerData as PubSubPublisherOptions);

function reply(message: WorkerReply): void {
  port!.postMessage(message);
}

function fail(id: number, e: unknown): void {
  const err = e as { code?: unknown; message?: unknown };
  reply({
    id,
    ok: false,
    code: typeof err.code === 'number' ? err.code : undefined,
    message: typeof err.message === 'string' ? err.message : String(e),
  });
}

port.on('message', (req: WorkerRequest) => {
  switch (req.op) {
    case 'publish': {
      const data = Buffer.from(req.data.buffer, req.data.byteOffset, req.data.byteLength);
      publisher.publish(req.eventType, { data, attributes: req.attributes }).then(
        (messageId) => reply({ id: req.id, ok: true, value: messageId }),
        (e: unknown) => fail(req.id, e),
      );
      break;
    }
    case 'exists':
      publisher.topicExists(req.eventType).then(
        (exists) => reply({ id: req.id, ok: true, value: exists }),
        (e: unknown) => fail(req.id, e),
      );
      break;
    case 'close':
      publisher.close().then(
        () => reply({ id: req.id, ok: true, value: true }),
        (e: unknown) => fail(req.id, e),
      );
      break;
  }
});

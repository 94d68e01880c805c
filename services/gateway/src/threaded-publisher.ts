import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { resourceNames } from '@hourglass/common';
import type { EncodedBundle } from '@hourglass/schemas';
import type { MessagePublisher, PubSubPublisherOptions } from './publisher.js';

/**
 * Runs the Pub/Sub client in a worker thread. The client's gRPC work (protobuf encoding,
 * HTTP/2 framing, acks) is about a third of the gateway's CPU per event; off the request
 * thread it runs on another core, and the request thread's event loop answers sooner.
 * Message data is handed over by transferring its buffer, not by copying it.
 */
export type WorkerRequest =
  | { op: 'publish'; id: number; eventType: string; data: Uint8Array; attributes: Record<string, string> }
  | { op: 'exists'; id: number; eventType: string }
  | { op: 'close'; id: number };

export type WorkerReply =
  | { id: number; ok: true; value: string | boolean }
  | { id: number; ok: false; code: number | undefined; message: string };

interface Pending {
  resolve(value: string | boolean): void;
  reject(e: Error): void;
}

/** The compiled worker script; tests run from sources, so fall back to the build output. */
function workerScript(): string {
  const sibling = join(__dirname, 'publish-worker.js');
  return existsSync(sibling) ? sibling : join(__dirname, '..', 'dist', 'publish-worker.js');
}

export class ThreadedPublisher implements MessagePublisher {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private gone: Error | undefined;

  constructor(private readonly options: PubSubPublisherOptions) {
    this.worker = new Worker(workerScript(), { workerData: options, env: { ...process.env } });
    this.worker.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.value);
      else p.reject(Object.assign(new Error(reply.message), { code: reply.code }));
    });
    this.worker.on('error', (e) => this.failAll(e));
    // A dead worker answers nothing: fail what is pending and everything after, so no publish hangs.
    this.worker.on('exit', (code) => {
      this.gone = new Error(`publish worker exited with code ${code}`);
      this.failAll(this.gone);
    });
  }

  private call(req: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<string | boolean> {
    if (this.closed) return Promise.reject(new Error('publisher is closed'));
    if (this.gone) return Promise.reject(this.gone);
    return new Promise((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      this.worker.postMessage(req, transfer);
    });
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  publish(eventType: string, message: EncodedBundle): Promise<string> {
    // Transfer a buffer that owns its whole ArrayBuffer; anything else (a view into a
    // shared chunk or Node's buffer pool) is copied into one that does.
    const src = message.data;
    const owned =
      src.byteOffset === 0 && src.buffer.byteLength === src.byteLength && !(src.buffer instanceof SharedArrayBuffer);
    const data = owned ? src : new Uint8Array(src);
    return this.call({ op: 'publish', id: this.nextId++, eventType, data, attributes: message.attributes }, [
      data.buffer as ArrayBuffer,
    ]) as Promise<string>;
  }

  topicExists(eventType: string): Promise<boolean> {
    return this.call({ op: 'exists', id: this.nextId++, eventType }) as Promise<boolean>;
  }

  topicName(eventType: string): string {
    return resourceNames(this.options.prefix, eventType).topic;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.call({ op: 'close', id: this.nextId++ });
    } finally {
      this.closed = true;
      await this.worker.terminate();
    }
  }
}

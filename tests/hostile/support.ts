import { connect } from 'node:net';
import type { EncodedBundle } from '@hourglass/schemas';
import type { Gateway, MessagePublisher } from '@hourglass/gateway';
import { registry, startTestGateway, uniquePrefix } from '../gateway/support';

/** Shared helpers of the hostile-input suites: byte surgery on datums, a recording publisher, raw sockets. */

/** Every message the gateway published, in order (a fake publisher: Pub/Sub itself is not under test here). */
export class RecordingPublisher implements MessagePublisher {
  readonly messages: { eventType: string; message: EncodedBundle }[] = [];
  private n = 0;
  publish(eventType: string, message: EncodedBundle): Promise<string> {
    this.messages.push({ eventType, message });
    return Promise.resolve(String(++this.n));
  }
  topicExists(): Promise<boolean> {
    return Promise.resolve(true);
  }
  topicName(eventType: string): string {
    return `recorded-${eventType}`;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export async function recordingGateway(): Promise<{ gateway: Gateway; published: RecordingPublisher }> {
  const published = new RecordingPublisher();
  const gateway = await startTestGateway({ prefix: uniquePrefix('hostile'), publisher: published });
  return { gateway, published };
}

/** The datum of `record` as `eventType` v`version` encodes it. */
export function datumOf(eventType: string, record: Record<string, unknown>, version?: number): Buffer {
  const schemas = registry.get(eventType);
  const writer = version === undefined ? schemas.latest : schemas.versions[version - 1]!;
  return writer.type.toBuffer(record);
}

/** The first byte offset at which two buffers differ (they encode two values of one field). */
export function firstDifference(a: Buffer, b: Buffer): number {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
}

/** `buf` with `count` bytes at `at` replaced by `bytes`. */
export function splice(buf: Buffer, at: number, count: number, bytes: readonly number[]): Buffer {
  return Buffer.concat([buf.subarray(0, at), Buffer.from(bytes), buf.subarray(at + count)]);
}

/** Sends raw bytes on a new connection and resolves with everything the server wrote until it closed. */
export function rawExchange(port: number, request: Buffer | string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${Buffer.concat(chunks).toString('latin1')}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined); // a reset after the answer still resolves on close
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(request);
  });
}

/** Status and JSON body of the first HTTP response in `raw`. */
export function parseRawResponse(raw: string): { status: number; body: unknown; headers: string } {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? NaN);
  const rest = raw.slice(head.length + 4);
  const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? rest.length);
  let body: unknown;
  try {
    body = JSON.parse(rest.slice(0, length));
  } catch {
    body = rest.slice(0, length);
  }
  return { status, body, headers: head };
}

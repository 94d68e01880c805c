import { isUtf8 } from 'node:buffer';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HourglassError } from '@hourglass/common';
import { decodeContent } from '../body.js';
import { sendError } from '../http-errors.js';
import { eventsOf, metaRoom, prepareEvents } from '../fast-path.js';
import { BufferPool } from '../buffer-pool.js';
import { TranscodedBatch, readEventsBody } from '../transcoded-body.js';
import { INGEST_PATH, addBeaconParsers } from './browser.js';
import { Ingestion } from './ingest.js';

/**
 * `POST /v1/events`: a JSON batch `{"events":[...]}` of any types (and beacons: the same
 * batch as text/plain or a form field, browser.ts). Its own scope: only these content types.
 */
export const jsonEventRoutes: FastifyPluginAsync = async (scope) => {
  const { config, prepareContext, registry } = scope.hourglass;
  const ingestion = new Ingestion(scope.hourglass);
  const room = metaRoom(prepareContext.gatewayId);
  const payloadBuffers = new BufferPool(PAYLOAD_BUFFERS_BYTES);
  scope.removeAllContentTypeParsers();
  addBeaconParsers(scope, config.maxDecompressedBytes);
  scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, async (req: FastifyRequest, body: Buffer) => {
    const raw = await decodeContent(body, req.headers['content-encoding'], config.maxDecompressedBytes);
    // JSON text is UTF-8: decoding invalid bytes would store U+FFFD in their place
    if (!isUtf8(raw)) throw invalidUtf8(raw);
    try {
      return readEventsBody(registry, raw, room, 'wasm', payloadBuffers); // a TranscodedBatch when plain, else JSON.parse's value
    } catch {
      throw new HourglassError('HTTP_BAD_REQUEST', 'the body is not valid JSON');
    }
  });
  scope.addHook('onRequest', ingestion.admit);
  scope.addHook('onResponse', ingestion.countResponse('json'));
  // Not async, and the parsed body leaves the request here: no awaiting frame may hold it
  // (see Ingestion.ingest), or the bodies of the requests in flight get promoted by the GC.
  scope.post(INGEST_PATH, (req, reply) => {
    const body = req.body;
    req.body = undefined;
    try {
      return answer(req, reply, eventsOf(body));
    } finally {
      // Its datums were copied into bundles (or the request was answered without them):
      // nothing reads the payload buffer after this.
      if (body instanceof TranscodedBatch) payloadBuffers.give(body.payloads.buf);
    }
  });

  function answer(req: FastifyRequest, reply: FastifyReply, events: ReturnType<typeof eventsOf>) {
    const key = ingestion.keyOf(req);
    if (events === undefined) {
      return sendError(reply, 'HTTP_BAD_REQUEST', 'the body must be {"events":[...]} with at least one event');
    }
    if (events.length > config.maxEventsPerBatch) {
      return sendError(
        reply,
        'HTTP_BATCH_TOO_LARGE',
        `${events.length} events in one batch; the limit is ${config.maxEventsPerBatch}`,
      );
    }
    if (ingestion.rateLimited(reply, key, events.length)) return reply;
    return ingestion.ingest(req, reply, 'POST /v1/events', events.length, (gatewayTs, batchAnswer) =>
      prepareEvents(prepareContext, key, events, gatewayTs, batchAnswer),
    );
  }
};

/** Payload buffers kept for reuse: a few bodies' worth (a buffer is back as soon as its request is handed over). */
const PAYLOAD_BUFFERS_BYTES = 4 * 1024 * 1024;

/** Where the first invalid UTF-8 sequence of `raw` starts: decoded and re-encoded, the bytes differ there. */
function invalidUtf8(raw: Buffer): HourglassError {
  const again = Buffer.from(raw.toString('utf8'));
  let at = 0;
  while (at < raw.length && raw[at] === again[at]) at++;
  return new HourglassError('HTTP_BAD_REQUEST', `the body is not valid UTF-8 (an invalid byte sequence at byte ${at})`);
}

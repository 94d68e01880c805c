import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { SchemaVersion } from '@hourglass/schemas';
import { keyAllows } from '../api-keys.js';
import { decodeContent } from '../body.js';
import { sendError } from '../http-errors.js';
import { prepareAvro, splitDatums } from '../prepare.js';
import { Ingestion } from './ingest.js';

export const SCHEMA_VERSION_HEADER = 'hourglass-schema-version';
export const SCHEMA_FINGERPRINT_HEADER = 'hourglass-schema-fingerprint';
export const AVRO_CONTENT_TYPE = 'avro/binary';

/**
 * `POST /v1/events/:type`: Avro datums of one type and version, for internal high-volume
 * producers (server keys only). Its own scope: only avro/binary bodies.
 */
export const avroEventRoutes: FastifyPluginAsync = async (scope) => {
  const { config, registry, prepareContext } = scope.hourglass;
  const ingestion = new Ingestion(scope.hourglass);
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser(AVRO_CONTENT_TYPE, { parseAs: 'buffer' }, async (req: FastifyRequest, body: Buffer) =>
    decodeContent(body, req.headers['content-encoding'], config.maxDecompressedBytes),
  );
  scope.addHook('onRequest', ingestion.admit);
  scope.addHook('onResponse', ingestion.countResponse('avro'));
  // Async but without an await: its frame, and the body with it, ends before the answer waits (see Ingestion.ingest).
  scope.post<{ Params: { type: string } }>('/v1/events/:type', async (req, reply) => {
    const key = ingestion.keyOf(req);
    const eventType = req.params.type;
    const schemas = registry.tryGet(eventType);
    if (!schemas) {
      return sendError(reply, 'SCHEMA_UNKNOWN_TYPE', `unknown event type ${JSON.stringify(eventType.slice(0, 64))}`);
    }
    if (!keyAllows(key, eventType)) {
      return sendError(reply, 'HTTP_FORBIDDEN', `the API key does not cover event type ${eventType}`);
    }
    if (key.origins) return sendError(reply, 'HTTP_FORBIDDEN', 'publishable keys send JSON to POST /v1/events');
    const writer = writerOf(schemas.versions, req.headers);
    if (typeof writer === 'string') return sendError(reply, 'HTTP_BAD_REQUEST', writer);
    if (!Buffer.isBuffer(req.body)) {
      return sendError(reply, 'HTTP_UNSUPPORTED_MEDIA_TYPE', `send Content-Type: ${AVRO_CONTENT_TYPE}`);
    }
    const body = req.body;
    const spans = splitDatums(writer, body, config.maxEventsPerBatch);
    if (ingestion.rateLimited(reply, key, spans.length)) return reply;
    return ingestion.ingest(req, reply, 'POST /v1/events/:type', spans.length, (gatewayTs, answer) =>
      prepareAvro(prepareContext, writer, body, spans, gatewayTs, answer),
    );
  });
};

const VERSION_TEXT = /^[1-9][0-9]{0,5}$/;

/** The writer version named by the schema headers; a string says what is wrong. */
function writerOf(
  versions: readonly SchemaVersion[],
  headers: Record<string, string | string[] | undefined>,
): SchemaVersion | string {
  const fingerprint = headers[SCHEMA_FINGERPRINT_HEADER];
  const version = headers[SCHEMA_VERSION_HEADER];
  if (typeof fingerprint === 'string') {
    const found = versions.find((v) => v.fingerprint === fingerprint.trim().toLowerCase());
    return found ?? `no version of this type has schema fingerprint ${fingerprint.slice(0, 64)}`;
  }
  if (typeof version === 'string') {
    if (!VERSION_TEXT.test(version)) return `${SCHEMA_VERSION_HEADER} must be a version number such as 1`;
    const n = Number(version);
    const found = versions.find((v) => v.version === n);
    return found ?? `no version ${version.slice(0, 16)} of this type (it has v1..v${versions.length})`;
  }
  return `name the writer schema with the ${SCHEMA_VERSION_HEADER} or ${SCHEMA_FINGERPRINT_HEADER} header`;
}

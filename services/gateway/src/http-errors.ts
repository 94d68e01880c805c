import type { FastifyReply } from 'fastify';
import { HourglassError, type ErrorCode } from '@hourglass/common';

/** HTTP status of each whole-request error code; anything unlisted is a 500 that hides its cause. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  HTTP_BAD_REQUEST: 400,
  HTTP_UNAUTHENTICATED: 401,
  HTTP_FORBIDDEN: 403,
  ORIGIN_NOT_ALLOWED: 403,
  HTTP_NOT_FOUND: 404,
  HTTP_BODY_TOO_LARGE: 413,
  HTTP_BATCH_TOO_LARGE: 413,
  HTTP_EVENT_TOO_LARGE: 413,
  HTTP_UNSUPPORTED_MEDIA_TYPE: 415,
  HTTP_REQUEST_TIMEOUT: 408,
  HTTP_URI_TOO_LONG: 414,
  HTTP_HEADERS_TOO_LARGE: 431,
  HTTP_RATE_LIMITED: 429,
  SCHEMA_UNKNOWN_TYPE: 404,
  SCHEMA_UNKNOWN_FINGERPRINT: 400,
  EVENT_INVALID: 400,
  OVERLOADED: 503,
  SHUTTING_DOWN: 503,
  PUBLISH_FAILED: 503,
  PUBLISH_TIMEOUT: 503,
};

export function statusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

/** `{"error":{"code","message"}}`; a 500 says only "internal error" (details go to the log). */
export function errorBody(code: ErrorCode, message: string): string {
  const status = statusOf(code);
  const shown = status === 500 ? { code: 'INTERNAL', message: 'internal error' } : { code, message };
  return JSON.stringify({ error: shown });
}

export function sendError(
  reply: FastifyReply,
  code: ErrorCode,
  message: string,
  headers?: Record<string, string>,
): FastifyReply {
  reply.code(statusOf(code)).type('application/json');
  if (headers) reply.headers(headers);
  return reply.send(errorBody(code, message));
}

/** Maps fastify's own errors (body limit, media type, ...) and ours to the catalogue. */
export function classify(error: unknown): { code: ErrorCode; message: string } {
  if (error instanceof HourglassError) return { code: error.code, message: error.message };
  const fst = error as { code?: string; statusCode?: number; message?: string };
  switch (fst.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'HTTP_BODY_TOO_LARGE', message: 'the request body exceeds the size limit' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 'HTTP_UNSUPPORTED_MEDIA_TYPE', message: 'unsupported Content-Type' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return { code: 'HTTP_BAD_REQUEST', message: fst.message ?? 'bad request' };
    default:
      break;
  }
  // Client-side framework errors (4xx) keep their message; everything else is internal.
  if (typeof fst.statusCode === 'number' && fst.statusCode >= 400 && fst.statusCode < 500) {
    return { code: 'HTTP_BAD_REQUEST', message: fst.message ?? 'bad request' };
  }
  return { code: 'INTERNAL', message: 'internal error' };
}

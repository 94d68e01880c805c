import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '@hourglass/common';
import { errorBody, sendError, statusOf } from './http-errors.js';

/**
 * Requests that never reach a route — a request line or headers Node's parser refuses, a URL
 * fastify's router refuses — answered in the same `{"error":{"code","message"}}` shape as
 * every other error, instead of Node's or fastify's own.
 */

/** Node's HTTP parser failed on the connection (fastify's clientErrorHandler). */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  // a reset connection has nobody to answer
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { code, message } = clientErrorOf(error.code);
  if (socket.writable) {
    const body = errorBody(code, message);
    const status = statusOf(code);
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

function clientErrorOf(nodeCode: string | undefined): { code: ErrorCode; message: string } {
  switch (nodeCode) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { code: 'HTTP_REQUEST_TIMEOUT', message: 'the request was not received in time' };
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'HTTP_HEADERS_TOO_LARGE', message: 'the request line and headers exceed the size limit' };
    default:
      // HPE_INVALID_* and the like: a malformed request line, headers, chunking or Content-Length
      return { code: 'HTTP_BAD_REQUEST', message: `malformed HTTP request (${(nodeCode ?? 'unknown').slice(0, 40)})` };
  }
}

/** fastify's router refused the URL (fastify's frameworkErrors). */
export function answerFrameworkError(
  error: Error & { code?: string },
  _req: FastifyRequest,
  reply: FastifyReply,
): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    sendError(reply, 'HTTP_URI_TOO_LONG', 'a path segment is longer than any route accepts');
    return;
  }
  sendError(reply, 'HTTP_BAD_REQUEST', 'the URL cannot be decoded');
}

'use strict';
/**
 * A minimal HTTP/1.1 client for the load generator: keep-alive sockets, one request in flight
 * per socket, requests written as one header block and the body, answers read by their
 * Content-Length. Node's http client spends about 1.5 µs of CPU per event on 100-event
 * requests (a ClientRequest, an IncomingMessage and their streams per request); on 2 shared
 * cores that CPU is taken from the services the benchmarks measure. Only what the gateway
 * answers is understood: a status line, headers, a Content-Length body (no chunked answers,
 * which it never sends; one fails the request as an error).
 */
const net = require('node:net');

const CRLF2 = Buffer.from('\r\n\r\n');

class RawHttpClient {
  /** `url`: the server's origin; `headers`: sent with every request (besides Host and Content-Length). */
  constructor(url, { maxSockets, headers }) {
    const u = new URL(url);
    this.host = u.hostname;
    this.port = Number(u.port || 80);
    this.maxSockets = maxSockets;
    this.headerLines = Object.entries({ host: u.host, ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    this.idle = [];
    this.sockets = 0;
    this.queue = [];
  }

  /** POSTs `body` to `path`; resolves with { status, body } or rejects on a socket or protocol error. */
  post(path, body) {
    return new Promise((resolve, reject) => {
      this.queue.push({
        head: Buffer.from(
          `POST ${path} HTTP/1.1\r\n${this.headerLines}content-length: ${body.length}\r\n\r\n`,
          'latin1',
        ),
        body,
        resolve,
        reject,
      });
      this.dispatch();
    });
  }

  dispatch() {
    while (this.queue.length > 0) {
      const conn = this.idle.pop() ?? (this.sockets < this.maxSockets ? this.connect() : undefined);
      if (!conn) return;
      this.start(conn, this.queue.shift());
    }
  }

  connect() {
    this.sockets++;
    const socket = net.connect(this.port, this.host);
    socket.setNoDelay(true);
    const conn = { socket, request: undefined, chunks: [], bytes: 0, closed: false };
    socket.on('data', (chunk) => this.onData(conn, chunk));
    const gone = (err) => {
      if (conn.closed) return;
      conn.closed = true;
      this.sockets--;
      this.idle = this.idle.filter((c) => c !== conn);
      if (conn.request) conn.request.reject(err ?? new Error('socket closed'));
      conn.request = undefined;
      this.dispatch();
    };
    socket.on('error', gone);
    socket.on('close', () => gone());
    return conn;
  }

  start(conn, request) {
    conn.request = request;
    conn.socket.cork();
    conn.socket.write(request.head);
    conn.socket.write(request.body);
    conn.socket.uncork();
  }

  onData(conn, chunk) {
    conn.chunks.push(chunk);
    conn.bytes += chunk.length;
    const data = conn.chunks.length === 1 ? chunk : Buffer.concat(conn.chunks, conn.bytes);
    const headEnd = data.indexOf(CRLF2);
    if (headEnd < 0) return;
    const head = data.toString('latin1', 0, headEnd).toLowerCase();
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length: *(\d+)/.exec(head);
    const request = conn.request;
    if (!length || !request) {
      conn.socket.destroy(new Error(`unexpected answer without content-length (status ${status})`));
      return;
    }
    const end = headEnd + 4 + Number(length[1]);
    if (data.length < end) {
      conn.chunks = [data];
      return;
    }
    conn.chunks = data.length > end ? [data.subarray(end)] : [];
    conn.bytes = data.length - end;
    conn.request = undefined;
    const close = /\r\nconnection: *close/.test(head);
    if (close) conn.socket.end();
    else this.idle.push(conn);
    request.resolve({ status, body: data.subarray(headEnd + 4, end) });
    this.dispatch();
  }

  destroy() {
    for (const c of this.idle) c.socket.destroy();
    this.idle = [];
  }
}

module.exports = { RawHttpClient };

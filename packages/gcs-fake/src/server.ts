import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Faults } from './faults.js';
import { deleteFolder, folderResource, getFolder, insertFolder, operationResource, startRename } from './folders.js';
import { crc32cBase64, md5Base64, parseGoogHash } from './hashes.js';
import { boundaryOf, parseMultipartRelated } from './multipart.js';
import { bucketResource, errorResource, objectResource } from './resource.js';
import { RequestCounter, type Route } from './routes.js';
import { ApiError, FakeState, type Preconditions, type StoredObject, type WritableMetadata } from './state.js';

export interface GcsFakeOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Address to listen on; the fake never listens beyond loopback by default. */
  host?: string;
  /** Buckets that exist from the start. */
  buckets?: string[];
  /** Create a bucket the first time a request names it (default true); false answers 404 like GCS. */
  autoCreateBuckets?: boolean;
  /** Data to serve: pass the `state` of a stopped fake to simulate a GCS restart without data loss. */
  state?: FakeState;
  /** How long a folder rename's operation runs before its one swap (default 0: at the next turn). */
  renameOperationMs?: number;
  /** Called once per answered (or dropped) request; handy to see which paths a client uses. */
  onRequest?: (entry: RequestLogEntry) => void;
}

export interface RequestLogEntry {
  method: string;
  url: string;
  route: Route;
  /** HTTP status sent, or 'dropped' when the connection was destroyed instead. */
  status: number | 'dropped';
}

export interface RunningGcsFake {
  /** `http://127.0.0.1:<port>`: the value for STORAGE_EMULATOR_HOST or the client's `apiEndpoint`. */
  readonly url: string;
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  readonly port: number;
  readonly faults: Faults;
  /** Requests received per route (counted before faults apply). */
  readonly requests: RequestCounter;
  readonly state: FakeState;
  /** The stored object, for assertions that bypass the HTTP API. */
  object(bucket: string, name: string): StoredObject | undefined;
  /** Stops listening and destroys open connections. */
  stop(): Promise<void>;
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | Record<string, unknown>;
  /** True when the request changed stored state (a drop-after-commit fault may then fire). */
  committed?: boolean;
}

interface Target {
  route: Route;
  bucket?: string;
  /** The object, or the folder of a folder route, or the operation id. */
  object?: string;
  /** A folder rename's destination. */
  destination?: string;
}

/** Starts a GCS JSON-API fake on loopback that the real @google-cloud/storage client can talk to. */
export async function start(options: GcsFakeOptions = {}): Promise<RunningGcsFake> {
  const state = options.state ?? new FakeState(options.autoCreateBuckets ?? true);
  for (const b of options.buckets ?? []) if (!state.buckets.has(b)) state.insertBucket(b);
  const faults = new Faults();
  const requests = new RequestCounter();

  const server = createServer((req, res) => {
    serve(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, { status: 500, body: errorResource(500, 'backendError', String(e)) });
      else res.destroy();
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = (req.method ?? 'GET').toUpperCase();
    const target = resolveTarget(method, url, req);
    requests.record(target.route);
    const plan = faults.plan(target.route);
    const log = (status: number | 'dropped'): void =>
      options.onRequest?.({ method, url: req.url ?? '/', route: target.route, status });

    if (plan.dropBefore) {
      req.socket.destroy();
      log('dropped');
      return;
    }
    const body = await readBody(req);
    // A slow answer: the request takes effect on arrival, its answer leaves `delayMs` later
    // (so a client that gives up waiting may still have written).
    const answerLate = (): Promise<void> =>
      plan.delayMs > 0 ? new Promise((r) => setTimeout(r, plan.delayMs)) : Promise.resolve();
    if (plan.failStatus !== undefined) {
      await answerLate();
      if (res.destroyed) return;
      const status = plan.failStatus;
      send(res, { status, body: errorResource(status, 'backendError', `injected fault: ${status}`) });
      log(status);
      return;
    }
    let answer: Answer;
    try {
      answer = dispatch(target, method, url, req, body, originOf(req), plan.corrupt);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      answer = { status: e.status, body: errorResource(e.status, e.reason, e.message) };
    }
    if (answer.committed && plan.dropAfterCommit && faults.consumeDropAfterCommit(target.route)) {
      req.socket.destroy();
      log('dropped');
      return;
    }
    if (plan.corrupt && target.route === 'object.download' && Buffer.isBuffer(answer.body)) {
      answer.body = corrupt(answer.body);
    }
    await answerLate();
    if (res.destroyed) return; // the client gave up waiting
    send(res, answer);
    log(answer.status);
  }

  function dispatch(
    t: Target,
    method: string,
    url: URL,
    req: IncomingMessage,
    body: Buffer,
    origin: string,
    corruptMedia: boolean,
  ): Answer {
    const media = (data: Buffer): Buffer => (corruptMedia ? corrupt(data) : data);
    const q = url.searchParams;
    const bucket = t.bucket ?? '';
    const object = t.object ?? '';
    switch (t.route) {
      case 'bucket.insert': {
        const name = parseJson(body).name;
        if (typeof name !== 'string' || name === '') throw new ApiError(400, 'required', 'bucket name required');
        return { status: 200, body: bucketResource(state.insertBucket(name), origin), committed: true };
      }
      case 'bucket.get':
        return { status: 200, body: bucketResource(state.bucket(bucket), origin) };
      case 'bucket.delete':
        state.deleteBucket(bucket);
        return { status: 204, committed: true };
      case 'object.list': {
        const page = state.list(bucket, {
          prefix: q.get('prefix') ?? undefined,
          delimiter: q.get('delimiter') ?? undefined,
          maxResults: q.has('maxResults') ? Number(q.get('maxResults')) : undefined,
          pageToken: q.get('pageToken') ?? undefined,
          startOffset: q.get('startOffset') ?? undefined,
          endOffset: q.get('endOffset') ?? undefined,
        });
        return {
          status: 200,
          body: {
            kind: 'storage#objects',
            ...(page.items.length > 0 ? { items: page.items.map((o) => objectResource(o, origin)) } : {}),
            ...(page.prefixes.length > 0 ? { prefixes: page.prefixes } : {}),
            ...(page.nextPageToken === undefined ? {} : { nextPageToken: page.nextPageToken }),
          },
        };
      }
      case 'object.get':
        return {
          status: 200,
          body: objectResource(
            state.getObject(bucket, object, preconditions(q), q.get('generation') ?? undefined),
            origin,
          ),
        };
      case 'object.download':
        return download(state.getObject(bucket, object, preconditions(q), q.get('generation') ?? undefined), req);
      case 'object.patch': {
        const obj = state.patchObject(bucket, object, writableMetadata(parseJson(body)), preconditions(q));
        return { status: 200, body: objectResource(obj, origin), committed: true };
      }
      case 'object.delete':
        state.deleteObject(bucket, object, preconditions(q));
        return { status: 204, committed: true };
      case 'object.compose': {
        const json = parseJson(body);
        const sources = Array.isArray(json.sourceObjects) ? (json.sourceObjects as Record<string, unknown>[]) : [];
        const obj = state.compose(
          bucket,
          object,
          sources.map((s) => ({
            name: String(s.name),
            generation: s.generation === undefined ? undefined : String(s.generation),
            ifGenerationMatch: ifGenerationMatchOf(s.objectPreconditions),
          })),
          writableMetadata(isRecord(json.destination) ? json.destination : {}),
          preconditions(q),
        );
        return { status: 200, body: objectResource(obj, origin), committed: true };
      }
      case 'upload.multipart':
        return uploadMultipart(bucket, url, req, body, origin, media);
      case 'upload.media': {
        const name = requiredName(q.get('name'));
        const data = media(body);
        checkClientHashes(data, parseGoogHash(header(req, 'x-goog-hash')));
        const meta = { contentType: header(req, 'content-type') };
        return {
          status: 200,
          body: objectResource(state.putObject(bucket, name, data, meta, preconditions(q)), origin),
          committed: true,
        };
      }
      case 'upload.resumable.start': {
        const json = body.length > 0 ? parseJson(body) : {};
        const name = requiredName(q.get('name') ?? (typeof json.name === 'string' ? json.name : null));
        const meta = writableMetadata(json);
        meta.contentType = header(req, 'x-upload-content-type') ?? meta.contentType;
        const id = randomUUID();
        state.startSession(id, bucket, name, meta, preconditions(q));
        const location = `${origin}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
        return { status: 200, headers: { location }, body: Buffer.alloc(0) };
      }
      case 'upload.resumable.chunk':
      case 'upload.resumable.status':
        return resumableChunk(q.get('upload_id') ?? '', req, media(body), origin);
      case 'folder.insert':
      case 'folder.get':
      case 'folder.delete':
      case 'folder.rename':
      case 'operation.get':
        return dispatchFolder(t, q, body, origin);
      case 'unknown':
        throw new ApiError(404, 'notFound', `no such route: ${method} ${url.pathname}`);
    }
  }

  /** The hierarchical-namespace calls (folders.ts). */
  function dispatchFolder(t: Target, q: URLSearchParams, body: Buffer, origin: string): Answer {
    const bucket = t.bucket ?? '';
    const b = state.bucket(bucket);
    switch (t.route) {
      case 'folder.insert': {
        const name = parseJson(body).name;
        if (typeof name !== 'string') throw new ApiError(400, 'required', 'folder name required');
        const folder = insertFolder(b, name, q.get('recursive') === 'true');
        return { status: 200, body: folderResource(folder, bucket, origin), committed: true };
      }
      case 'folder.get':
        return { status: 200, body: folderResource(getFolder(b, t.object ?? ''), bucket, origin) };
      case 'folder.delete':
        deleteFolder(b, t.object ?? '');
        return { status: 204, committed: true };
      case 'folder.rename': {
        const op = startRename(state, bucket, t.object ?? '', t.destination ?? '', options.renameOperationMs ?? 0);
        return { status: 200, body: operationResource(op, origin), committed: true };
      }
      default: {
        const op = state.operations.get(t.object ?? '');
        if (!op || op.bucket !== bucket) throw new ApiError(404, 'notFound', `no such operation ${t.object}`);
        return { status: 200, body: operationResource(op, origin) };
      }
    }
  }

  function uploadMultipart(
    bucket: string,
    url: URL,
    req: IncomingMessage,
    body: Buffer,
    origin: string,
    media: (data: Buffer) => Buffer,
  ): Answer {
    const boundary = boundaryOf(header(req, 'content-type'));
    if (!boundary) throw new ApiError(400, 'invalid', 'multipart upload without a boundary');
    let parts;
    try {
      parts = parseMultipartRelated(body, boundary);
    } catch (e) {
      throw new ApiError(400, 'invalid', `bad multipart body: ${String(e)}`);
    }
    const [metaPart, mediaPart] = parts;
    if (!metaPart || !mediaPart)
      throw new ApiError(400, 'invalid', 'multipart upload needs a metadata and a media part');
    const json = parseJson(metaPart.body);
    const data = media(mediaPart.body);
    const name = requiredName(url.searchParams.get('name') ?? (typeof json.name === 'string' ? json.name : null));
    checkClientHashes(data, {
      crc32c: typeof json.crc32c === 'string' ? json.crc32c : undefined,
      md5: typeof json.md5Hash === 'string' ? json.md5Hash : undefined,
    });
    const meta = writableMetadata(json);
    meta.contentType = meta.contentType ?? mediaPart.headers['content-type'];
    const obj = state.putObject(bucket, name, data, meta, preconditions(url.searchParams));
    return { status: 200, body: objectResource(obj, origin), committed: true };
  }

  function resumableChunk(id: string, req: IncomingMessage, body: Buffer, origin: string): Answer {
    const session = state.sessions.get(id);
    if (!session) throw new ApiError(404, 'notFound', `no upload session ${id}`);
    if (session.result) return { status: 200, body: objectResource(session.result, origin) };
    const range = parseContentRange(header(req, 'content-range'));
    if (!range) throw new ApiError(400, 'invalid', `bad Content-Range: ${header(req, 'content-range')}`);
    if (range.start !== undefined) session.append(range.start, body);
    const complete =
      typeof range.total === 'number'
        ? session.received >= range.total
        : range.start !== undefined && range.end === undefined; // `bytes N-*/*`: this request carries the rest
    if (typeof range.total === 'number' && session.received > range.total) {
      throw new ApiError(400, 'invalid', 'more bytes than the declared total');
    }
    if (!complete) {
      const headers: Record<string, string> = session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {};
      return { status: 308, headers, body: Buffer.alloc(0) };
    }
    const data = session.bytes();
    try {
      checkClientHashes(data, parseGoogHash(header(req, 'x-goog-hash')));
      session.result = state.putObject(session.bucket, session.name, data, session.meta, session.pre);
    } catch (e) {
      state.sessions.delete(id); // a failed final request ends the session, as on GCS
      throw e;
    }
    return { status: 200, body: objectResource(session.result, origin), committed: true };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = `${address.address}:${address.port}`;
  return {
    url: `http://${host}`,
    host,
    port: address.port,
    faults,
    requests,
    state,
    object: (bucket, name) => state.buckets.get(bucket)?.objects.get(name),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Maps a request to its route. Accepts `/storage/v1/b/...` and, as the client uses with STORAGE_EMULATOR_HOST, `/b/...`. */
function resolveTarget(method: string, url: URL, req: IncomingMessage): Target {
  let path = url.pathname;
  let upload = false;
  for (const [prefix, isUpload] of [
    ['/upload/storage/v1/', true],
    ['/upload/', true],
    ['/download/storage/v1/', false],
    ['/storage/v1/', false],
  ] as const) {
    if (path.startsWith(prefix)) {
      path = path.slice(prefix.length - 1);
      upload = isUpload;
      break;
    }
  }
  const segments = path.split('/').slice(1).map(decodeSegment);
  if (segments[0] !== 'b') return { route: 'unknown' };
  const bucket = segments[1];
  if (bucket === undefined || bucket === '') return { route: method === 'POST' ? 'bucket.insert' : 'unknown' };
  if (segments.length === 2) {
    if (method === 'GET') return { route: 'bucket.get', bucket };
    if (method === 'DELETE') return { route: 'bucket.delete', bucket };
    return { route: 'unknown' };
  }
  if (segments[2] === 'folders' || segments[2] === 'operations') return folderTarget(method, bucket, segments);
  if (segments[2] !== 'o') return { route: 'unknown' };
  const q = url.searchParams;
  if (segments.length === 3 || (segments.length === 4 && segments[3] === '')) {
    if (upload && method === 'POST') {
      const type = q.get('uploadType');
      if (type === 'resumable') return { route: 'upload.resumable.start', bucket };
      if (type === 'media') return { route: 'upload.media', bucket };
      return { route: 'upload.multipart', bucket };
    }
    if (upload && method === 'PUT' && q.has('upload_id')) {
      const status = /^bytes \*\//.test(header(req, 'content-range') ?? '');
      return { route: status ? 'upload.resumable.status' : 'upload.resumable.chunk', bucket };
    }
    if (method === 'GET') return { route: 'object.list', bucket };
    return { route: 'unknown' };
  }
  const rest = segments.slice(3);
  if (method === 'POST' && rest.length > 1 && rest[rest.length - 1] === 'compose') {
    return { route: 'object.compose', bucket, object: rest.slice(0, -1).join('/') };
  }
  const object = rest.join('/');
  if (method === 'GET') return { route: q.get('alt') === 'media' ? 'object.download' : 'object.get', bucket, object };
  if (method === 'DELETE') return { route: 'object.delete', bucket, object };
  if (method === 'PATCH' || method === 'PUT') return { route: 'object.patch', bucket, object };
  return { route: 'unknown' };
}

/** `/b/B/folders[/F[/renameTo/folders/D]]` and `/b/B/operations/ID`; folder names come URL-encoded (`a%2Fb%2F`). */
function folderTarget(method: string, bucket: string, segments: string[]): Target {
  const [, , kind, name, verb, kind2, destination] = segments;
  if (kind === 'operations') {
    return segments.length === 4 && method === 'GET'
      ? { route: 'operation.get', bucket, object: name }
      : { route: 'unknown' };
  }
  if (segments.length === 3 && method === 'POST') return { route: 'folder.insert', bucket };
  if (segments.length === 4 && method === 'GET') return { route: 'folder.get', bucket, object: name };
  if (segments.length === 4 && method === 'DELETE') return { route: 'folder.delete', bucket, object: name };
  if (segments.length === 7 && method === 'POST' && verb === 'renameTo' && kind2 === 'folders') {
    return { route: 'folder.rename', bucket, object: name, destination };
  }
  return { route: 'unknown' };
}

function download(obj: StoredObject, req: IncomingMessage): Answer {
  const hashes = [`crc32c=${obj.crc32c}`, ...(obj.md5Hash === undefined ? [] : [`md5=${obj.md5Hash}`])].join(',');
  const headers: Record<string, string> = {
    'content-type': obj.contentType,
    'x-goog-hash': hashes,
    'x-goog-generation': obj.generation,
    'x-goog-metageneration': String(obj.metageneration),
    'x-goog-stored-content-encoding': 'identity',
    'x-goog-stored-content-length': String(obj.data.length),
  };
  const range = /^bytes=(\d*)-(\d*)$/.exec(header(req, 'range') ?? '');
  if (range && (range[1] !== '' || range[2] !== '') && obj.data.length > 0) {
    const size = obj.data.length;
    let start = range[1] === '' ? size - Number(range[2]) : Number(range[1]);
    let end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
    start = Math.max(0, start);
    end = Math.max(start, end);
    if (start >= size) throw new ApiError(416, 'requestedRangeNotSatisfiable', 'range not satisfiable');
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
    return { status: 206, headers, body: obj.data.subarray(start, end + 1) };
  }
  return { status: 200, headers, body: obj.data };
}

function send(res: ServerResponse, answer: Answer): void {
  const headers: Record<string, string> = { ...answer.headers };
  let payload: Buffer;
  if (answer.body === undefined) payload = Buffer.alloc(0);
  else if (Buffer.isBuffer(answer.body)) payload = answer.body;
  else {
    payload = Buffer.from(JSON.stringify(answer.body));
    headers['content-type'] = 'application/json; charset=UTF-8';
  }
  if (answer.status !== 204) headers['content-length'] = String(payload.length);
  res.writeHead(answer.status, answer.status === 308 ? 'Resume Incomplete' : undefined, headers);
  res.end(answer.status === 204 ? undefined : payload);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Content-Range of a resumable PUT: `bytes a-b/T`, or `*` for the range (a status query) or for the end or total (not known yet). */
function parseContentRange(
  text: string | undefined,
): { start?: number; end?: number; total: number | undefined } | undefined {
  const m = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec(text?.trim() ?? '');
  if (!m) return undefined;
  return {
    start: m[1] === undefined ? undefined : Number(m[1]),
    end: m[2] === undefined || m[2] === '*' ? undefined : Number(m[2]),
    total: m[3] === '*' || m[3] === undefined ? undefined : Number(m[3]),
  };
}

/** GCS refuses an upload whose client-declared checksum does not match the bytes received. */
function checkClientHashes(data: Buffer, declared: { crc32c?: string; md5?: string }): void {
  if (declared.crc32c !== undefined && declared.crc32c !== crc32cBase64(data)) {
    throw new ApiError(400, 'invalid', `Provided CRC32C "${declared.crc32c}" doesn't match calculated CRC32C`);
  }
  if (declared.md5 !== undefined && declared.md5 !== md5Base64(data)) {
    throw new ApiError(400, 'invalid', `Provided MD5 hash "${declared.md5}" doesn't match calculated MD5 hash`);
  }
}

function corrupt(body: Buffer): Buffer {
  if (body.length === 0) return Buffer.from([0]);
  const copy = Buffer.from(body);
  copy[0] = (copy[0] ?? 0) ^ 0xff;
  return copy;
}

function preconditions(q: URLSearchParams): Preconditions {
  const pick = (k: string): string | undefined => q.get(k) ?? undefined;
  return {
    ifGenerationMatch: pick('ifGenerationMatch'),
    ifGenerationNotMatch: pick('ifGenerationNotMatch'),
    ifMetagenerationMatch: pick('ifMetagenerationMatch'),
    ifMetagenerationNotMatch: pick('ifMetagenerationNotMatch'),
  };
}

function ifGenerationMatchOf(p: unknown): string | undefined {
  return isRecord(p) && p.ifGenerationMatch !== undefined ? String(p.ifGenerationMatch) : undefined;
}

function writableMetadata(json: Record<string, unknown>): WritableMetadata {
  const meta: WritableMetadata = {};
  if (typeof json.contentType === 'string') meta.contentType = json.contentType;
  if (isRecord(json.metadata)) {
    meta.metadata = Object.fromEntries(Object.entries(json.metadata).map(([k, v]) => [k, String(v)]));
  }
  return meta;
}

function parseJson(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError(400, 'parseError', 'body is not valid JSON');
  }
  if (!isRecord(value)) throw new ApiError(400, 'invalid', 'body is not a JSON object');
  return value;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function requiredName(name: string | null): string {
  if (name === null || name === '') throw new ApiError(400, 'required', 'object name required');
  return name;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function originOf(req: IncomingMessage): string {
  return `http://${req.headers.host ?? '127.0.0.1'}`;
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

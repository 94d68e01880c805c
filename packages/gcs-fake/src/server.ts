import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Faults } from './faults.js';
import { folderCall } from './folders.js';
import { parseGoogHash } from './hashes.js';
import {
  type Answer,
  checkClientHashes,
  corrupt,
  download,
  ifGenerationMatchOf,
  isRecord,
  itemFields,
  originOf,
  parseContentRange,
  parseJson,
  preconditions,
  readBody,
  requiredName,
  send,
  writableMetadata,
} from './http.js';
import { boundaryOf, parseMultipartRelated } from './multipart.js';
import { bucketResource, errorResource, objectResource } from './resource.js';
import { RequestCounter, type Route } from './routes.js';
import { WriteRateLimit } from './rate-limit.js';
import { ApiError, FakeState, type StoredObject } from './state.js';
import { header, resolveTarget, type Target } from './target.js';

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
  /** GCS's per-object write limit, in ms between two writes of one name (default off; see WriteRateLimit). */
  writeRateLimitMs?: number;
  /** Called once per answered (or dropped) request; handy to see which paths a client uses. */
  onRequest?: (entry: RequestLogEntry) => void;
}

export interface RequestLogEntry {
  method: string;
  url: string;
  route: Route;
  /** HTTP status sent, 'dropped' when the connection was destroyed instead, 'hung' when never answered. */
  status: number | 'dropped' | 'hung';
  /** The object or folder named, when known (a multipart upload's name comes from its answer). */
  name?: string;
}

export interface RunningGcsFake {
  /** `http://127.0.0.1:<port>`: the value for STORAGE_EMULATOR_HOST or the client's `apiEndpoint`. */
  readonly url: string;
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  readonly port: number;
  readonly faults: Faults;
  /** Requests received per route (counted before faults apply); also served at `GET /_fake/stats`. */
  readonly requests: RequestCounter;
  /** GCS's per-object write limit: off unless enabled here or by `writeRateLimitMs`. */
  readonly writeRateLimit: WriteRateLimit;
  readonly state: FakeState;
  /** The stored object, for assertions that bypass the HTTP API. */
  object(bucket: string, name: string): StoredObject | undefined;
  /** Stops listening and destroys open connections. */
  stop(): Promise<void>;
}

/** Path of the fake's own endpoints (not GCS's): request counts for tests and benchmarks. */
const CONTROL_PATH = '/_fake/';

const sleep = (ms: number): Promise<void> => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());

/** Starts a GCS JSON-API fake on loopback that the real @google-cloud/storage client can talk to. */
export async function start(options: GcsFakeOptions = {}): Promise<RunningGcsFake> {
  const state = options.state ?? new FakeState(options.autoCreateBuckets ?? true);
  for (const b of options.buckets ?? []) if (!state.buckets.has(b)) state.insertBucket(b);
  const faults = new Faults();
  const requests = new RequestCounter();
  const writeRateLimit = new WriteRateLimit();
  if (options.writeRateLimitMs !== undefined) writeRateLimit.enable(options.writeRateLimitMs);

  const server = createServer((req, res) => {
    serve(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, { status: 500, body: errorResource(500, 'backendError', String(e)) });
      else res.destroy();
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = (req.method ?? 'GET').toUpperCase();
    if (url.pathname.startsWith(CONTROL_PATH)) {
      send(res, control(method, url.pathname));
      return;
    }
    const target = resolveTarget(method, url, req);
    const name = nameOf(target, url.searchParams);
    requests.record(target.route);
    const leave = requests.enter();
    res.once('close', leave);
    const plan = faults.plan(target.route, name);
    const log = (status: RequestLogEntry['status'], named = name): void =>
      options.onRequest?.({
        method,
        url: req.url ?? '/',
        route: target.route,
        status,
        ...(named ? { name: named } : {}),
      });

    if (plan.hang) {
      log('hung');
      return; // never answered: the client times out, or stop() closes the connection
    }
    if (plan.dropBefore) {
      req.socket.destroy();
      log('dropped');
      return;
    }
    const body = await readBody(req);
    // A write that lands late: carried out after `applyAfterMs` even if the client left.
    if (plan.applyAfterMs > 0) await sleep(plan.applyAfterMs);
    // A slow answer: the request takes effect on arrival, its answer leaves `delayMs` later
    // (so a client that gives up waiting may still have written).
    const answerLate = (): Promise<void> => sleep(plan.delayMs);
    if (plan.failStatus !== undefined) {
      await answerLate();
      if (res.destroyed) return;
      const status = plan.failStatus;
      send(res, { status, body: errorResource(status, 'backendError', `injected fault: ${status}`) });
      log(status);
      return;
    }
    let answer = handle(target, method, url, req, body, plan.corrupt, name);
    if (answer.committed && plan.dropAfterCommit && faults.consumeDropAfterCommit(target.route, name)) {
      req.socket.destroy();
      log('dropped');
      return;
    }
    if (
      answer.committed &&
      plan.failAfterCommitStatus !== undefined &&
      faults.consumeFailAfterCommit(target.route, name)
    ) {
      const status = plan.failAfterCommitStatus;
      answer = { status, body: errorResource(status, 'backendError', `injected fault after commit: ${status}`) };
    }
    if (plan.corrupt && target.route === 'object.download' && Buffer.isBuffer(answer.body)) {
      answer.body = corrupt(answer.body);
    }
    await answerLate();
    if (res.destroyed) return; // the client gave up waiting
    send(res, answer);
    log(
      answer.status,
      name ?? (isRecord(answer.body) && typeof answer.body.name === 'string' ? answer.body.name : undefined),
    );
  }

  /** Dispatches one request under GCS's per-object write limit; API errors become their JSON answer. */
  function handle(
    t: Target,
    method: string,
    url: URL,
    req: IncomingMessage,
    body: Buffer,
    corruptMedia: boolean,
    name: string | undefined,
  ): Answer {
    const bucket = t.bucket ?? '';
    try {
      if (writeRateLimit.refuses(t.route, bucket, name)) {
        throw new ApiError(
          429,
          'rateLimitExceeded',
          'The object exceeded the rate limit for object mutation operations (create, update, and delete).',
        );
      }
      const answer = dispatch(t, method, url, req, body, originOf(req), corruptMedia);
      if (answer.committed) writeRateLimit.noteWrite(t.route, bucket, name);
      return answer;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      return { status: e.status, body: errorResource(e.status, e.reason, e.message) };
    }
  }

  /** The object (or folder) a request names, for name-scoped faults and the write limit. */
  function nameOf(t: Target, q: URLSearchParams): string | undefined {
    if (t.object !== undefined) return t.object;
    const upload = q.get('upload_id');
    return upload === null ? (q.get('name') ?? undefined) : state.sessions.get(upload)?.name;
  }

  /** `GET /_fake/stats`: requests by route and by operation, faults fired; `DELETE` resets the counts. */
  function control(method: string, path: string): Answer {
    if (path !== `${CONTROL_PATH}stats`) return { status: 404, body: errorResource(404, 'notFound', path) };
    if (method === 'DELETE') {
      requests.reset();
      return { status: 204 };
    }
    return {
      status: 200,
      body: {
        requests: requests.snapshot(),
        operations: requests.byOperation(),
        total: requests.count(),
        maxInFlight: requests.maxInFlight,
        faultsFired: { ...faults.fired, rateLimited: writeRateLimit.refused },
      },
    };
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
            ...(page.items.length > 0
              ? { items: page.items.map((o) => itemFields(objectResource(o, origin), q.get('fields'))) }
              : {}),
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
        return folderCall(state, t, q, body, origin, options.renameOperationMs ?? 0);
      case 'unknown':
        throw new ApiError(404, 'notFound', `no such route: ${method} ${url.pathname}`);
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
    writeRateLimit,
    state,
    object: (bucket, name) => state.buckets.get(bucket)?.objects.get(name),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

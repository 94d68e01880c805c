import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Faults } from './faults.js';
import { type Answer, corrupt, isRecord, originOf, readBody, send } from './http.js';
import { JsonApi } from './operations.js';
import { errorResource } from './resource.js';
import { RequestCounter, type Route } from './routes.js';
import { WriteRateLimit } from './rate-limit.js';
import { ApiError, FakeState, type StoredObject } from './state.js';
import { resolveTarget, type Target } from './target.js';

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
  const api = new JsonApi(state, options.renameOperationMs ?? 0);

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
      const answer = api.dispatch(t, method, url, req, body, originOf(req), corruptMedia);
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

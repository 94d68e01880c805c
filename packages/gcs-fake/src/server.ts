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

/** The fake's request handling: faults, the write limit, the JSON API and its own control endpoints. */
class FakeServer {
  constructor(
    private readonly options: GcsFakeOptions,
    private readonly state: FakeState,
    private readonly faults: Faults,
    private readonly requests: RequestCounter,
    private readonly writeRateLimit: WriteRateLimit,
    private readonly api: JsonApi,
  ) {}

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = (req.method ?? 'GET').toUpperCase();
    if (url.pathname.startsWith(CONTROL_PATH)) {
      send(res, this.control(method, url.pathname));
      return;
    }
    const target = resolveTarget(method, url, req);
    const name = this.nameOf(target, url.searchParams);
    this.requests.record(target.route);
    const leave = this.requests.enter();
    res.once('close', leave);
    const plan = this.faults.plan(target.route, name);
    const log = (status: RequestLogEntry['status'], named = name): void =>
      this.options.onRequest?.({
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
    let answer = this.handle(target, method, url, req, body, plan.corrupt, name);
    if (answer.committed && plan.dropAfterCommit && this.faults.consumeDropAfterCommit(target.route, name)) {
      req.socket.destroy();
      log('dropped');
      return;
    }
    if (
      answer.committed &&
      plan.failAfterCommitStatus !== undefined &&
      this.faults.consumeFailAfterCommit(target.route, name)
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
    if (target.route === 'object.download' && answer.status < 300 && Buffer.isBuffer(answer.body)) {
      this.requests.served(answer.status === 206, answer.body.length);
    }
    log(
      answer.status,
      name ?? (isRecord(answer.body) && typeof answer.body.name === 'string' ? answer.body.name : undefined),
    );
  }

  /** Dispatches one request under GCS's per-object write limit; API errors become their JSON answer. */
  private handle(
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
      if (this.writeRateLimit.refuses(t.route, bucket, name)) {
        throw new ApiError(
          429,
          'rateLimitExceeded',
          'The object exceeded the rate limit for object mutation operations (create, update, and delete).',
        );
      }
      const answer = this.api.dispatch(t, method, url, req, body, originOf(req), corruptMedia);
      if (answer.committed) this.writeRateLimit.noteWrite(t.route, bucket, name);
      return answer;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      return { status: e.status, body: errorResource(e.status, e.reason, e.message) };
    }
  }

  /** The object (or folder) a request names, for name-scoped faults and the write limit. */
  private nameOf(t: Target, q: URLSearchParams): string | undefined {
    if (t.object !== undefined) return t.object;
    const upload = q.get('upload_id');
    return upload === null ? (q.get('name') ?? undefined) : this.state.sessions.get(upload)?.name;
  }

  /** `GET /_fake/stats`: requests by route and by operation, faults fired; `DELETE` resets the counts. */
  private control(method: string, path: string): Answer {
    if (path !== `${CONTROL_PATH}stats`) return { status: 404, body: errorResource(404, 'notFound', path) };
    if (method === 'DELETE') {
      this.requests.reset();
      return { status: 204 };
    }
    return {
      status: 200,
      body: {
        requests: this.requests.snapshot(),
        operations: this.requests.byOperation(),
        total: this.requests.count(),
        maxInFlight: this.requests.maxInFlight,
        downloadBytes: { ...this.requests.downloadBytes },
        faultsFired: { ...this.faults.fired, rateLimited: this.writeRateLimit.refused },
      },
    };
  }
}

/** Starts a GCS JSON-API fake on loopback that the real @google-cloud/storage client can talk to. */
export async function start(options: GcsFakeOptions = {}): Promise<RunningGcsFake> {
  const state = options.state ?? new FakeState(options.autoCreateBuckets ?? true);
  for (const b of options.buckets ?? []) if (!state.buckets.has(b)) state.insertBucket(b);
  const faults = new Faults();
  const requests = new RequestCounter();
  const writeRateLimit = new WriteRateLimit();
  if (options.writeRateLimitMs !== undefined) writeRateLimit.enable(options.writeRateLimitMs);
  const api = new JsonApi(state, options.renameOperationMs ?? 0);

  const fake = new FakeServer(options, state, faults, requests, writeRateLimit, api);
  const server = createServer((req, res) => {
    fake.serve(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, { status: 500, body: errorResource(500, 'backendError', String(e)) });
      else res.destroy();
    });
  });

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

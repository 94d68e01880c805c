import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
} from 'fastify';
import { Defaults, HourglassError } from '@hourglass/common';
import type { ApiKey, KeyRing } from '../api-keys.js';
import { decodeContent } from '../body.js';
import { sendError } from '../http-errors.js';

/**
 * Ingestion from browsers and apps with publishable keys: CORS for `POST /v1/events`
 * (preflight answered from the publishable keys' origins, the actual answer readable by
 * an allowed page) and beacon bodies. A beacon (`navigator.sendBeacon`) cannot set headers,
 * so its key travels as `?key=` and its body as text/plain JSON or a form field `events`;
 * the parsed body then goes through the JSON route's own validation and answer.
 */
export const INGEST_PATH = '/v1/events';
/** Request headers a page may send on a CORS request to the JSON route. */
const ALLOWED_HEADERS = 'authorization, content-type, content-encoding, traceparent, tracestate';
/** Response headers a page may read (the rest of the answer is in the body). */
const EXPOSED_HEADERS = 'retry-after';

/** The `?key=` token of a beacon, when there is exactly one. */
function queryKey(req: FastifyRequest): string | undefined {
  const key = (req.query as Record<string, unknown> | undefined)?.key;
  return typeof key === 'string' ? key : undefined;
}

/** The key of a request: a bearer token (any kind) or a publishable `?key=`. */
export function keyOfRequest(keys: KeyRing, req: FastifyRequest): ApiKey | undefined {
  return keys.authenticate(req.headers.authorization) ?? keys.publishable(queryKey(req));
}

/** Why a publishable key may not be used from this Origin, or undefined when it may (server keys always may). */
export function originRefusal(key: ApiKey, origin: string | undefined): string | undefined {
  if (!key.origins) return undefined;
  if (origin === undefined) return `publishable key ${key.name} needs an Origin header (it is for browsers and apps)`;
  if (key.origins.has(origin)) return undefined;
  return `origin ${JSON.stringify(origin.slice(0, 200))} is not listed on publishable key ${key.name}`;
}

/** Origins a preflight may be granted for: the `?key=`'s own, else every publishable key's. */
function preflightOrigins(keys: KeyRing, req: FastifyRequest): ReadonlySet<string> {
  const token = queryKey(req);
  return token === undefined ? keys.allOrigins() : (keys.publishable(token)?.origins ?? new Set());
}

/**
 * The CORS plugin, registered when auth is enabled (publishable keys need it). Not encapsulated
 * (`skip-override`, what fastify-plugin sets): its onRequest hook must land on the root
 * instance, so that the JSON route's scope, registered after it, inherits the hook.
 */
export const corsRoutes: FastifyPluginAsync = Object.assign(
  async (app: FastifyInstance) => {
    const { keys } = app.hourglass;
    if (keys) installCors(app, keys, Defaults.corsMaxAge);
  },
  { [Symbol.for('skip-override')]: true },
);

/**
 * Installs, on the root instance (so the JSON route's scope inherits the hook), the CORS
 * answer headers and the preflight route. Never `*`, never credentials: the key is the only
 * credential and it is sent explicitly; `Vary: Origin` keeps caches from mixing answers.
 */
function installCors(app: FastifyInstance, keys: KeyRing, maxAgeMs: number): void {
  const allowed = keys.allOrigins();
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (req.method === 'POST' && req.url.split('?')[0] === INGEST_PATH) {
      reply.header('vary', 'Origin');
      const origin = req.headers.origin;
      if (origin !== undefined && allowed.has(origin)) {
        reply.header('access-control-allow-origin', origin);
        reply.header('access-control-expose-headers', EXPOSED_HEADERS);
      }
    }
    done();
  });
  app.options(INGEST_PATH, (req, reply) => {
    reply.header('vary', 'Origin');
    const origin = req.headers.origin;
    if (origin === undefined || !preflightOrigins(keys, req).has(origin)) {
      const shown = origin === undefined ? 'no Origin header' : `origin ${JSON.stringify(origin.slice(0, 200))}`;
      return sendError(reply, 'ORIGIN_NOT_ALLOWED', `${shown}: not listed on any publishable API key`);
    }
    return reply
      .code(204)
      .headers({
        'access-control-allow-origin': origin,
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': ALLOWED_HEADERS,
        'access-control-max-age': String(Math.floor(maxAgeMs / 1000)),
      })
      .send();
  });
}

/**
 * Content types `sendBeacon` can send without a preflight, parsed into the same value the
 * JSON route's parser produces (`{"events":[...]}`), so the route itself does not change.
 */
export function addBeaconParsers(scope: FastifyInstance, maxDecompressedBytes: number): void {
  /** Other callers keep the JSON route's documented answer to these types (415). */
  const onlyBeacons = (req: FastifyRequest): void => {
    if (queryKey(req) === undefined) {
      throw new HourglassError(
        'HTTP_UNSUPPORTED_MEDIA_TYPE',
        `${req.headers['content-type']?.slice(0, 60)} is for beacons (?key=<publishable key>); send application/json`,
      );
    }
  };
  const parseJson = (text: string): unknown => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HourglassError('HTTP_BAD_REQUEST', 'the body is not valid JSON');
    }
  };
  scope.addContentTypeParser('text/plain', { parseAs: 'buffer' }, async (req: FastifyRequest, body: Buffer) => {
    onlyBeacons(req);
    const raw = await decodeContent(body, req.headers['content-encoding'], maxDecompressedBytes);
    return parseJson(raw.toString('utf8'));
  });
  scope.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'buffer' },
    async (req: FastifyRequest, body: Buffer) => {
      onlyBeacons(req);
      const raw = await decodeContent(body, req.headers['content-encoding'], maxDecompressedBytes);
      const events = new URLSearchParams(raw.toString('utf8')).get('events');
      if (events === null) throw new HourglassError('HTTP_BAD_REQUEST', 'the form has no "events" field');
      return { events: parseJson(events) };
    },
  );
}

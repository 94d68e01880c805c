import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { provisionTopology } from '@hourglass/cli';
import { Defaults, ManualClock, resourceNames, silentLogger, type Clock, sha256Hex } from '@hourglass/common';
import {
  buildGateway,
  defaultGatewayConfig,
  type ApiKey,
  type Gateway,
  type GatewayConfig,
  type MessagePublisher,
} from '@hourglass/gateway';
import { SchemaRegistry, decodeBundle, type DecodedBundle } from '@hourglass/schemas';
import { T0, uniquePrefix } from '../support/fixtures';
import { countIds, occurrencesOf } from '../support/tally';
import { pubsubFor, pullAll, type PulledMessage } from '../support/pubsub';

export { T0, uniquePrefix, pubsubFor, pullAll, type PulledMessage };

/** Shared helpers for the gateway suites: real emulator, unique names, pulling messages back. */
process.env.METADATA_SERVER_DETECTION = 'none';

export const registry = SchemaRegistry.load('schemas');
export const ALL_TYPES = registry.eventTypes();

/** Topics (with the consumer's subscriptions, as in production) plus one counting subscription per type. */
export async function provision(
  prefix: string,
  options: { apiEndpoint?: string; types?: readonly string[] } = {},
): Promise<Map<string, string>> {
  const types = options.types ?? ALL_TYPES;
  const previous = process.env.PUBSUB_EMULATOR_HOST;
  if (options.apiEndpoint) process.env.PUBSUB_EMULATOR_HOST = options.apiEndpoint;
  try {
    await provisionTopology({ projectId: Defaults.projectId, prefix, eventTypes: types });
  } finally {
    process.env.PUBSUB_EMULATOR_HOST = previous;
  }
  const pubsub = pubsubFor(options.apiEndpoint);
  const subs = new Map<string, string>();
  try {
    for (const t of types) {
      const sub = `${resourceNames(prefix, t).topic}-count`;
      await pubsub.topic(resourceNames(prefix, t).topic).createSubscription(sub, { ackDeadlineSeconds: 60 });
      subs.set(t, sub);
    }
  } finally {
    await pubsub.close();
  }
  return subs;
}

export interface FoundEvent {
  id: string;
  record: Record<string, unknown>;
  message: PulledMessage;
  bundle: DecodedBundle;
}

/** Pulls every type's counting subscription and decodes each bundle into its events. */
export async function pullEvents(subs: Map<string, string>, apiEndpoint?: string): Promise<FoundEvent[]> {
  const found: FoundEvent[] = [];
  for (const sub of subs.values()) {
    for (const message of await pullAll(sub, apiEndpoint)) {
      const bundle = decodeBundle(registry, message.data, message.attributes);
      for (const record of bundle.records) {
        found.push({ id: record.meta.event_id, record: record as Record<string, unknown>, message, bundle });
      }
    }
  }
  return found;
}

/** Jepsen-style tally of answers against what is on the topics. */
export function tally(acceptedIds: Iterable<string>, found: readonly FoundEvent[]) {
  const { expected, lost, duplicated, unexpected } = countIds(acceptedIds, occurrencesOf(found.map((f) => f.id)));
  return { accepted: expected, found: found.length, lost, duplicated, unexpected };
}

export const TOKENS = {
  all: 'token-all-types-0123456789',
  tracks: 'token-tracks-only-0123456789',
  slow: 'token-slow-0123456789',
};

export function testKeys(): ApiKey[] {
  return [
    { name: 'all', sha256: sha256Hex(TOKENS.all), types: undefined, ratePerSecond: 1_000_000 },
    { name: 'tracks', sha256: sha256Hex(TOKENS.tracks), types: new Set(['track_played']), ratePerSecond: 1_000_000 },
    { name: 'slow', sha256: sha256Hex(TOKENS.slow), types: undefined, ratePerSecond: 10 },
  ];
}

export interface TestGatewayOptions {
  prefix: string;
  config?: Partial<GatewayConfig>;
  clock?: Clock;
  publisher?: MessagePublisher;
  apiKeys?: ApiKey[];
}

export async function startTestGateway(options: TestGatewayOptions): Promise<Gateway> {
  const config = defaultGatewayConfig({
    prefix: options.prefix,
    auth: 'enabled',
    gatewayId: 'gw-test-1',
    ...options.config,
  });
  const gateway = await buildGateway({
    config,
    registry,
    clock: options.clock ?? new ManualClock(T0),
    logger: silentLogger,
    apiKeys: options.apiKeys ?? testKeys(),
    ...(options.publisher ? { publisher: options.publisher } : {}),
  });
  await gateway.checked;
  return gateway;
}

/** The JSON answer of POST /v1/events (see docs/http-api.md), as the tests read it. */
export interface Answer {
  accepted: number;
  rejected: number;
  retry: number;
  results: { status: string; id?: string; code?: string; path?: string; reason?: string }[];
  error?: { code: string; message: string };
}

export const auth = (token: string = TOKENS.all) => ({ authorization: `Bearer ${token}` });

export interface HttpResponse {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json<T = unknown>(): T;
}

export interface HttpRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a Buffer or string as is. */
  payload?: unknown;
}

/**
 * In-process HTTP through fastify's `inject()` (light-my-request): the full request
 * lifecycle — content-type parsing, body limits, hooks, error handler — without a socket.
 * Tests about connections themselves (shutdown, Connection: close) use `request()` on a port.
 */
export async function send(gateway: Gateway, req: HttpRequest): Promise<HttpResponse> {
  const headers: Record<string, string> = { ...req.headers };
  let payload: Buffer | string | undefined;
  if (Buffer.isBuffer(req.payload) || typeof req.payload === 'string') payload = req.payload;
  else if (req.payload !== undefined) {
    payload = JSON.stringify(req.payload);
    headers['content-type'] ??= 'application/json';
  }
  const res = await gateway.app.inject({
    method: (req.method ?? 'POST') as 'POST',
    url: req.url,
    headers,
    ...(payload !== undefined ? { payload } : {}),
  });
  return {
    statusCode: res.statusCode,
    headers: res.headers as http.IncomingHttpHeaders,
    body: res.body,
    json: <T>() => JSON.parse(res.body) as T,
  };
}

const listening = new WeakMap<Gateway, Promise<number>>();

/** The gateway's loopback port, listening on first use (for clients and connection tests). */
export function portOf(gateway: Gateway): Promise<number> {
  let port = listening.get(gateway);
  if (!port) {
    port = gateway.app
      .listen({ host: '127.0.0.1', port: 0 })
      .then(() => (gateway.app.server.address() as AddressInfo).port);
    listening.set(gateway, port);
  }
  return port;
}

export async function urlOf(gateway: Gateway): Promise<string> {
  return `http://127.0.0.1:${await portOf(gateway)}`;
}

/** Real HTTP against the gateway on a loopback port. */
export async function sendOverSocket(gateway: Gateway, req: HttpRequest): Promise<HttpResponse> {
  return request(await portOf(gateway), req);
}

export function request(port: number, req: HttpRequest): Promise<HttpResponse> {
  const headers: Record<string, string | number> = { ...req.headers };
  let body: Buffer | undefined;
  if (Buffer.isBuffer(req.payload)) body = req.payload;
  else if (typeof req.payload === 'string') body = Buffer.from(req.payload);
  else if (req.payload !== undefined) {
    body = Buffer.from(JSON.stringify(req.payload));
    headers['content-type'] ??= 'application/json';
  }
  if (body) headers['content-length'] = body.length;
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: '127.0.0.1', port, method: req.method ?? 'POST', path: req.url, headers, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          resolve({
            statusCode: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            json: <T>() => JSON.parse(text) as T,
          });
        });
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

/** Valid payloads of every shipped type. */
export const samplePayloads: Record<string, Record<string, unknown>> = {
  track_played: {
    user_id: 'u1',
    track_id: 'spotify:track:1',
    ms_played: 185_000,
    reason_start: 'CLICK_ROW',
    reason_end: 'TRACK_DONE',
    shuffle: false,
    platform: 'IOS',
    country: 'SE',
    offline: true,
    context_uri: 'spotify:playlist:9',
  },
  page_viewed: { user_id: null, page: 'home', referrer: null, duration_ms: 1200, platform: 'WEB' },
  search_performed: {
    user_id: 'u2',
    query: 'jazz',
    results_shown: 20,
    clicked_position: 3,
    latency_ms: 80,
    platform: 'ANDROID',
  },
  ad_impression: {
    user_id: 'u3',
    ad_id: 'ad-1',
    campaign_id: 'c-1',
    format: 'AUDIO',
    duration_ms: 30_000,
    clicked: false,
    price_micros: 2500,
    currency: 'USD',
  },
  ab_exposure: { user_id: 'u4', experiment_id: 'exp-1', variant: 'B', first_exposure: true },
};

/**
 * A TCP relay in front of an emulator: cutting it makes Pub/Sub unreachable for the
 * gateway at one precise moment while the test can still read the emulator directly.
 */
export class TcpRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: this.target });
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

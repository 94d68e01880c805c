import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { gzipSync } from 'node:zlib';
import { systemClock, type Clock } from '@hourglass/common';

/**
 * A small client for the gateway's JSON route. It assigns every event an id before the
 * first attempt, so a retry carries the SAME id (the consumer deduplicates by it);
 * re-sends only events answered `retry` (or whose request failed in transit) with
 * exponential backoff and full jitter; never re-sends a `rejected` event; and gives up
 * at a deadline, reporting what never got through as `failed`.
 */
export interface ClientEvent {
  type: string;
  payload: Record<string, unknown>;
  /** UUID; assigned by the client when absent. */
  id?: string;
  /** Client clock, epoch ms or ISO 8601; kept for reference only. */
  client_ts?: number | string;
}

export type EventStatus = 'accepted' | 'rejected' | 'failed';

export interface EventOutcome {
  id: string;
  type: string;
  /** accepted: Pub/Sub has it. rejected: permanent, never retried. failed: still transient at the deadline. */
  status: EventStatus;
  /** Requests that carried this event. */
  attempts: number;
  code?: string;
  path?: string;
  reason?: string;
}

export interface SendReport {
  sent: number;
  accepted: number;
  rejected: number;
  failed: number;
  /** Re-sends: one per event per extra attempt. */
  retried: number;
  requests: number;
  durationMs: number;
  /** One per event, in the order given. */
  outcomes: EventOutcome[];
}

export interface HourglassClientOptions {
  /** Gateway base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  apiKey?: string;
  /** Events per request (the gateway's default limit is 1000). */
  batchSize?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Give up on events still not accepted this long after send() began. */
  deadlineMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Upper bound for one request; the gateway answers within its publish timeout. */
  requestTimeoutMs?: number;
  gzip?: boolean;
  clock?: Clock;
  /** Injected for tests; defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Injected for tests; defaults to Math.random (the jitter). */
  random?: () => number;
}

interface WireResult {
  status?: string;
  id?: string;
  code?: string;
  path?: string;
  reason?: string;
}

interface HttpAnswer {
  status: number;
  retryAfterMs: number | undefined;
  body: { results?: WireResult[]; error?: { code?: string; message?: string } } | undefined;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Request-level answers that no retry can fix. */
const PERMANENT_STATUSES = new Set([400, 401, 403, 404, 405, 415, 422]);

export class HourglassClient {
  private readonly endpoint: URL;
  private readonly agent: http.Agent;
  private readonly options: Required<
    Omit<HourglassClientOptions, 'apiKey' | 'clock' | 'sleep' | 'random' | 'url' | 'gzip'>
  >;
  private readonly clock: Clock;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly config: HourglassClientOptions) {
    this.endpoint = new URL('/v1/events', config.url);
    const Agent = this.endpoint.protocol === 'https:' ? https.Agent : http.Agent;
    const concurrency = config.concurrency ?? 4;
    this.agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    this.options = {
      batchSize: config.batchSize ?? 500,
      concurrency,
      deadlineMs: config.deadlineMs ?? 60_000,
      initialBackoffMs: config.initialBackoffMs ?? 100,
      maxBackoffMs: config.maxBackoffMs ?? 10_000,
      requestTimeoutMs: config.requestTimeoutMs ?? 30_000,
    };
    this.clock = config.clock ?? systemClock;
    this.sleep = config.sleep ?? defaultSleep;
    this.random = config.random ?? Math.random;
  }

  async send(events: readonly ClientEvent[]): Promise<SendReport> {
    const started = this.clock.now();
    const deadline = started + this.options.deadlineMs;
    const outcomes: EventOutcome[] = events.map((e) => ({
      id: e.id ?? randomUUID(),
      type: e.type,
      status: 'failed',
      attempts: 0,
      code: 'NOT_SENT',
      reason: 'not sent before the deadline',
    }));
    const wire = events.map((e, i) => ({
      type: e.type,
      id: outcomes[i]!.id,
      ...(e.client_ts !== undefined ? { client_ts: e.client_ts } : {}),
      payload: e.payload,
    }));
    const chunks: number[][] = [];
    for (let i = 0; i < events.length; i += this.options.batchSize) {
      chunks.push(range(i, Math.min(events.length, i + this.options.batchSize)));
    }
    const counters = { requests: 0, retried: 0 };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < chunks.length) {
        const chunk = chunks[next++]!;
        await this.deliver(chunk, wire, outcomes, deadline, counters);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, chunks.length) }, worker));
    const report: SendReport = {
      sent: events.length,
      accepted: 0,
      rejected: 0,
      failed: 0,
      retried: counters.retried,
      requests: counters.requests,
      durationMs: this.clock.now() - started,
      outcomes,
    };
    for (const o of outcomes) report[o.status]++;
    return report;
  }

  /** Sends one chunk until every event in it is accepted, rejected, or the deadline passes. */
  private async deliver(
    chunk: number[],
    wire: readonly object[],
    outcomes: EventOutcome[],
    deadline: number,
    counters: { requests: number; retried: number },
  ): Promise<void> {
    let pending = chunk;
    let attempt = 0;
    let lastProblem: { code: string; reason: string } = { code: 'NOT_SENT', reason: 'not sent before the deadline' };
    while (pending.length > 0) {
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) break;
      if (attempt > 0) counters.retried += pending.length;
      for (const i of pending) outcomes[i]!.attempts++;
      counters.requests++;
      const answer = await this.post(
        pending.map((i) => wire[i]!),
        Math.min(this.options.requestTimeoutMs, remaining),
      );
      const retryAgain: number[] = [];
      if ('error' in answer) {
        lastProblem = { code: 'NETWORK', reason: answer.error };
        retryAgain.push(...pending);
      } else if (answer.body?.results && answer.body.results.length === pending.length) {
        const results = answer.body.results;
        for (let k = 0; k < pending.length; k++) {
          const r = results[k]!;
          const o = outcomes[pending[k]!]!;
          if (r.status === 'accepted') {
            setOutcome(o, 'accepted');
          } else if (r.status === 'rejected') {
            setOutcome(o, 'rejected', r.code, r.reason, r.path);
          } else {
            lastProblem = { code: r.code ?? 'RETRY', reason: r.reason ?? 'retry' };
            retryAgain.push(pending[k]!);
          }
        }
      } else if (answer.status === 413 && pending.length > 1) {
        // Too big as one request: split and send each half on its own.
        const half = Math.ceil(pending.length / 2);
        await this.deliver(pending.slice(0, half), wire, outcomes, deadline, counters);
        await this.deliver(pending.slice(half), wire, outcomes, deadline, counters);
        return;
      } else if (PERMANENT_STATUSES.has(answer.status) || answer.status === 413) {
        const err = answer.body?.error;
        for (const i of pending)
          setOutcome(outcomes[i]!, 'rejected', err?.code ?? `HTTP_${answer.status}`, err?.message);
      } else {
        const err = answer.body?.error;
        lastProblem = { code: err?.code ?? `HTTP_${answer.status}`, reason: err?.message ?? 'transient failure' };
        retryAgain.push(...pending);
      }
      pending = retryAgain;
      if (pending.length === 0) break;
      for (const i of pending) setOutcome(outcomes[i]!, 'failed', lastProblem.code, lastProblem.reason);
      const floor = 'error' in answer ? 0 : (answer.retryAfterMs ?? 0);
      const delay = Math.max(floor, this.backoff(attempt));
      if (this.clock.now() + delay >= deadline) break;
      await this.sleep(delay);
      attempt++;
    }
  }

  /** Full jitter: uniform in [0, min(max, initial * 2^attempt)]. */
  private backoff(attempt: number): number {
    const cap = Math.min(this.options.maxBackoffMs, this.options.initialBackoffMs * 2 ** Math.min(attempt, 30));
    return Math.round(this.random() * cap);
  }

  private post(events: readonly object[], timeoutMs: number): Promise<HttpAnswer | { error: string }> {
    let body: Buffer = Buffer.from(JSON.stringify({ events }), 'utf8');
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
    if (this.config.gzip) {
      body = gzipSync(body);
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = body.length;
    if (this.config.apiKey) headers.authorization = `Bearer ${this.config.apiKey}`;
    const request = this.endpoint.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve) => {
      const req = request(this.endpoint, { method: 'POST', headers, agent: this.agent, timeout: timeoutMs }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', (e) => resolve({ error: e.message }));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let parsed: HttpAnswer['body'];
          try {
            parsed = JSON.parse(text) as HttpAnswer['body'];
          } catch {
            parsed = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            retryAfterMs: retryAfterMs(res.headers['retry-after']),
            body: parsed,
          });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (e) => resolve({ error: e.message }));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function setOutcome(o: EventOutcome, status: EventStatus, code?: string, reason?: string, path?: string): void {
  o.status = status;
  if (code === undefined) delete o.code;
  else o.code = code;
  if (reason === undefined) delete o.reason;
  else o.reason = reason;
  if (path === undefined) delete o.path;
  else o.path = path;
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  if (typeof header !== 'string') return undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { EventGenerator } from '@hourglass/client';
import { seededRandom } from '@hourglass/common';
import { avroCases } from '../hostile/corpus-avro';
import { jsonBodyCases, jsonEventCases } from '../hostile/corpus-json';
import { EVENT_TYPES, FULL, Ledger, Pipeline, expectNothingLost, settle, sleep } from './pipeline';

/**
 * Soak (#14): 200 keep-alive connections for 60 s (`make test-faults`; 10 s in CI) against
 * the gateway process, 10% of the requests hostile rows of the corpus (tests/hostile), the
 * rest good batches. No answer may be a 5xx (a 503 OVERLOADED, PUBLISH_TIMEOUT or PUBLISH_FAILED
 * to a good batch, the documented back pressure while Pub/Sub lags, is counted apart; to a hostile
 * request, never), the gateway's RSS must stay within its first-half peak plus
 * the outstanding budget, and every event answered `accepted` must be in a closed window once.
 */
jest.setTimeout(600_000);

const CONNECTIONS = 200;
const DURATION_MS = FULL ? 60_000 : 10_000;

interface Request {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Events the request carries, by index: their type (an accepted one is counted if the consumers read its type). */
  types: string[];
  ids: (string | undefined)[];
}

function hostileRequests(): Request[] {
  const out: Request[] = [];
  for (const c of jsonEventCases) {
    out.push({
      path: '/v1/events',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(`{"events":[${c.event}]}`),
      types: [c.type],
      ids: [undefined],
    });
  }
  for (const c of jsonBodyCases) {
    out.push({ path: '/v1/events', headers: c.headers ?? {}, body: Buffer.from(c.body), types: [], ids: [] });
  }
  for (const c of avroCases) {
    const body = c.body ?? Buffer.concat(c.datums!.map((d) => d.bytes));
    out.push({
      path: `/v1/events/${c.type}`,
      headers: { 'content-type': 'avro/binary', ...c.headers },
      body,
      types: (c.datums ?? []).map(() => c.type),
      ids: [],
    });
  }
  return out;
}

function post(agent: http.Agent, base: URL, req: Request): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      { agent, host: base.hostname, port: base.port, method: 'POST', path: req.path, headers: req.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

test(`${CONNECTIONS} connections, 10% hostile, ${DURATION_MS / 1000} s: no 5xx, flat memory, every accepted event stored once`, async () => {
  const p = await Pipeline.start({ consumers: 1, store: 'local' });
  const ledger = new Ledger();
  const base = new URL(p.gatewayUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const hostile = hostileRequests();
  const generator = new EventGenerator(p.registry, { types: EVENT_TYPES, seed: 14 });
  const random = seededRandom(14);
  const statuses = new Map<number, number>();
  const counted = new Set(EVENT_TYPES);
  let hostileSent = 0;
  let networkErrors = 0;
  /**
   * 503 OVERLOADED, PUBLISH_TIMEOUT or PUBLISH_FAILED to a valid request: the documented answers
   * while Pub/Sub lags (the emulator shares two cores with the other scenarios: CI once saw 9
   * PUBLISH_TIMEOUTs while the deployed suite started beside this one); the client retries them.
   * Never an answer to a hostile request, and never any other 5xx.
   */
  let backPressure = 0;
  let hostileFiveXx = 0;
  const rss: { at: number; mb: number }[] = [];
  try {
    const started = Date.now();
    const sampler = setInterval(() => rss.push({ at: Date.now() - started, mb: rssMb(p.gateway.pid) }), 500);
    const connection = async (): Promise<void> => {
      while (Date.now() - started < DURATION_MS) {
        let req: Request;
        const isHostile = random() < 0.1;
        if (isHostile) {
          req = hostile[Math.floor(random() * hostile.length)]!;
          hostileSent++;
        } else {
          const events = generator.batch(5).map((e) => ({ ...e, id: randomUUID() }));
          req = {
            path: '/v1/events',
            headers: { 'content-type': 'application/json' },
            body: Buffer.from(JSON.stringify({ events })),
            types: events.map((e) => e.type),
            ids: events.map((e) => e.id),
          };
        }
        const sentAt = Date.now();
        let res: { status: number; body: string };
        try {
          res = await post(agent, base, req);
        } catch {
          networkErrors++; // the gateway closes the connection after some protocol errors; not a server error
          continue;
        }
        if (isHostile && res.status >= 500) hostileFiveXx++;
        const pubsubLags = res.status === 503 && /"(OVERLOADED|PUBLISH_TIMEOUT|PUBLISH_FAILED)"/.test(res.body);
        if (pubsubLags && !isHostile) backPressure++;
        else statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        ledger.firstSendMs = Math.min(ledger.firstSendMs, sentAt);
        ledger.lastAnswerMs = Math.max(ledger.lastAnswerMs, Date.now());
        const results = (JSON.parse(res.body) as { results?: { status: string; id?: string }[] }).results ?? [];
        results.forEach((r, i) => {
          if (!counted.has(req.types[i] ?? '')) return;
          const id = r.id ?? req.ids[i];
          if (id === undefined) return;
          ledger.sent.add(id);
          if (r.status === 'accepted') ledger.accepted.add(id);
          else if (r.status === 'rejected') ledger.rejected.add(id);
          else ledger.failed.add(id);
        });
      }
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, connection));
    clearInterval(sampler);
    agent.destroy();
    await sleep(1000);
    rss.push({ at: Date.now() - started, mb: rssMb(p.gateway.pid) });

    const fiveXx = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    const requests = [...statuses.values()].reduce((a, b) => a + b, backPressure);
    const half = rss.filter((s) => s.at > DURATION_MS / 2);
    const early = rss.filter((s) => s.at >= 2000 && s.at <= DURATION_MS / 2);
    const earlyMax = Math.max(...early.map((s) => s.mb));
    const lateMax = Math.max(...half.map((s) => s.mb));
    process.stdout.write(
      `hostile soak: ${requests} requests (${hostileSent} hostile), statuses ${JSON.stringify(Object.fromEntries(statuses))}, ` +
        `503 while Pub/Sub lags ${backPressure}, 5xx to hostile requests ${hostileFiveXx}, connection errors ${networkErrors}, gateway RSS max ${earlyMax.toFixed(0)} MB in the first half, ${lateMax.toFixed(0)} MB in the second\n`,
    );
    expect(fiveXx).toBe(0);
    expect(hostileFiveXx).toBe(0);
    expect(hostileSent).toBeGreaterThan(requests / 20);
    // Bounded, not flat to the byte: the gateway may hold up to maxOutstandingBytes (64 MiB) of
    // events while Pub/Sub lags, by design; beyond that plus a margin would be a leak.
    expect(lateMax).toBeLessThan(earlyMax + 64 * 1.049 + 32);

    const t = await settle(p, ledger);
    expect(t.accepted).toBeGreaterThan(1000);
    expectNothingLost('hostile-soak', t);
  } finally {
    agent.destroy();
    await p.stop();
  }
});

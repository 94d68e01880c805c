import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ms, GATEWAY_NODE_ARGS } from '@hourglass/common';
import { freePort } from '@hourglass/emulator';
import {
  TOKENS,
  auth,
  provision,
  pullEvents,
  samplePayloads,
  portOf,
  sendOverSocket,
  startTestGateway,
  tally,
  uniquePrefix,
  type Answer,
} from './support';

/**
 * SIGTERM during load, on the built server (services/gateway/dist/server.js): the gateway
 * stops accepting, finishes in-flight publishes, answers them and exits 0. Every event
 * it answered `accepted` is on the topic.
 */
const SERVER = join(__dirname, '../../services/gateway/dist/server.js');
jest.setTimeout(60_000);

function post(
  agent: http.Agent,
  port: number,
  body: Buffer,
): Promise<{ status: number; answer: Answer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/events',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            answer: JSON.parse(Buffer.concat(parts).toString()) as Answer,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('graceful shutdown', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  test('SIGTERM under load: in-flight events are answered and every accepted one is on its topic', async () => {
    if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: run \`npx tsc -b\` first`);
    const prefix = uniquePrefix('term');
    const subs = await provision(prefix);
    const port = await freePort();
    let stderr = '';
    child = spawn(process.execPath, [...GATEWAY_NODE_ARGS, SERVER], {
      env: {
        ...process.env,
        HOURGLASS_GATEWAY_HOST: '127.0.0.1',
        HOURGLASS_GATEWAY_PORT: String(port),
        HOURGLASS_PREFIX: prefix,
        HOURGLASS_AUTH: 'disabled',
        HOURGLASS_SCHEMAS_DIR: 'schemas',
        HOURGLASS_LOG_LEVEL: 'warn',
        // A longer linger keeps events in open bundles when the signal arrives.
        HOURGLASS_BUNDLE_LINGER: '25ms',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    // Ready once its topics are confirmed.
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
      if (ready === 200) break;
      if (child.exitCode !== null) throw new Error(`server exited: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const types = Object.keys(samplePayloads);
    const body = Buffer.from(
      JSON.stringify({
        events: Array.from({ length: 50 }, (_, i) => ({
          type: types[i % types.length],
          payload: samplePayloads[types[i % types.length]!],
        })),
      }),
    );
    const accepted: string[] = [];
    let answered = 0;
    let sigtermAt = 0;
    let answeredAfterSigterm = 0;
    let refusedShuttingDown = 0;
    let connectionErrors = 0;
    const statuses: Record<number, number> = {};
    const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
    const producer = async () => {
      for (;;) {
        try {
          const { status, answer } = await post(agent, port, body);
          statuses[status] = (statuses[status] ?? 0) + 1;
          answered++;
          if (sigtermAt && status === 200) answeredAfterSigterm++;
          if (answer.error?.code === 'SHUTTING_DOWN') refusedShuttingDown++;
          for (const r of answer.results ?? []) if (r.status === 'accepted') accepted.push(r.id!);
          if (answered === 40) {
            sigtermAt = Date.now();
            child!.kill('SIGTERM');
          }
        } catch {
          // Refused or reset: the server is gone; nothing was acknowledged on this request.
          connectionErrors++;
          if (sigtermAt) return;
          throw new Error('connection failed before SIGTERM');
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, producer));
    agent.destroy();
    const code = await exited;

    const found = await pullEvents(subs);
    const counts = tally(accepted, found);
    process.stdout.write(
      `shutdown: ${JSON.stringify({ ...counts, answeredAfterSigterm, refusedShuttingDown, connectionErrors, statuses, exit: code })}\n`,
    );
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(counts.accepted).toBeGreaterThanOrEqual(40 * 50);
    // Requests in flight at the signal were finished and answered.
    expect(answeredAfterSigterm).toBeGreaterThan(0);
    expect(counts.lost).toBe(0);
    expect(counts.duplicated).toBe(0);
    expect(counts.found).toBe(counts.accepted + counts.unexpected);
  });
});

describe('draining', () => {
  test('a request that arrives while the gateway drains is answered 503 SHUTTING_DOWN with Connection: close', async () => {
    const prefix = uniquePrefix('drain');
    const subs = await provision(prefix, { types: ['ab_exposure'] });
    const gateway = await startTestGateway({ prefix, config: { bundleLinger: ms(300) } });
    const port = await portOf(gateway);
    // One request in flight (lingering in a bundle) and one whose headers are still arriving.
    const inFlight = sendOverSocket(gateway, {
      url: '/v1/events',
      headers: auth(),
      payload: { events: [{ type: 'ab_exposure', payload: samplePayloads.ab_exposure }] },
    });
    await until(() => gateway.outstanding.events === 1);
    const late = connect({ host: '127.0.0.1', port });
    await new Promise((r) => late.once('connect', r));
    const body = JSON.stringify({ events: [{ type: 'ab_exposure', payload: samplePayloads.ab_exposure }] });
    late.write(`POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.all}\r\n`);
    const closing = gateway.close();
    late.write(`Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const raw = await new Promise<string>((resolve) => {
      let text = '';
      late.on('data', (c: Buffer) => (text += c.toString()));
      late.on('close', () => resolve(text));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 503 /);
    expect(raw).toMatch(/\r\nconnection: close\r\n/i);
    expect(raw).toMatch(/"code":"SHUTTING_DOWN"/);
    const first = await inFlight;
    expect(first.statusCode).toBe(200);
    await closing;
    const found = await pullEvents(subs);
    expect(tally([first.json<{ results: { id: string }[] }>().results[0]!.id], found)).toMatchObject({
      lost: 0,
      unexpected: 0,
      found: 1,
    });
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 1));
}

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resourceNames } from '@hourglass/common';
import type { Gateway } from '@hourglass/gateway';
import {
  TOKENS,
  auth,
  provision,
  pubsubFor,
  samplePayloads,
  send,
  portOf,
  startTestGateway,
  uniquePrefix,
} from './support';

/** /healthz, /readyz (topics checked at start and on every re-check), /metrics; and `hourglass send`. */
describe('probes and metrics', () => {
  const prefix = uniquePrefix('obs');
  let gateway: Gateway;

  beforeAll(async () => {
    await provision(prefix);
    gateway = await startTestGateway({ prefix });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  test('healthz and readyz', async () => {
    const health = await send(gateway, { method: 'GET', url: '/healthz' });
    expect([health.statusCode, health.json()]).toEqual([200, { status: 'ok' }]);
    const ready = await send(gateway, { method: 'GET', url: '/readyz' });
    expect([ready.statusCode, ready.json()]).toEqual([200, { ready: true, reason: '5 topics found' }]);
  });

  test('metrics count events per type and result, publish latency, bundle sizes and outstanding work', async () => {
    await send(gateway, {
      url: '/v1/events',
      headers: auth(),
      payload: {
        events: [
          { type: 'track_played', payload: samplePayloads.track_played },
          { type: 'track_played', payload: samplePayloads.track_played },
          { type: 'track_played', payload: {} },
          { type: 'nope', payload: {} },
        ],
      },
    });
    const res = await send(gateway, { method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const sample = (name: string, labels: string) => {
      const line = res.body.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
      return line === undefined ? undefined : Number(line.split(' ').pop());
    };
    expect(sample('hourglass_gateway_events_total', 'event_type="track_played",result="accepted"')).toBe(2);
    expect(sample('hourglass_gateway_events_total', 'event_type="track_played",result="rejected"')).toBe(1);
    expect(sample('hourglass_gateway_events_total', 'event_type="_unknown",result="rejected"')).toBe(1);
    expect(sample('hourglass_gateway_requests_total', 'route="json",status="207"')).toBe(1);
    expect(sample('hourglass_gateway_publish_latency_count', 'event_type="track_played"')).toBe(1);
    expect(sample('hourglass_gateway_bundle_events_sum', 'event_type="track_played"')).toBe(2);
    expect(res.body).toMatch(/^hourglass_gateway_outstanding_bytes\{[^}]*\} 0$/m);
    expect(res.body).toMatch(/^hourglass_gateway_outstanding_events\{[^}]*\} 0$/m);
  });

  test('readyz follows topics: a deleted topic turns it 503 at the next check', async () => {
    const pubsub = pubsubFor();
    try {
      await pubsub.topic(resourceNames(prefix, 'ab_exposure').topic).delete();
    } finally {
      await pubsub.close();
    }
    await gateway.readiness.check();
    const ready = await send(gateway, { method: 'GET', url: '/readyz' });
    expect([ready.statusCode, ready.json()]).toEqual([503, { ready: false, reason: '1 of 5 topics not found' }]);
  });
});

describe('hourglass send', () => {
  const CLI = join(__dirname, '../../packages/cli/bin/hourglass.js');
  test('sends a count of generated events and reports what happened', async () => {
    if (!existsSync(join(__dirname, '../../packages/cli/dist/commands/send.js'))) {
      throw new Error('the CLI is not built: run `npx tsc -b` first');
    }
    const prefix = uniquePrefix('send');
    await provision(prefix);
    const gateway = await startTestGateway({ prefix });
    try {
      const port = await portOf(gateway);
      // Asynchronously: spawnSync would block the gateway that lives in this process.
      const run = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            CLI,
            'send',
            '--url',
            `http://127.0.0.1:${port}`,
            '--api-key',
            TOKENS.all,
            '-n',
            '1000',
            '--batch',
            '100',
            '--invalid',
            '0.1',
            '--seed',
            '3',
            '--json',
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let stdout = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.on('exit', (status) => resolve({ status, stdout }));
      });
      expect(run.status).toBe(0);
      const report = JSON.parse(run.stdout) as Record<string, number> & { rejectedByCode: Record<string, number> };
      expect(report.sent).toBe(1000);
      expect((report.accepted ?? 0) + (report.rejected ?? 0)).toBe(1000);
      expect(report.rejected).toBeGreaterThan(0);
      expect(report.rejectedByCode).toEqual({ EVENT_INVALID: report.rejected });
      expect(report.failed).toBe(0);
      expect(report.acceptedPerSecond).toBeGreaterThan(0);
    } finally {
      await gateway.close();
    }
  });
});

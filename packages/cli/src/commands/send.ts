import type { Command } from 'commander';
import { Defaults, HourglassError, parseDuration } from '@hourglass/common';
import { SchemaRegistry } from '@hourglass/schemas';
import { EventGenerator, HourglassClient, type ClientEvent, type SendReport } from '@hourglass/client';

/**
 * `hourglass send`: a load generator. Sends realistic random events of the schemas to a
 * gateway, either a count as fast as the gateway answers or a rate for a duration, and
 * prints sent / accepted / rejected / retried / failed and events per second.
 */
interface SendOptions {
  url: string;
  apiKey?: string;
  count?: string;
  rate?: string;
  duration: string;
  batch: string;
  concurrency: string;
  types?: string;
  invalid: string;
  gzip?: boolean;
  deadline: string;
  seed?: string;
  dir: string;
  json?: boolean;
}

/** The client's counters summed over the run, plus rate figures. */
export interface LoadReport extends Pick<
  SendReport,
  'sent' | 'accepted' | 'rejected' | 'failed' | 'retried' | 'requests'
> {
  seconds: number;
  acceptedPerSecond: number;
  /** Batches that started later than the rate asked for (the gateway or this machine could not keep up). */
  lateBatches: number;
  rejectedByCode: Record<string, number>;
  failedByCode: Record<string, number>;
}

function number(name: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new HourglassError('CONFIG_INVALID', `--${name}=${raw} is invalid: expected a number in ${min}..${max}`);
  }
  return n;
}

function duration(name: string, raw: string): number {
  const d = parseDuration(raw);
  if (d === undefined || d <= 0)
    throw new HourglassError('CONFIG_INVALID', `--${name}=${raw} is invalid: expected a duration like 30s`);
  return d;
}

export function registerSendCommands(program: Command): void {
  program
    .command('send')
    .description('load generator: send random events of the schemas to a gateway and report the results')
    .option(
      '--url <url>',
      'gateway base URL',
      process.env.HOURGLASS_GATEWAY_URL ?? `http://127.0.0.1:${Defaults.gatewayPort}`,
    )
    .option('--api-key <key>', 'API key (default: $HOURGLASS_API_KEY)', process.env.HOURGLASS_API_KEY)
    .option('-n, --count <n>', 'events to send as fast as the gateway answers (default 1000 without --rate)')
    .option('--rate <events/s>', 'send at this rate for --duration instead of a count')
    .option('--duration <duration>', 'with --rate: how long to send', '10s')
    .option('--batch <n>', 'events per request', '100')
    .option('--concurrency <n>', 'requests in flight', '8')
    .option('--types <list>', 'comma-separated event types (default: all)')
    .option('--invalid <fraction>', 'fraction of events made invalid on purpose, to see rejections', '0')
    .option('--gzip', 'gzip request bodies')
    .option('--deadline <duration>', 'give up on an event still not accepted after this long', '60s')
    .option('--seed <n>', 'random seed, to repeat a run')
    .option('-d, --dir <dir>', 'schema directory', process.env.HOURGLASS_SCHEMAS_DIR ?? Defaults.schemasDir)
    .option('--json', 'print the report as JSON')
    .action(async (opts: SendOptions) => {
      const report = await runLoad(opts);
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(formatReport(report));
      const unexpectedRejections = number('invalid', opts.invalid, 0, 1) === 0 && report.rejected > 0;
      if (report.failed > 0 || unexpectedRejections) process.exitCode = 1;
    });
}

/** The load loop: options checked, open-loop schedule, retries and the tally in one place (a little over 80 lines). */
async function runLoad(opts: SendOptions): Promise<LoadReport> {
  const batch = number('batch', opts.batch, 1, 100_000);
  const concurrency = number('concurrency', opts.concurrency, 1, 1024);
  const invalid = number('invalid', opts.invalid, 0, 1);
  const rate = opts.rate === undefined ? undefined : number('rate', opts.rate, 1);
  const count = rate === undefined ? number('count', opts.count ?? '1000', 1) : Number.POSITIVE_INFINITY;
  const durationMs = rate === undefined ? Number.POSITIVE_INFINITY : duration('duration', opts.duration);
  const registry = SchemaRegistry.load(opts.dir);
  const types = opts.types
    ?.split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of types ?? []) {
    if (!registry.has(t)) throw new HourglassError('CONFIG_INVALID', `--types names unknown event type "${t}"`);
  }
  const generator = new EventGenerator(registry, {
    ...(types ? { types } : {}),
    ...(opts.seed ? { seed: number('seed', opts.seed, 0) } : {}),
  });
  const client = new HourglassClient({
    url: opts.url,
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    batchSize: batch,
    concurrency,
    deadlineMs: duration('deadline', opts.deadline),
    ...(opts.gzip ? { gzip: true } : {}),
  });
  const total: LoadReport = {
    sent: 0,
    accepted: 0,
    rejected: 0,
    failed: 0,
    retried: 0,
    requests: 0,
    seconds: 0,
    acceptedPerSecond: 0,
    lateBatches: 0,
    rejectedByCode: {},
    failedByCode: {},
  };
  const started = Date.now();
  const intervalMs = rate === undefined ? 0 : (1000 * batch) / rate;
  let scheduled = 0;
  let generated = 0;

  const nextBatch = (): ClientEvent[] => {
    const n = Math.min(batch, count - generated);
    generated += n;
    const events = generator.batch(n);
    for (const e of events) if (Math.random() < invalid) e.payload = { ...e.payload, not_a_field: true };
    return events;
  };
  const add = (r: SendReport): void => {
    total.sent += r.sent;
    total.accepted += r.accepted;
    total.rejected += r.rejected;
    total.failed += r.failed;
    total.retried += r.retried;
    total.requests += r.requests;
    for (const o of r.outcomes) {
      if (o.status === 'rejected') total.rejectedByCode[o.code ?? '?'] = (total.rejectedByCode[o.code ?? '?'] ?? 0) + 1;
      if (o.status === 'failed') total.failedByCode[o.code ?? '?'] = (total.failedByCode[o.code ?? '?'] ?? 0) + 1;
    }
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      if (rate === undefined) {
        if (generated >= count) return;
      } else {
        const due = started + scheduled * intervalMs;
        if (due - started >= durationMs) return;
        scheduled++;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        else if (wait < -intervalMs) total.lateBatches++;
      }
      add(await client.send(nextBatch()));
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    client.close();
  }
  total.seconds = (Date.now() - started) / 1000;
  total.acceptedPerSecond = total.seconds > 0 ? total.accepted / total.seconds : 0;
  return total;
}

function formatReport(r: LoadReport): string {
  const codes = (m: Record<string, number>) =>
    Object.keys(m).length
      ? ` (${Object.entries(m)
          .map(([c, n]) => `${c}: ${n}`)
          .join(', ')})`
      : '';
  return (
    `sent ${r.sent}, accepted ${r.accepted}, rejected ${r.rejected}${codes(r.rejectedByCode)}, ` +
    `retried ${r.retried}, failed ${r.failed}${codes(r.failedByCode)}\n` +
    `${r.requests} requests in ${r.seconds.toFixed(1)} s: ${Math.round(r.acceptedPerSecond)} events/s accepted` +
    `${r.lateBatches ? ` (${r.lateBatches} batches started late: the target rate was not reached)` : ''}\n`
  );
}

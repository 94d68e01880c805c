import { parseManifest, type IntervalWindow } from '@hourglass/bucket-format';
import { HourglassClient, EventGenerator, type ClientEvent, type EventOutcome } from '@hourglass/client';
import { decodeContainer } from '@hourglass/cli';
import { sleep } from './pipeline';
import { OP_KINDS, type Fleet, type OpKind } from './fleet';

/**
 * Traffic over many types and the per-type count of the fleet scale test: every id sent and
 * accepted, by type; every closed window read back with a plain Avro reader; when each window
 * was published.
 */
export const WINDOW_MS = 60_000;

export class TypeLedger {
  readonly sent = new Map<string, Set<string>>();
  readonly accepted = new Map<string, Set<string>>();
  firstSendMs = Number.POSITIVE_INFINITY;
  lastAnswerMs = 0;

  note(map: Map<string, Set<string>>, type: string, id: string): void {
    let ids = map.get(type);
    if (!ids) map.set(type, (ids = new Set()));
    ids.add(id);
  }

  /** The answers to one send: outcome i is the answer for event i. */
  record(batch: readonly ClientEvent[], outcomes: readonly EventOutcome[]): void {
    this.lastAnswerMs = Math.max(this.lastAnswerMs, Date.now());
    outcomes.forEach((outcome, i) => {
      const type = batch[i]!.type;
      this.note(this.sent, type, outcome.id);
      if (outcome.status === 'accepted') this.note(this.accepted, type, outcome.id);
    });
  }

  count(map: Map<string, Set<string>>): number {
    let n = 0;
    for (const ids of map.values()) n += ids.size;
    return n;
  }
}

/** Sends generated events of every type at `ratePerSec` until `untilMs`, calling `during` every round. */
export async function sendTraffic(
  f: Fleet,
  ledger: TypeLedger,
  o: { untilMs: number; ratePerSec: number; during?: () => Promise<void> | void },
): Promise<void> {
  const client = new HourglassClient({
    url: f.gatewayUrl,
    batchSize: 200,
    concurrency: 4,
    deadlineMs: 90_000,
    maxBackoffMs: 2000,
  });
  const generator = new EventGenerator(f.registry, { types: f.types, seed: 15 });
  const sends: Promise<void>[] = [];
  const roundMs = 250;
  try {
    while (Date.now() < o.untilMs) {
      const roundStart = Date.now();
      await o.during?.();
      const batch = generator.batch(Math.max(1, Math.round((o.ratePerSec * roundMs) / 1000)));
      ledger.firstSendMs = Math.min(ledger.firstSendMs, roundStart);
      // a few hundred rounds at most: every send is kept until the end
      sends.push(client.send(batch).then((r) => ledger.record(batch, r.outcomes)));
      await sleep(Math.max(0, roundMs - (Date.now() - roundStart)));
    }
    await Promise.all(sends);
  } finally {
    client.close();
  }
}

/** The windows holding the traffic: from the first send's window to the last answer's. */
export function trafficWindows(ledger: TypeLedger): IntervalWindow[] {
  const out: IntervalWindow[] = [];
  const first = Math.floor(ledger.firstSendMs / WINDOW_MS) * WINDOW_MS;
  for (let w = first; w <= ledger.lastAnswerMs; w += WINDOW_MS) out.push({ start: w, end: w + WINDOW_MS });
  return out;
}

/** Waits until every traffic window of every type is published; returns each one's delay after its end (ms). */
export async function closeDelays(f: Fleet, windows: readonly IntervalWindow[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const delays: number[] = [];
    const open: string[] = [];
    for (const type of f.types) {
      for (const w of windows) {
        const at = f.publishedAt(type, w);
        if (at === undefined) open.push(`${type}@${new Date(w.start).toISOString()}`);
        else delays.push(at - w.end);
      }
    }
    if (open.length === 0) return delays;
    if (Date.now() > deadline) {
      throw new Error(`${open.length} windows not closed within ${timeoutMs} ms, e.g. ${open.slice(0, 5).join(', ')}`);
    }
    await sleep(500);
  }
}

export interface TypeTally {
  type: string;
  sent: number;
  accepted: number;
  stored: number;
  late: number;
  lost: number;
  duplicated: number;
  unexpected: number;
}

/** Reads every closed window of every type back (manifest, then each file with a plain Avro reader). */
export async function tallyTypes(f: Fleet, ledger: TypeLedger): Promise<TypeTally[]> {
  const out: TypeTally[] = [];
  for (const type of f.types) {
    const seen = new Map<string, number>();
    let stored = 0;
    let late = 0;
    for (const o of await f.store.list(`${type}/`)) {
      if (!o.name.endsWith('/_SUCCESS')) continue;
      const m = parseManifest((await f.store.get(o.name))!, o.name);
      late += m.counts.late;
      for (const file of m.files) {
        const records = (await decodeContainer((await f.store.get(file.path))!)) as { meta: { event_id: string } }[];
        stored += records.length;
        for (const r of records) seen.set(r.meta.event_id, (seen.get(r.meta.event_id) ?? 0) + 1);
      }
    }
    const sent = ledger.sent.get(type) ?? new Set<string>();
    const accepted = ledger.accepted.get(type) ?? new Set<string>();
    let duplicated = 0;
    let unexpected = 0;
    for (const [id, n] of seen) {
      duplicated += n - 1;
      if (!sent.has(id)) unexpected++;
    }
    const lost = [...accepted].filter((id) => !seen.has(id)).length;
    out.push({ type, sent: sent.size, accepted: accepted.size, stored, late, lost, duplicated, unexpected });
  }
  return out;
}

/** Sums a per-type tally. */
export function totalOf(t: readonly TypeTally[]): Omit<TypeTally, 'type'> {
  const sum = { sent: 0, accepted: 0, stored: 0, late: 0, lost: 0, duplicated: 0, unexpected: 0 };
  for (const row of t) for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += row[k];
  return sum;
}

/** Tallies until nothing accepted is missing (a redelivery after its window closed lands late in a later one). */
export async function settleTypes(f: Fleet, ledger: TypeLedger, settleMs: number): Promise<TypeTally[]> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const t = await tallyTypes(f, ledger);
    if (totalOf(t).lost === 0 || Date.now() > deadline) return t;
    await sleep(5000);
  }
}

/** One table row per replica: its store operations per minute by kind. */
export function opsTable(label: string, f: Fleet): string {
  const head = ['replica', 'minutes', ...OP_KINDS, 'total'];
  const rows = f.replicas.map((r) => {
    const per = r.ops.perMinute();
    const minutes = (((r.ops.stoppedMs ?? Date.now()) - r.ops.startedMs) / 60_000).toFixed(2);
    return [r.id, minutes, ...OP_KINDS.map((k: OpKind) => String(per[k])), String(per.total)];
  });
  return [
    `${label}: store operations per replica per minute`,
    head.join(' | '),
    ...rows.map((r) => r.join(' | ')),
  ].join('\n');
}

/** Windows each replica closed, from its log ("window closed" lines): how the closes spread. */
export function closesPerReplica(f: Fleet): string {
  return f.replicas
    .map(
      (r) =>
        `${r.id} ${
          f
            .log(r.id)
            .split('\n')
            .filter((l) => l.includes('"msg":"window closed"')).length
        }`,
    )
    .join(', ');
}

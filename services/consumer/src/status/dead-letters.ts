import type { ObjectStore } from '@hourglass/storage';
import { DEADLETTER } from '@hourglass/bucket-format';
import type { DeadLetterReason, DeadLetterView, WindowCell } from './snapshot.js';

/**
 * Dead letters for the status page: `_deadletter/<type>/dt=<day>/<messageId>.json`, one folder per
 * day the consumer received them. Only the days the grid shows are listed, each at most every
 * DEAD_LETTER_LIST_EVERY; a body (its reason) is read once, since a dead letter never changes, and
 * at most DEAD_LETTER_READS new ones per type and refresh: a message may be up to 10 MB.
 */
const DEAD_LETTER_LIST_EVERY = 30_000;
const DEAD_LETTER_READS = 20;
/** Most recent days listed, whatever the window size (24 h windows would span 12 days). */
const MAX_DAYS = 3;
const BODY_CACHE_ENTRIES = 10_000;
const REASONS_SHOWN = 5;

interface DeadLetterFacts {
  code: string;
  message: string;
  receivedAt: number;
  /** The bundle's smallest gateway_ts when its attributes carry one, else when it was received. */
  eventTime: number;
}

export class DeadLetterReader {
  private readonly bodies = new Map<string, DeadLetterFacts>();
  private readonly listings = new Map<string, { at: number; names: string[] }>();

  /** Counts the dead letters of the grid's days and marks each read one in its window's cell. */
  async read(store: ObjectStore, eventType: string, cells: WindowCell[], now: number): Promise<DeadLetterView> {
    const days = [...new Set([...cells.map((c) => dayOf(c.start)), dayOf(now)])].sort().slice(-MAX_DAYS);
    const names: string[] = [];
    for (const day of days) names.push(...(await this.listDay(store, `${DEADLETTER}/${eventType}/dt=${day}/`, now)));
    const unread = names.filter((n) => !this.bodies.has(n)).slice(-DEAD_LETTER_READS);
    for (const name of unread) {
      const data = await store.get(name);
      if (data) this.remember(name, parseDeadLetter(data));
    }
    const reasons = new Map<string, DeadLetterReason>();
    let read = 0;
    for (const name of names) {
      const facts = this.bodies.get(name);
      if (!facts) continue;
      read++;
      const cell = cells.find((c) => c.start <= facts.eventTime && facts.eventTime < c.end);
      if (cell) cell.deadLetters++;
      const key = `${facts.code}\n${facts.message}`;
      const reason = reasons.get(key) ?? { code: facts.code, message: facts.message, count: 0, latestAt: 0 };
      reason.count++;
      reason.latestAt = Math.max(reason.latestAt, facts.receivedAt);
      reasons.set(key, reason);
    }
    const latestFirst = [...reasons.values()].sort((a, b) => b.latestAt - a.latestAt).slice(0, REASONS_SHOWN);
    return { count: names.length, days, reasons: latestFirst, read };
  }

  private async listDay(store: ObjectStore, folder: string, now: number): Promise<string[]> {
    const known = this.listings.get(folder);
    if (known && now - known.at < DEAD_LETTER_LIST_EVERY) return known.names;
    const names = (await store.list(folder)).map((o) => o.name).filter((n) => n.endsWith('.json'));
    this.listings.set(folder, { at: now, names });
    return names;
  }

  private remember(name: string, facts: DeadLetterFacts): void {
    if (this.bodies.size >= BODY_CACHE_ENTRIES) this.bodies.delete(this.bodies.keys().next().value!);
    this.bodies.set(name, facts);
  }
}

function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The fields the page shows of a dead letter as the stager writes it; an unreadable one says so. */
export function parseDeadLetter(data: Buffer): DeadLetterFacts {
  try {
    const v = JSON.parse(data.toString('utf8')) as {
      reason?: { code?: unknown; message?: unknown };
      receivedAt?: unknown;
      attributes?: Record<string, unknown>;
    };
    const receivedAt = typeof v.receivedAt === 'string' ? Date.parse(v.receivedAt) : NaN;
    const gatewayTs = Number(v.attributes?.gateway_ts);
    return {
      code: typeof v.reason?.code === 'string' ? v.reason.code : 'UNKNOWN',
      message: typeof v.reason?.message === 'string' ? v.reason.message : '',
      receivedAt: Number.isFinite(receivedAt) ? receivedAt : 0,
      eventTime: Number.isFinite(gatewayTs) && gatewayTs > 0 ? gatewayTs : receivedAt,
    };
  } catch {
    return { code: 'UNREADABLE', message: 'the dead-letter object is not JSON', receivedAt: 0, eventTime: NaN };
  }
}

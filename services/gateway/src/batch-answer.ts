import type { ErrorCode } from '@hourglass/common';
import { JsonBytes } from '@hourglass/schemas';
import { EVENT_ID_AT } from './prepare.js';

/**
 * The per-request answer: one result per event, by index. Bundles settle events from
 * many requests; each request waits on its own BatchAnswer and is answered once every
 * event it handed to a bundle has settled (the handover ack).
 */
export interface EventProblem {
  readonly code: ErrorCode;
  /** Field path inside the event (`payload.ms_played`, `id`, `type`), for rejections. */
  readonly path?: string;
  readonly reason: string;
}

// 0: not (yet) rejected or expected
const ACCEPTED = 1;
const REJECTED = 2;
const RETRY = 3;
const PENDING = 4;

export class BatchAnswer {
  private readonly outcome: Uint8Array;
  /** Each expected event's id, 36 ASCII bytes at index × 36: copied, never made a string. */
  private readonly ids: Buffer;
  private readonly problems: (EventProblem | undefined)[];
  accepted = 0;
  rejected = 0;
  retry = 0;
  private pending = 0;
  private resolve: (() => void) | undefined;

  constructor(readonly size: number) {
    this.outcome = new Uint8Array(size);
    this.ids = Buffer.alloc(size * UUID_LENGTH);
    this.problems = new Array<EventProblem | undefined>(size);
  }

  rejectEvent(index: number, problem: EventProblem): void {
    this.outcome[index] = REJECTED;
    this.problems[index] = problem;
    this.rejected++;
  }

  /** The event went to a bundle; its result comes later through settle(). */
  expect(index: number, eventId: string): void {
    this.ids.write(eventId, index * UUID_LENGTH, UUID_LENGTH, 'latin1');
    this.outcome[index] = PENDING;
    this.pending++;
  }

  /** As expect(), the id read from the event's datum, which starts at `start` of `source` (see PreparedEvents). */
  expectDatum(index: number, source: Uint8Array, start = 0): void {
    const ids = this.ids;
    const idAt = start + EVENT_ID_AT;
    let at = index * UUID_LENGTH;
    for (let i = idAt; i < idAt + UUID_LENGTH; i++) ids[at++] = source[i]!;
    this.outcome[index] = PENDING;
    this.pending++;
  }

  /** Answers every pending event with `retry` (the request could not be handed to Pub/Sub). */
  retryAllPending(problem: EventProblem): void {
    for (let i = 0; i < this.size; i++) {
      if (this.outcome[i] === PENDING) this.settle(i, problem);
    }
  }

  /** `problem` undefined = accepted; otherwise the event is to be retried. */
  settle(index: number, problem: EventProblem | undefined): void {
    if (this.outcome[index] !== PENDING) return;
    if (problem === undefined) {
      this.outcome[index] = ACCEPTED;
      this.accepted++;
    } else {
      this.outcome[index] = RETRY;
      this.problems[index] = problem;
      this.retry++;
    }
    if (--this.pending === 0 && this.resolve) this.resolve();
  }

  /** Resolves when every expected event has settled. */
  settled(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  /** First retry problem, for the error field of an all-retry answer. */
  firstRetryProblem(): EventProblem | undefined {
    for (let i = 0; i < this.size; i++) if (this.outcome[i] === RETRY) return this.problems[i];
    return undefined;
  }

  /**
   * 200 all accepted; 400 all rejected (403 when every rejection is a forbidden type);
   * 503 nothing rejected and nothing accepted (all retry); 207 anything else.
   */
  statusCode(): number {
    if (this.accepted === this.size) return 200;
    if (this.rejected === this.size) return this.allForbidden() ? 403 : 400;
    if (this.accepted === 0 && this.rejected === 0) return 503;
    return 207;
  }

  private allForbidden(): boolean {
    for (let i = 0; i < this.size; i++) if (this.problems[i]?.code !== 'HTTP_FORBIDDEN') return false;
    return true;
  }

  /**
   * The JSON answer as bytes, written by hand: ids are checked UUIDs (36 ASCII characters),
   * codes are catalogue names. Accepted entries, nearly all of them, are copied into one
   * buffer of the exact size: no string per entry, and no flattening before the socket.
   */
  toBody(): Buffer {
    let head = `{"accepted":${this.accepted},"rejected":${this.rejected},"retry":${this.retry}`;
    if (this.accepted === 0 && this.rejected < this.size) {
      const p = this.firstRetryProblem();
      if (p) head += `,"error":{"code":"${p.code}","message":${JSON.stringify(p.reason)}}`;
    }
    head += ',"results":[';
    // Entries other than `accepted` are rare; they are written as strings.
    let others: Map<number, string> | undefined;
    let size = head.length + Math.max(0, this.size - 1) + 2;
    for (let i = 0; i < this.size; i++) {
      if (this.outcome[i] === ACCEPTED) {
        size += ACCEPTED_ENTRY_BYTES;
        continue;
      }
      const entry = this.otherEntry(i);
      (others ??= new Map()).set(i, entry);
      size += Buffer.byteLength(entry);
    }
    const body = Buffer.allocUnsafe(size);
    const ids = this.ids;
    let pos = body.write(head, 0, 'latin1');
    for (let i = 0; i < this.size; i++) {
      if (i > 0) body[pos++] = COMMA;
      const entry = others?.get(i);
      if (entry !== undefined) {
        pos += body.write(entry, pos, 'utf8');
      } else {
        pos += ACCEPTED_HEAD.copy(body, pos);
        for (let at = i * UUID_LENGTH; at < (i + 1) * UUID_LENGTH; at++) body[pos++] = ids[at]!;
        pos += ACCEPTED_TAIL.copy(body, pos);
      }
    }
    body[pos++] = CLOSE_ARRAY;
    body[pos++] = CLOSE_OBJECT;
    return body;
  }

  private otherEntry(i: number): string {
    if (this.outcome[i] === REJECTED) {
      const p = this.problems[i]!;
      let out = `{"status":"rejected","code":"${p.code}"`;
      if (p.path !== undefined) out += `,"path":${JSON.stringify(p.path)}`;
      return out + `,"reason":${JSON.stringify(p.reason)}}`;
    }
    const p = this.problems[i];
    const id = this.ids.toString('latin1', i * UUID_LENGTH, (i + 1) * UUID_LENGTH);
    return `{"status":"retry","id":"${id}","code":"${p?.code ?? 'PUBLISH_FAILED'}","reason":${JSON.stringify(p?.reason ?? 'not published')}}`;
  }
}

const ACCEPTED_HEAD = Buffer.from('{"status":"accepted","id":"', 'latin1');
const ACCEPTED_TAIL = Buffer.from('"}', 'latin1');
const UUID_LENGTH = 36;
const ACCEPTED_ENTRY_BYTES = ACCEPTED_HEAD.length + UUID_LENGTH + ACCEPTED_TAIL.length;
const { COMMA, CLOSE_ARRAY, CLOSE_OBJECT } = JsonBytes;

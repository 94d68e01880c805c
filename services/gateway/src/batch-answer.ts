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
  /**
   * The answer's bytes, written as events are expected: entry i of the results, as accepted
   * (`{"status":"accepted","id":"…"}` and a comma), at `headRoom + i × ENTRY_STRIDE`. When all
   * are accepted, toBody writes the head in the room before them and the closing brackets over
   * the last comma: no copy. Otherwise it builds the body anew, taking the ids from here.
   */
  private readonly entries: Buffer;
  /** Bytes before the first entry: the longest head without an error (headRoomFor). */
  private readonly headRoom: number;
  private readonly problems: (EventProblem | undefined)[];
  accepted = 0;
  rejected = 0;
  retry = 0;
  private pending = 0;
  private resolve: (() => void) | undefined;

  constructor(readonly size: number) {
    this.outcome = new Uint8Array(size);
    this.headRoom = headRoomFor(size);
    this.entries = Buffer.allocUnsafe(this.headRoom + size * ENTRY_STRIDE + 1);
    this.problems = new Array<EventProblem | undefined>(size);
  }

  rejectEvent(index: number, problem: EventProblem): void {
    this.outcome[index] = REJECTED;
    this.problems[index] = problem;
    this.rejected++;
  }

  /** The event went to a bundle; its result comes later through settle(). */
  expect(index: number, eventId: string): void {
    const at = this.entryAt(index);
    this.entries.write(eventId, at + ACCEPTED_HEAD.length, UUID_LENGTH, 'latin1');
    this.expected(index, at);
  }

  /** As expect(), the id read from the event's datum, which starts at `start` of `source` (see PreparedEvents). */
  expectDatum(index: number, source: Uint8Array, start = 0): void {
    const entries = this.entries;
    const at = this.entryAt(index);
    const idAt = start + EVENT_ID_AT;
    let to = at + ACCEPTED_HEAD.length;
    for (let i = idAt; i < idAt + UUID_LENGTH; i++) entries[to++] = source[i]!;
    this.expected(index, at);
  }

  /** Entry `index`'s bytes but the id: small constant runs, cheaper as byte stores than as copy() calls. */
  private expected(index: number, at: number): void {
    const entries = this.entries;
    for (let i = 0; i < ACCEPTED_HEAD.length; i++) entries[at + i] = ACCEPTED_HEAD[i]!;
    const tail = at + ACCEPTED_HEAD.length + UUID_LENGTH;
    entries[tail] = QUOTE;
    entries[tail + 1] = CLOSE_OBJECT;
    entries[tail + 2] = COMMA;
    this.outcome[index] = PENDING;
    this.pending++;
  }

  private entryAt(index: number): number {
    return this.headRoom + index * ENTRY_STRIDE;
  }

  /** Event `index`'s id, as expect() was given it. */
  private idOf(index: number): string {
    const at = this.entryAt(index) + ACCEPTED_HEAD.length;
    return this.entries.toString('latin1', at, at + UUID_LENGTH);
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
   * codes are catalogue names. All accepted, nearly every answer, is the entries written as the
   * events were expected, with the head before them (a view, no copy). Otherwise accepted
   * entries are copied into one buffer of the exact size, the others written as strings.
   */
  toBody(): Buffer {
    let head = `{"accepted":${this.accepted},"rejected":${this.rejected},"retry":${this.retry}`;
    if (this.accepted === this.size && this.size > 0) {
      head += RESULTS_KEY;
      const entries = this.entries;
      const from = this.headRoom - head.length;
      entries.write(head, from, 'latin1');
      const end = entries.length; // the last entry's comma and one byte more
      entries[end - 2] = CLOSE_ARRAY; // over the last entry's comma
      entries[end - 1] = CLOSE_OBJECT;
      return entries.subarray(from, end);
    }
    if (this.accepted === 0 && this.rejected < this.size) {
      const p = this.firstRetryProblem();
      if (p) head += `,"error":{"code":"${p.code}","message":${JSON.stringify(p.reason)}}`;
    }
    head += RESULTS_KEY;
    // Entries other than `accepted` are rare; they are written as strings.
    let others: Map<number, string> | undefined;
    let size = Buffer.byteLength(head) + Math.max(0, this.size - 1) + 2; // an error's message may be any text
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
    let pos = body.write(head, 0, 'utf8');
    for (let i = 0; i < this.size; i++) {
      if (i > 0) body[pos++] = COMMA;
      const entry = others?.get(i);
      if (entry !== undefined) {
        pos += body.write(entry, pos, 'utf8');
      } else {
        const at = this.entryAt(i);
        pos += this.entries.copy(body, pos, at, at + ACCEPTED_ENTRY_BYTES);
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
    // an event never expected has no id here (its bytes are not written): none is shown
    const id = this.outcome[i] === 0 ? '' : this.idOf(i);
    return `{"status":"retry","id":"${id}","code":"${p?.code ?? 'PUBLISH_FAILED'}","reason":${JSON.stringify(p?.reason ?? 'not published')}}`;
  }
}

const ACCEPTED_HEAD = Buffer.from('{"status":"accepted","id":"', 'latin1');
const UUID_LENGTH = 36;
/** An accepted entry: its head, the id, and `"}`. */
const ACCEPTED_ENTRY_BYTES = ACCEPTED_HEAD.length + UUID_LENGTH + 2;
/** An accepted entry and the comma after it. */
const ENTRY_STRIDE = ACCEPTED_ENTRY_BYTES + 1;
const RESULTS_KEY = ',"results":[';
const { COMMA, CLOSE_ARRAY, CLOSE_OBJECT, QUOTE } = JsonBytes;

/** The longest head without an error for `size` events: three counts of at most `size` each. */
function headRoomFor(size: number): number {
  return `{"accepted":,"rejected":,"retry":${RESULTS_KEY}`.length + 3 * String(size).length;
}

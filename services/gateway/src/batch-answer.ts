import type { ErrorCode } from '@hourglass/common';

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

const PENDING = 0;
const ACCEPTED = 1;
const REJECTED = 2;
const RETRY = 3;

export class BatchAnswer {
  private readonly outcome: Uint8Array;
  private readonly ids: string[];
  private readonly problems: (EventProblem | undefined)[];
  accepted = 0;
  rejected = 0;
  retry = 0;
  private pending = 0;
  private resolve: (() => void) | undefined;

  constructor(readonly size: number) {
    this.outcome = new Uint8Array(size);
    this.ids = new Array<string>(size);
    this.problems = new Array<EventProblem | undefined>(size);
  }

  rejectEvent(index: number, problem: EventProblem): void {
    this.outcome[index] = REJECTED;
    this.problems[index] = problem;
    this.rejected++;
  }

  /** The event went to a bundle; its result comes later through settle(). */
  expect(index: number, eventId: string): void {
    this.ids[index] = eventId;
    this.pending++;
  }

  /** Answers every pending event with `retry` (the request could not be handed to Pub/Sub). */
  retryAllPending(problem: EventProblem): void {
    for (let i = 0; i < this.size; i++) {
      if (this.outcome[i] === PENDING && this.ids[i] !== undefined) this.settle(i, problem);
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

  /** The JSON answer, written by hand: ids are checked UUIDs, codes are catalogue names. */
  toJson(): string {
    let out = `{"accepted":${this.accepted},"rejected":${this.rejected},"retry":${this.retry}`;
    if (this.accepted === 0 && this.rejected < this.size) {
      const p = this.firstRetryProblem();
      if (p) out += `,"error":{"code":"${p.code}","message":${JSON.stringify(p.reason)}}`;
    }
    out += ',"results":[';
    for (let i = 0; i < this.size; i++) {
      if (i > 0) out += ',';
      const o = this.outcome[i];
      if (o === ACCEPTED) {
        out += `{"status":"accepted","id":"${this.ids[i]}"}`;
      } else if (o === REJECTED) {
        const p = this.problems[i]!;
        out += `{"status":"rejected","code":"${p.code}"`;
        if (p.path !== undefined) out += `,"path":${JSON.stringify(p.path)}`;
        out += `,"reason":${JSON.stringify(p.reason)}}`;
      } else {
        const p = this.problems[i];
        out += `{"status":"retry","id":"${this.ids[i]}","code":"${p?.code ?? 'PUBLISH_FAILED'}","reason":${JSON.stringify(p?.reason ?? 'not published')}}`;
      }
    }
    return out + ']}';
  }
}

/** Backoff after a failed Pull, doubling up to the max. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;
/** Without long polls: after an empty answer, wait this long before the next Pull, doubling up to the max. */
const EMPTY_MIN_MS = 20;
const EMPTY_MAX_MS = 250;
/**
 * With long polls: the least wait after an empty answer. Cloud Pub/Sub may answer a long poll
 * empty at once (e.g. while a subscription is being created or under load); without a floor the
 * loop would re-pull in a tight loop.
 */
export const LONG_POLL_EMPTY_FLOOR_MS = 100;
/** While paused: how long the loop waits for resume() before looking again. */
export const PAUSED_RECHECK_MS = RETRY_MAX_MS;

/**
 * The short-poll floor for a process reading `subscriptions` subscriptions: 2 ms each, 20–250 ms.
 * Short polls cost a gRPC call each whatever they bring; with 100 subscriptions on the emulator a
 * replica's Pulls and acks took 35–40% of its CPU (a 100-type fleet on 2 cores closed windows
 * minutes late). Spacing each subscription's Pulls by its share keeps the process's Pull rate
 * near 500/s, for at most that much more delay per message.
 */
export function shortPollFloorMs(subscriptions: number): number {
  return Math.min(EMPTY_MAX_MS, Math.max(EMPTY_MIN_MS, 2 * subscriptions));
}

/**
 * How long a unary pull loop waits before its next Pull, by what the last one brought: failures
 * back off 100 ms → 5 s; empty short polls back off from the floor, doubling up to twice it or
 * 250 ms; an empty long poll waits its floor; a drained short poll of a many-subscription process
 * waits its share (the floor) before the next.
 */
export class PollPacing {
  private retryMs = RETRY_MIN_MS;
  private emptyMs: number;
  private readonly floorMs: number;
  private readonly emptyMaxMs: number;

  constructor(
    private readonly longPoll: boolean,
    shortPollFloor: number | undefined,
  ) {
    this.floorMs = shortPollFloor ?? EMPTY_MIN_MS;
    this.emptyMaxMs = Math.max(EMPTY_MAX_MS, 2 * this.floorMs);
    this.emptyMs = this.floorMs;
  }

  /** A Pull answered: the failure backoff starts over. */
  answered(): void {
    this.retryMs = RETRY_MIN_MS;
  }

  /** The wait after a failed Pull; the next failure waits twice as long. */
  afterFailure(): number {
    const ms = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    return ms;
  }

  /** The wait after an answer with no message. */
  afterEmpty(): number {
    if (this.longPoll) return LONG_POLL_EMPTY_FLOOR_MS;
    const ms = this.emptyMs;
    this.emptyMs = Math.min(this.emptyMaxMs, this.emptyMs * 2);
    return ms;
  }

  /** The wait after an answer with messages (0: pull again at once); `drained`: fewer than asked for. */
  afterMessages(drained: boolean): number {
    this.emptyMs = this.floorMs;
    return !this.longPoll && this.floorMs > EMPTY_MIN_MS && drained ? this.floorMs : 0;
  }
}

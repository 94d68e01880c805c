/**
 * Flow control shared by every subscription of the process (#13.3): at most `maxMessages`
 * unsettled messages and about `maxBytes` of their data, whatever the number of types. Per
 * subscription budgets let five types hold five times the configured memory.
 *
 * A reader reserves room for one Pull before sending it (the Pull asks for no more than that),
 * turns the reservation into held messages when the answer comes, and releases each message
 * when it is settled. Fairness: when the budget is full, readers wait in one FIFO queue and
 * freed room goes to the head of it, and a reader that comes back while others wait queues
 * behind them — so a hot type cannot keep the whole budget while a cold one waits. One Pull
 * reserves at most an even share of the budget (`maxMessages / readers`), so the first reader
 * to ask cannot take all of it in one answer.
 * Bytes are checked before a Pull (one Pull may overshoot by its own answer, as in the SDK).
 */
interface Waiter {
  want: number;
  grant: (messages: number) => void;
}

export class FlowBudget {
  private messages = 0;
  private bytes = 0;
  private reserved = 0;
  private readonly queue: Waiter[] = [];

  private readonly share: number;

  /** `readers`: the subscriptions sharing the budget. */
  constructor(
    readonly maxMessages: number,
    readonly maxBytes: number,
    readers = 1,
  ) {
    this.share = Math.max(1, Math.ceil(maxMessages / Math.max(1, readers)));
  }

  /** Messages held (received, not yet settled) and their bytes, over every subscription. */
  get held(): { messages: number; bytes: number } {
    return { messages: this.messages, bytes: this.bytes };
  }

  /** Readers waiting for room. */
  get waiting(): number {
    return this.queue.length;
  }

  private room(): number {
    if (this.bytes >= this.maxBytes) return 0;
    return Math.max(0, this.maxMessages - this.messages - this.reserved);
  }

  /**
   * Resolves with the number of messages (1..min(want, share)) reserved for one Pull, in turn. `cancel`
   * (called by a closing reader) makes a waiting reservation resolve with 0.
   */
  reserve(want: number): { granted: Promise<number>; cancel: () => void } {
    const room = this.room();
    if (this.queue.length === 0 && room > 0) {
      const n = Math.min(want, room, this.share);
      this.reserved += n;
      return { granted: Promise.resolve(n), cancel: () => undefined };
    }
    let waiter!: Waiter;
    const granted = new Promise<number>((resolve) => (waiter = { want, grant: resolve }));
    this.queue.push(waiter);
    const cancel = (): void => {
      const i = this.queue.indexOf(waiter);
      if (i < 0) return;
      this.queue.splice(i, 1);
      waiter.grant(0);
      this.wake();
    };
    return { granted, cancel };
  }

  /** A Pull answered (or failed): its reservation becomes `messages` held messages of `bytes`. */
  received(reservedMessages: number, messages: number, bytes: number): void {
    this.reserved -= reservedMessages;
    this.messages += messages;
    this.bytes += bytes;
    this.wake();
  }

  /** One held message was settled (acked, nacked or dropped). */
  release(bytes: number): void {
    this.messages--;
    this.bytes -= bytes;
    this.wake();
  }

  private wake(): void {
    for (;;) {
      const head = this.queue[0];
      const room = this.room();
      if (!head || room <= 0) return;
      this.queue.shift();
      const n = Math.min(head.want, room, this.share);
      this.reserved += n;
      head.grant(n);
    }
  }
}

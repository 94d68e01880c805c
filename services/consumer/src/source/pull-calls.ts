import type { CallOptions, protos, v1 } from '@google-cloud/pubsub';

export type ReceivedMessage = protos.google.pubsub.v1.IReceivedMessage;

/**
 * The generated client's inner Pull: the public `pull()` wraps it in `.then()` for logging, which
 * drops google-gax's `cancel()`, and closing a client does not end a call in flight — so a long
 * poll could only be stopped by its deadline, which this emulator punishes (see pullWait).
 */
type PullCall = (
  request: protos.google.pubsub.v1.IPullRequest,
  options: CallOptions,
) => Promise<[protos.google.pubsub.v1.IPullResponse]> & { cancel(): void };

interface InFlight {
  sentAt: number;
  cancel: () => void;
  settled: Promise<unknown>;
}

/** The Pull RPCs of one subscription in flight: sent, cancelled, waited for, their age. */
export class PullCalls {
  private readonly inFlight = new Set<InFlight>();
  private readonly routingHeader: Record<string, string>;
  private pull: Promise<PullCall> | undefined;
  private stopped = false;

  constructor(
    private readonly client: v1.SubscriberClient,
    private readonly subscription: string,
    private readonly options: { longPoll: boolean; pullWaitMs: number },
    private readonly now: () => number,
  ) {
    // what the public pull() adds: lets Cloud Pub/Sub route the request to the subscription's region
    this.routingHeader = { 'x-goog-request-params': `subscription=${encodeURIComponent(subscription)}` };
  }

  private pullCall(): Promise<PullCall> {
    this.pull ??= this.client.initialize().then(() => this.client.innerApiCalls.pull as PullCall);
    return this.pull;
  }

  /** One Pull of at most `room` messages (a short poll unless long polls are configured). */
  async send(room: number): Promise<ReceivedMessage[]> {
    const pull = await this.pullCall();
    if (this.stopped) throw new Error('the subscription reader is closed');
    const call = pull(
      { subscription: this.subscription, maxMessages: room, returnImmediately: !this.options.longPoll },
      { timeout: this.options.pullWaitMs, retry: null, otherArgs: { headers: this.routingHeader } },
    );
    const entry: InFlight = { sentAt: this.now(), cancel: () => call.cancel(), settled: call.catch(() => undefined) };
    this.inFlight.add(entry);
    try {
      const [response] = await call;
      return response.receivedMessages ?? [];
    } finally {
      this.inFlight.delete(entry);
    }
  }

  get size(): number {
    return this.inFlight.size;
  }

  /** When the oldest Pull in flight was sent (now()), or undefined. */
  oldestSentAt(): number | undefined {
    let oldest: number | undefined;
    for (const c of this.inFlight) if (oldest === undefined || c.sentAt < oldest) oldest = c.sentAt;
    return oldest;
  }

  /** No Pull is sent after this; those in flight get up to `graceMs` to be answered, then are cancelled. */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    if (graceMs > 0 && this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([Promise.all([...this.inFlight].map((c) => c.settled)), late]);
      clearTimeout(timer);
    }
    for (const c of [...this.inFlight]) c.cancel();
  }
}

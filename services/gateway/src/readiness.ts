import type { Duration, Logger } from '@hourglass/common';
import type { MessagePublisher } from './publisher.js';

/**
 * /readyz: every event type's topic must exist. Checked once at start and then every
 * `interval`, so a deleted topic or an unreachable Pub/Sub takes the instance out of
 * the load balancer without a check on the request path.
 */
export interface Readiness {
  ready: boolean;
  /** Short and free of internals: it is served to anyone who asks. */
  reason: string;
}

export class TopicWatch {
  private state: Readiness = { ready: false, reason: 'topics not checked yet' };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly publisher: MessagePublisher,
    private readonly eventTypes: readonly string[],
    private readonly interval: Duration,
    private readonly logger: Logger,
  ) {}

  get current(): Readiness {
    return this.state;
  }

  start(): Promise<void> {
    const first = this.check();
    this.timer = setInterval(() => void this.check(), this.interval);
    this.timer.unref();
    return first;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  check(): Promise<void> {
    this.running ??= this.runCheck().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runCheck(): Promise<void> {
    try {
      const exists = await Promise.all(this.eventTypes.map((t) => this.publisher.topicExists(t)));
      const missing = this.eventTypes.filter((_, i) => !exists[i]);
      const next: Readiness =
        missing.length === 0
          ? { ready: true, reason: `${this.eventTypes.length} topics found` }
          : { ready: false, reason: `${missing.length} of ${this.eventTypes.length} topics not found` };
      if (next.ready !== this.state.ready || next.reason !== this.state.reason) {
        const topics = missing.map((t) => this.publisher.topicName(t));
        this.logger[next.ready ? 'info' : 'warn']({ missing: topics }, `readiness: ${next.reason}`);
      }
      this.state = next;
    } catch (e) {
      if (this.state.ready || this.state.reason !== 'Pub/Sub unreachable') {
        this.logger.warn({ err: e }, 'readiness: Pub/Sub unreachable');
      }
      this.state = { ready: false, reason: 'Pub/Sub unreachable' };
    }
  }
}

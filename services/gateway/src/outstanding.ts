/**
 * Bounds the events and bytes held between "validated" and "Pub/Sub settled" (open
 * bundles plus publishes in flight). A request that does not fit is refused at once
 * (503 OVERLOADED) instead of queueing without limit.
 */
export class OutstandingBudget {
  bytes = 0;
  events = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxEvents: number,
  ) {}

  /** True when nothing more fits: lets a request be refused before it is even parsed. */
  full(): boolean {
    return this.bytes >= this.maxBytes || this.events >= this.maxEvents;
  }

  /** An idle budget always admits one request, so a request larger than the bound still progresses. */
  tryReserve(bytes: number, events: number): boolean {
    const idle = this.events === 0;
    if (!idle && (this.bytes + bytes > this.maxBytes || this.events + events > this.maxEvents)) return false;
    this.bytes += bytes;
    this.events += events;
    return true;
  }

  release(bytes: number, events: number): void {
    this.bytes -= bytes;
    this.events -= events;
  }
}

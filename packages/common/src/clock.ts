/**
 * Time is injected (as in Beam's and Flink's test harnesses) so that tests advance it
 * by hand instead of sleeping. All times are epoch milliseconds.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class ManualClock implements Clock {
  private current: number;
  constructor(start = 0) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a clock cannot go backwards');
    this.current += ms;
  }
  set(ms: number): void {
    if (ms < this.current) throw new RangeError('a clock cannot go backwards');
    this.current = ms;
  }
}

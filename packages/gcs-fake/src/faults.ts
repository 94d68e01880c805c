import { seededRandom } from '@hourglass/common';
import { type Route, UploadRoutes, WriteRoutes } from './routes.js';

/** Which requests a fault applies to: all routes when `routes` is absent, all names when `names` is. */
export interface FaultScope {
  routes?: readonly Route[];
  /** Object (or folder) names the fault applies to; a request without a name never matches. */
  names?: RegExp;
}

/** What the server must do to one request, decided when it arrives. */
export interface FaultPlan {
  /** Destroy the socket before handling: the request never takes effect. */
  dropBefore: boolean;
  /** Answer this status (after reading the body) instead of handling. */
  failStatus?: number;
  /** Wait this long before answering. */
  delayMs: number;
  /** Handle the request, then destroy the socket instead of answering, if it changed state. */
  dropAfterCommit: boolean;
  /** Never answer and never act: the connection stays open until the client gives up. */
  hang: boolean;
  /** Hold the request this long, then carry it out (whether the client still waits or not). */
  applyAfterMs: number;
  /** Carry the request out, then answer this status instead of its result, if it changed state. */
  failAfterCommitStatus?: number;
  /** Flip a byte of the media: of a download (x-goog-hash still describes the stored bytes) or of an upload before it is stored. */
  corrupt: boolean;
}

interface CountedRule extends FaultScope {
  remaining: number;
}

/**
 * Fault injection for the GCS fake. Count-based faults (`failNext`, `dropConnections`,
 * `dropAfterCommit`, `failAfterCommit`, `applyLate`, `hang`, `corruptDownloads`,
 * `corruptUploads`) fire on the next n matching requests; `failRate`
 * draws from a seeded RNG so a run is reproducible; `delay` slows every matching answer
 * until cleared. `reset()` clears every fault and the `fired` counters.
 */
export class Faults {
  private fails: (CountedRule & { status: number })[] = [];
  private drops: CountedRule[] = [];
  private commitDrops: CountedRule[] = [];
  private corruptions: CountedRule[] = [];
  private hangs: CountedRule[] = [];
  private lateApplies: (CountedRule & { ms: number })[] = [];
  private commitFails: (CountedRule & { status: number })[] = [];
  private rate: (FaultScope & { p: number; status: number; random: () => number }) | undefined;
  private delays: (FaultScope & { ms: number }) | undefined;
  /** Faults actually applied, by kind: lets a test prove the fault fired. */
  readonly fired = {
    failed: 0,
    dropped: 0,
    droppedAfterCommit: 0,
    delayed: 0,
    corrupted: 0,
    hung: 0,
    appliedLate: 0,
    failedAfterCommit: 0,
  };

  /** The next `n` matching requests are answered with `status` (default 503). */
  failNext(n: number, status = 503, scope: FaultScope = {}): void {
    this.fails.push({ ...scope, remaining: n, status });
  }

  /** Each matching request fails with probability `p` (seeded; `p = 0` turns it off). */
  failRate(p: number, options: FaultScope & { seed?: number; status?: number } = {}): void {
    this.rate =
      p > 0 ? { ...options, p, status: options.status ?? 503, random: seededRandom(options.seed ?? 1) } : undefined;
  }

  /** Every matching request takes effect at once but is answered `ms` later; `delay(0)` turns it off. */
  delay(ms: number, scope: FaultScope = {}): void {
    this.delays = ms > 0 ? { ...scope, ms } : undefined;
  }

  /** The next `n` matching requests lose their connection before the server acts on them. */
  dropConnections(n: number, scope: FaultScope = {}): void {
    this.drops.push({ ...scope, remaining: n });
  }

  /**
   * The next `n` matching writes are carried out, then their connection is destroyed instead
   * of answered: the client sees a network error for a write that actually succeeded.
   */
  dropAfterCommit(n: number, scope: FaultScope = {}): void {
    this.commitDrops.push({ ...scope, remaining: n, routes: scope.routes ?? WriteRoutes });
  }

  /**
   * The next `n` matching requests are never answered and never carried out: the connection
   * stays open until the client gives up (its timeout) or the fake stops. `n = Infinity`
   * hangs every matching request until `reset()`.
   */
  hang(n: number, scope: FaultScope = {}): void {
    this.hangs.push({ ...scope, remaining: n });
  }

  /**
   * The next `n` matching writes are held `ms`, then carried out whether or not the client still
   * waits: with `ms` above the client's timeout, the write lands after the client gave up on it.
   */
  applyLate(n: number, ms: number, scope: FaultScope = {}): void {
    this.lateApplies.push({ ...scope, remaining: n, ms, routes: scope.routes ?? WriteRoutes });
  }

  /**
   * The next `n` matching writes are carried out, then answered `status` (default 503) as if they
   * had failed: the ambiguous 5xx after which the object is there all the same.
   */
  failAfterCommit(n: number, status = 503, scope: FaultScope = {}): void {
    this.commitFails.push({ ...scope, remaining: n, status, routes: scope.routes ?? WriteRoutes });
  }

  /** The next `n` media downloads have a byte flipped; x-goog-hash still describes the stored bytes. */
  corruptDownloads(n: number): void {
    this.corruptions.push({ remaining: n, routes: ['object.download'] });
  }

  /**
   * The next `n` uploads (multipart, media, or resumable chunks) have a byte flipped on
   * arrival, as a bad link would: what GCS stores and reports checksums for is not what the
   * client sent. A client-declared checksum (X-Goog-Hash) makes the fake refuse it with 400.
   */
  corruptUploads(n: number): void {
    this.corruptions.push({ remaining: n, routes: UploadRoutes });
  }

  reset(): void {
    this.fails = [];
    this.drops = [];
    this.commitDrops = [];
    this.corruptions = [];
    this.hangs = [];
    this.lateApplies = [];
    this.commitFails = [];
    this.rate = undefined;
    this.delays = undefined;
    for (const kind of Object.keys(this.fired) as (keyof Faults['fired'])[]) this.fired[kind] = 0;
  }

  /** Decides the faults for one arriving request (consumes count-based faults that fire before handling). */
  plan(route: Route, name?: string): FaultPlan {
    const plan: FaultPlan = {
      dropBefore: false,
      delayMs: 0,
      dropAfterCommit: false,
      hang: false,
      applyAfterMs: 0,
      corrupt: false,
    };
    if (take(this.hangs, route, name)) {
      plan.hang = true;
      this.fired.hung++;
      return plan;
    }
    if (this.delays && matches(this.delays, route, name)) {
      plan.delayMs = this.delays.ms;
      this.fired.delayed++;
    }
    if (take(this.drops, route, name)) {
      plan.dropBefore = true;
      this.fired.dropped++;
      return plan;
    }
    const late = takeRule(this.lateApplies, route, name);
    if (late) {
      plan.applyAfterMs = late.ms;
      this.fired.appliedLate++;
    }
    const fail = takeRule(this.fails, route, name);
    if (fail) plan.failStatus = fail.status;
    else if (this.rate && matches(this.rate, route, name) && this.rate.random() < this.rate.p) {
      plan.failStatus = this.rate.status;
    }
    if (plan.failStatus !== undefined) {
      this.fired.failed++;
      return plan;
    }
    plan.corrupt = take(this.corruptions, route, name);
    if (plan.corrupt) this.fired.corrupted++;
    plan.dropAfterCommit = this.commitDrops.some((r) => r.remaining > 0 && matches(r, route, name));
    plan.failAfterCommitStatus = this.commitFails.find((r) => r.remaining > 0 && matches(r, route, name))?.status;
    return plan;
  }

  /** Called when a planned drop-after-commit write did commit: consumes the fault. */
  consumeDropAfterCommit(route: Route, name?: string): boolean {
    const fired = take(this.commitDrops, route, name);
    if (fired) this.fired.droppedAfterCommit++;
    return fired;
  }

  /** Called when a planned fail-after-commit write did commit: consumes the fault. */
  consumeFailAfterCommit(route: Route, name?: string): boolean {
    const fired = take(this.commitFails, route, name);
    if (fired) this.fired.failedAfterCommit++;
    return fired;
  }
}

function matches(scope: FaultScope, route: Route, name: string | undefined): boolean {
  if (scope.routes !== undefined && !scope.routes.includes(route)) return false;
  return scope.names === undefined || (name !== undefined && scope.names.test(name));
}

function takeRule<R extends CountedRule>(rules: R[], route: Route, name: string | undefined): R | undefined {
  const rule = rules.find((r) => r.remaining > 0 && matches(r, route, name));
  if (rule) rule.remaining--;
  return rule;
}

function take(rules: CountedRule[], route: Route, name: string | undefined): boolean {
  return takeRule(rules, route, name) !== undefined;
}

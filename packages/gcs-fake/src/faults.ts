import { seededRandom } from '@hourglass/common';
import { type Route, UploadRoutes, WriteRoutes } from './routes.js';

/** Which requests a fault applies to; all routes when `routes` is absent. */
export interface FaultScope {
  routes?: readonly Route[];
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
  /** Flip a byte of the media: of a download (x-goog-hash still describes the stored bytes) or of an upload before it is stored. */
  corrupt: boolean;
}

interface CountedRule {
  remaining: number;
  routes: readonly Route[] | undefined;
}

/**
 * Fault injection for the GCS fake. Count-based faults (`failNext`, `dropConnections`,
 * `dropAfterCommit`, `corruptDownloads`, `corruptUploads`) fire on the next n matching requests; `failRate`
 * draws from a seeded RNG so a run is reproducible; `delay` slows every matching answer
 * until cleared. `reset()` clears every fault and the `fired` counters.
 */
export class Faults {
  private fails: (CountedRule & { status: number })[] = [];
  private drops: CountedRule[] = [];
  private commitDrops: CountedRule[] = [];
  private corruptions: CountedRule[] = [];
  private rate: { p: number; status: number; routes: readonly Route[] | undefined; random: () => number } | undefined;
  private delays: { ms: number; routes: readonly Route[] | undefined } | undefined;
  /** Faults actually applied, by kind: lets a test prove the fault fired. */
  readonly fired = { failed: 0, dropped: 0, droppedAfterCommit: 0, delayed: 0, corrupted: 0 };

  /** The next `n` matching requests are answered with `status` (default 503). */
  failNext(n: number, status = 503, scope: FaultScope = {}): void {
    this.fails.push({ remaining: n, status, routes: scope.routes });
  }

  /** Each matching request fails with probability `p` (seeded; `p = 0` turns it off). */
  failRate(p: number, options: FaultScope & { seed?: number; status?: number } = {}): void {
    this.rate =
      p > 0
        ? { p, status: options.status ?? 503, routes: options.routes, random: seededRandom(options.seed ?? 1) }
        : undefined;
  }

  /** Every matching request takes effect at once but is answered `ms` later; `delay(0)` turns it off. */
  delay(ms: number, scope: FaultScope = {}): void {
    this.delays = ms > 0 ? { ms, routes: scope.routes } : undefined;
  }

  /** The next `n` matching requests lose their connection before the server acts on them. */
  dropConnections(n: number, scope: FaultScope = {}): void {
    this.drops.push({ remaining: n, routes: scope.routes });
  }

  /**
   * The next `n` matching writes are carried out, then their connection is destroyed instead
   * of answered: the client sees a network error for a write that actually succeeded.
   */
  dropAfterCommit(n: number, scope: FaultScope = {}): void {
    this.commitDrops.push({ remaining: n, routes: scope.routes ?? WriteRoutes });
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
    this.rate = undefined;
    this.delays = undefined;
    for (const kind of Object.keys(this.fired) as (keyof Faults['fired'])[]) this.fired[kind] = 0;
  }

  /** Decides the faults for one arriving request (consumes count-based faults that fire before handling). */
  plan(route: Route): FaultPlan {
    const plan: FaultPlan = { dropBefore: false, delayMs: 0, dropAfterCommit: false, corrupt: false };
    if (this.delays && matches(this.delays.routes, route)) {
      plan.delayMs = this.delays.ms;
      this.fired.delayed++;
    }
    if (take(this.drops, route)) {
      plan.dropBefore = true;
      this.fired.dropped++;
      return plan;
    }
    const fail = this.fails.find((r) => r.remaining > 0 && matches(r.routes, route));
    if (fail) {
      fail.remaining--;
      plan.failStatus = fail.status;
    } else if (this.rate && matches(this.rate.routes, route) && this.rate.random() < this.rate.p) {
      plan.failStatus = this.rate.status;
    }
    if (plan.failStatus !== undefined) {
      this.fired.failed++;
      return plan;
    }
    plan.corrupt = take(this.corruptions, route);
    if (plan.corrupt) this.fired.corrupted++;
    plan.dropAfterCommit = this.commitDrops.some((r) => r.remaining > 0 && matches(r.routes, route));
    return plan;
  }

  /** Called when a planned drop-after-commit write did commit: consumes the fault. */
  consumeDropAfterCommit(route: Route): boolean {
    const fired = take(this.commitDrops, route);
    if (fired) this.fired.droppedAfterCommit++;
    return fired;
  }
}

function matches(routes: readonly Route[] | undefined, route: Route): boolean {
  return routes === undefined || routes.includes(route);
}

function take(rules: CountedRule[], route: Route): boolean {
  const rule = rules.find((r) => r.remaining > 0 && matches(r.routes, route));
  if (!rule) return false;
  rule.remaining--;
  return true;
}

import type { Duration } from '@hourglass/common';

/**
 * How long each writer's next bundle waits for more events before it is sent.
 *
 * Every bundle is one Publish call, and a call costs the gateway as much CPU as 40-70 events
 * (125-145 µs through the Pub/Sub client alone, ~220 µs in the gateway, against ~3 µs per event).
 * With many light types each bundle holds a few events and the calls dominate. A type whose events
 * arrive too slowly to fill a bundle within the base linger therefore waits longer, up to `max`:
 * long enough to gather `targetEvents` at the rate its events have been arriving.
 *
 * Only arrivals a wait can gather count: events from requests other than the one that opened the
 * bundle. A client that sends one request at a time is waiting for this very answer, and a type
 * that sees less than one event per `max - base` gains nothing from waiting; both keep the base
 * linger. An extension that gathered nothing (a few clients in lockstep, all waiting for the
 * answer) is dropped at once: the next bundle goes after the base linger again.
 */
export interface LingerSettings {
  /** The linger every type starts with, and the shortest one. */
  base: Duration;
  /** The longest linger; at or below `base` the linger never changes. */
  max: Duration;
  /** Events a bundle should gather before a longer wait stops paying off. */
  targetEvents: number;
}

/** What one sent bundle saw: its age when sent and the events other requests added to it. */
export interface BundleArrivals {
  /** The linger it was opened with. */
  linger: Duration;
  /** Milliseconds from its first event to its sending. */
  age: number;
  /** Events from requests other than the one that opened it. */
  joined: number;
  /** Of those, the ones that came once it was `base` old: what an extension gathered. */
  joinedAfterBase: number;
}

export class AdaptiveLinger {
  /** Each writer's smoothed arrival rate from other requests, in events per millisecond. */
  private readonly rates = new Map<string, number>();
  private readonly adapts: boolean;

  constructor(private readonly settings: LingerSettings) {
    this.adapts = settings.max > settings.base && settings.targetEvents > 1;
  }

  /** The linger for `key`'s next bundle. */
  lingerFor(key: string): Duration {
    const { base, max, targetEvents } = this.settings;
    const rate = this.rates.get(key);
    // Fewer than one event expected over the whole extension: waiting would only add latency.
    if (rate === undefined || rate * (max - base) < 1) return base;
    return Math.min(max, Math.max(base, targetEvents / rate)) as Duration;
  }

  /** Learns from a bundle that was just sent (one published as it opened or at shutdown teaches nothing). */
  observe(key: string, bundle: BundleArrivals): void {
    if (!this.adapts) return;
    const { base } = this.settings;
    if (bundle.linger > base && bundle.age > base && bundle.joinedAfterBase === 0) {
      this.rates.delete(key);
      return;
    }
    const observed = bundle.joined / Math.max(bundle.age, 1);
    const previous = this.rates.get(key);
    // Half old, half new: one noisy bundle of a few events moves the linger, but not all the way.
    this.rates.set(key, previous === undefined ? observed : (previous + observed) / 2);
  }
}

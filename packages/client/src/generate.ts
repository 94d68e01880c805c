import avro from 'avsc';
import { seededRandom } from '@hourglass/common';
import type { SchemaRegistry } from '@hourglass/schemas';
import type { ClientEvent } from './client.js';

/**
 * Realistic random events for load generation: payloads of each type's newest schema,
 * with plausible values for the fields our schemas use (ids, countries, durations) and
 * a generic fallback by Avro type for any other field, so new schemas work unchanged.
 * Seeded, so a run can be repeated.
 */
export interface GeneratorOptions {
  /** Event types to draw from; default every type in the registry. */
  types?: readonly string[];
  seed?: number;
}

const COUNTRIES = ['SE', 'US', 'GB', 'DE', 'BR', 'MX', 'JP', 'IN', 'FR', 'ES', 'NL', 'AU', 'CA', 'ID', 'PH'];
const PAGES = ['home', 'search', 'artist', 'album', 'playlist', 'library', 'settings', 'podcast', 'radio'];
const WORDS = ['love', 'night', 'summer', 'rock', 'jazz', 'chill', 'workout', 'focus', 'party', 'sleep', 'road trip'];
const CURRENCIES = ['USD', 'EUR', 'SEK', 'GBP', 'BRL', 'JPY'];
const VARIANTS = ['control', 'A', 'B', 'C'];
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export class EventGenerator {
  private readonly rnd: () => number;
  private readonly types: { name: string; record: avro.types.RecordType }[];

  constructor(registry: SchemaRegistry, options: GeneratorOptions = {}) {
    this.rnd = seededRandom(options.seed ?? Date.now());
    const names = options.types ?? registry.eventTypes();
    this.types = names.map((name) => ({ name, record: registry.get(name).latest.type as avro.types.RecordType }));
    if (this.types.length === 0) throw new RangeError('no event types to generate');
  }

  next(): ClientEvent {
    const t = this.types[Math.floor(this.rnd() * this.types.length)]!;
    return { type: t.name, payload: this.payloadOf(t.record) };
  }

  batch(n: number): ClientEvent[] {
    const out: ClientEvent[] = [];
    for (let i = 0; i < n; i++) out.push(this.next());
    return out;
  }

  private payloadOf(record: avro.types.RecordType): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of record.fields) {
      if (f.name === 'meta') continue;
      out[f.name] = this.valueOf(f.name, f.type);
    }
    return out;
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rnd() * (hi - lo + 1));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rnd() * items.length)]!;
  }

  private token(length: number): string {
    let s = '';
    for (let i = 0; i < length; i++) s += ALNUM[Math.floor(this.rnd() * ALNUM.length)];
    return s;
  }

  private valueOf(name: string, type: avro.Type): unknown {
    if (type instanceof avro.types.UnwrappedUnionType) {
      const nonNull = type.types.filter((t) => !(t instanceof avro.types.NullType));
      const hasNull = nonNull.length < type.types.length;
      if (hasNull && (nonNull.length === 0 || this.rnd() < 0.2)) return null;
      return this.valueOf(name, this.pick(nonNull));
    }
    if (type instanceof avro.types.StringType) return this.stringOf(name);
    if (type instanceof avro.types.IntType || type instanceof avro.types.LongType) return this.numberOf(name);
    if (type instanceof avro.types.BooleanType) return this.rnd() < (name === 'clicked' ? 0.05 : 0.5);
    if (type instanceof avro.types.EnumType) return this.pick(type.symbols);
    if (type instanceof avro.types.RecordType) return this.payloadOf(type);
    if (type instanceof avro.types.ArrayType) {
      return Array.from({ length: this.int(0, 3) }, () => this.valueOf(name, type.itemsType));
    }
    return type.random();
  }

  private stringOf(name: string): string {
    switch (name) {
      case 'user_id':
        return `u${this.int(1, 5_000_000)}`;
      case 'track_id':
        return `spotify:track:${this.token(22)}`;
      case 'country':
        return this.pick(COUNTRIES);
      case 'page':
      case 'referrer':
        return this.pick(PAGES);
      case 'query':
        return `${this.pick(WORDS)} ${this.pick(WORDS)}`;
      case 'currency':
        return this.pick(CURRENCIES);
      case 'variant':
        return this.pick(VARIANTS);
      case 'context_uri':
        return `spotify:playlist:${this.token(22)}`;
      case 'ad_id':
      case 'campaign_id':
      case 'experiment_id':
        return `${name.slice(0, -3)}-${this.int(1, 2000)}`;
      default:
        return this.token(this.int(6, 16));
    }
  }

  private numberOf(name: string): number {
    switch (name) {
      case 'ms_played':
        return this.int(0, 400_000);
      case 'duration_ms':
        return this.int(0, 120_000);
      case 'results_shown':
        return this.int(0, 50);
      case 'clicked_position':
        return this.int(0, 19);
      case 'latency_ms':
        return this.int(5, 1500);
      case 'price_micros':
        return this.int(100, 5_000_000);
      default:
        return this.int(0, 10_000);
    }
  }
}

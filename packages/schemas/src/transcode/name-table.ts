/**
 * Values looked up by a name's UTF-8 bytes where they lie in a buffer, with no string made: the
 * body reader's event types and the transcoder's enum symbols. A linear scan cost about 2.4 ns
 * per name before the match, so a registry of 255 types made the body reader twice as slow
 * (1.22 against 0.62 µs per event) and one of 1,005 4.5 times (docs/performance.md, "Many event
 * types"). Names are hashed whole (FNV-1a): names that differ in one digit must not share a
 * bucket. Each bucket is then checked byte for byte. Up to LINEAR_MAX names are scanned instead:
 * hashing the name costs more than comparing it with a few.
 */
export class NameTable<T> {
  private readonly buckets: (readonly Entry<T>[] | undefined)[];
  private readonly mask: number;
  /** Every entry, when there are few: scanned without hashing. */
  private readonly few: readonly Entry<T>[] | undefined;

  constructor(entries: readonly (readonly [name: Uint8Array, value: T])[]) {
    const all = entries.map(([name, value]) => ({ name, value }));
    const hashed = all.length > LINEAR_MAX;
    this.few = hashed ? undefined : all;
    let size = 1;
    while (hashed && size < 2 * all.length) size *= 2;
    this.mask = size - 1;
    const buckets: (Entry<T>[] | undefined)[] = Array.from({ length: size }, () => undefined);
    if (hashed) {
      for (const entry of all) (buckets[fnv1a(entry.name, 0, entry.name.length) & this.mask] ??= []).push(entry);
    }
    this.buckets = buckets;
  }

  /** The value named by `buf`'s bytes [start, end), or undefined. */
  get(buf: Uint8Array, start: number, end: number): T | undefined {
    const bucket = this.few ?? this.buckets[fnv1a(buf, start, end) & this.mask];
    if (bucket === undefined) return undefined;
    const n = end - start;
    for (let b = 0; b < bucket.length; b++) {
      const { name, value } = bucket[b]!;
      if (name.length !== n) continue;
      let i = 0;
      while (i < n && buf[start + i] === name[i]) i++;
      if (i === n) return value;
    }
    return undefined;
  }
}

/** Up to this many names are compared one by one (the 5 types here: as fast as before the table). */
const LINEAR_MAX = 8;

interface Entry<T> {
  name: Uint8Array;
  value: T;
}

/** 32-bit FNV-1a of bytes [start, end) (native/json-avro.c's fnv() for the WebAssembly reader's tables). */
export function fnv1a(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

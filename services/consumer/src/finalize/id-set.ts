/**
 * The set of event ids finalize has seen in a window, keyed by the ids' UTF-8 bytes as they sit
 * in the datums: no string is decoded per record. A JS `Set<string>` of a million ids cost
 * finalize a third of its time (hashing fresh strings, rehashing as it grew) plus the garbage
 * collection of the strings, and about 100 bytes per id; here an id costs its bytes plus 16
 * (offset, length, hash, and a slot of a table kept at most half full).
 *
 * Open addressing with linear probing over a power-of-two table; the 32-bit FNV-1a hash only
 * picks the slot, and equal hashes are compared byte for byte, so a collision never drops an
 * event. A slot holds its entry's hash beside the entry: a probe past another id compares the
 * hash in the slot's own cache line, not in a per-entry array (a cache miss per probe once the
 * set outgrows the cache: 4 M ids, 415-492 → 388-432 ns per add, three alternating runs).
 */
const INITIAL_SLOTS = 1 << 12;
const INITIAL_ARENA_BYTES = 1 << 16;

export class EventIdSet {
  /** The ids' bytes, back to back. */
  private arena = Buffer.allocUnsafe(INITIAL_ARENA_BYTES);
  private arenaUsed = 0;
  /** Per entry: where its bytes start in the arena, how many, and its hash. */
  private starts: Uint32Array = new Uint32Array(INITIAL_SLOTS / 2);
  private lengths: Uint32Array = new Uint32Array(INITIAL_SLOTS / 2);
  private hashes: Uint32Array = new Uint32Array(INITIAL_SLOTS / 2);
  /** Per entry: 1 when marked (finalize marks the ids a later window must not store again). */
  private marks: Uint8Array = new Uint8Array(INITIAL_SLOTS / 2);
  private markedCount = 0;
  /** Two words per slot: entry index + 1 (0: an empty slot), then the entry's hash. */
  private slots = new Uint32Array(2 * INITIAL_SLOTS);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** True when the id `source[start, end)` is in the set. */
  has(source: Buffer, start: number, end: number): boolean {
    return this.find(source, start, end, hashOf(source, start, end)) >= 0;
  }

  get marked(): number {
    return this.markedCount;
  }

  /** True when the id `source[start, end)` is in the set and marked. */
  hasMarked(source: Buffer, start: number, end: number): boolean {
    const slot = this.find(source, start, end, hashOf(source, start, end));
    return slot >= 0 && this.marks[this.slots[2 * slot]! - 1] === 1;
  }

  /** Marks the id `source[start, end)` if it is in the set; true when it is. */
  mark(source: Buffer, start: number, end: number): boolean {
    const slot = this.find(source, start, end, hashOf(source, start, end));
    if (slot < 0) return false;
    this.setMark(this.slots[2 * slot]! - 1);
    return true;
  }

  /** Adds the id `source[start, end)` (marked if `mark`); false when it was already there (a duplicate). */
  addIfAbsent(source: Buffer, start: number, end: number, mark = false): boolean {
    const hash = hashOf(source, start, end);
    const slot = this.find(source, start, end, hash);
    if (slot >= 0) return false;
    this.insert(source, start, end, hash, slot);
    if (mark) this.setMark(this.count - 1);
    return true;
  }

  /**
   * A set whose marked ids are this set's: this set when at least half its ids are marked (a copy
   * would cost more CPU than it frees memory), else a copy of only the marked ids.
   */
  markedOnly(): EventIdSet {
    if (this.markedCount * 2 >= this.count) return this;
    const out = new EventIdSet();
    for (let entry = 0; entry < this.count; entry++) {
      if (this.marks[entry] !== 1) continue;
      const at = this.starts[entry]!;
      const end = at + this.lengths[entry]!;
      const hash = this.hashes[entry]!;
      out.insert(this.arena, at, end, hash, out.find(this.arena, at, end, hash));
      out.setMark(out.count - 1);
    }
    return out;
  }

  /** Calls `visit(bytes, start, end)` for each marked id, in insertion order; awaits what it returns. */
  async forEachMarked(visit: (source: Buffer, start: number, end: number) => Promise<void> | undefined): Promise<void> {
    for (let entry = 0; entry < this.count; entry++) {
      if (this.marks[entry] !== 1) continue;
      const at = this.starts[entry]!;
      const pending = visit(this.arena, at, at + this.lengths[entry]!);
      if (pending) await pending;
    }
  }

  private setMark(entry: number): void {
    if (this.marks[entry] === 1) return;
    this.marks[entry] = 1;
    this.markedCount++;
  }

  /** Adds an id known to be absent at free slot −(`slot` + 1). */
  private insert(source: Buffer, start: number, end: number, hash: number, slot: number): void {
    const entry = this.count++;
    if (entry === this.hashes.length) this.growEntries();
    const length = end - start;
    if (this.arenaUsed + length > this.arena.length) this.growArena(length);
    // a byte loop: ids are tens of bytes, where Buffer#copy's call costs more than the copy
    const arena = this.arena;
    for (let i = start, to = this.arenaUsed; i < end; i++, to++) arena[to] = source[i]!;
    this.starts[entry] = this.arenaUsed;
    this.lengths[entry] = length;
    this.hashes[entry] = hash;
    this.arenaUsed += length;
    const free = -slot - 1;
    this.slots[2 * free] = entry + 1;
    this.slots[2 * free + 1] = hash;
    if (this.count * 4 > this.slots.length) this.rehash(); // over half the slots (two words each) taken
  }

  /** The slot holding the id (≥ 0), or −(free slot + 1) where it would go. */
  private find(source: Buffer, start: number, end: number, hash: number): number {
    const slots = this.slots;
    const mask = (slots.length >>> 1) - 1;
    const length = end - start;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[2 * slot]!;
      if (held === 0) return -slot - 1;
      if (slots[2 * slot + 1] === hash) {
        const entry = held - 1;
        const at = this.starts[entry]!;
        if (this.lengths[entry] === length && this.arena.compare(source, start, end, at, at + length) === 0) {
          return slot;
        }
      }
    }
  }

  private rehash(): void {
    const slots = new Uint32Array(this.slots.length * 2);
    const mask = (slots.length >>> 1) - 1;
    for (let entry = 0; entry < this.count; entry++) {
      const hash = this.hashes[entry]!;
      let slot = hash & mask;
      while (slots[2 * slot] !== 0) slot = (slot + 1) & mask;
      slots[2 * slot] = entry + 1;
      slots[2 * slot + 1] = hash;
    }
    this.slots = slots;
  }

  private growEntries(): void {
    const grown = (a: Uint32Array): Uint32Array => {
      const b = new Uint32Array(a.length * 2);
      b.set(a);
      return b;
    };
    this.starts = grown(this.starts);
    this.lengths = grown(this.lengths);
    this.hashes = grown(this.hashes);
    const marks = new Uint8Array(this.marks.length * 2);
    marks.set(this.marks);
    this.marks = marks;
  }

  private growArena(needed: number): void {
    const arena = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaUsed + needed));
    this.arena.copy(arena, 0, 0, this.arenaUsed);
    this.arena = arena;
  }
}

/** 32-bit FNV-1a of `source[start, end)`. */
function hashOf(source: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ source[i]!, 0x01000193);
  return h >>> 0;
}

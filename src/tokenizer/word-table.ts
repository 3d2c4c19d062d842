/**
 * A hash table from words (ranges of a JavaScript string) to token ids, on typed arrays.
 *
 * The encoder looks every pre-tokenised word up here without slicing it out of the text: the
 * hash is computed from the char codes in place and keys are compared code unit by code unit
 * against a pool. It holds two kinds of entries:
 *  - frozen entries, inserted first and never dropped: every token whose bytes are valid UTF-8,
 *    keyed by its text (only for tokenizers where a word that is a token is emitted whole);
 *  - cached entries: words already encoded by the merge loop. When a pool is full the cached
 *    entries are dropped at once and the table keeps only the frozen ones (bounded memory).
 */

/** FNV-1a over the UTF-16 code units of text[start, end). */
export function hashRange(text: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class WordTable {
  /** Per slot: [entry index or -1, hash of the entry]: a probe rarely touches the entry itself. */
  private slots: Int32Array;
  private mask: number;
  /** Per entry: [key offset, key length, value offset or the id itself when length 1, value length]. */
  private meta: Int32Array;
  private keys: Uint16Array;
  /** Ids of the entries with more than one id. */
  private vals: Int32Array;
  private count = 0;
  private keyUsed = 0;
  private valUsed = 0;
  private frozen = 0;
  private frozenKeys = 0;
  private frozenVals = 0;

  /**
   * @param maxEntries entries (frozen + cached) before the cache is dropped
   * @param keyUnits code units of keys; @param valUnits ids of values (same rule)
   */
  constructor(readonly maxEntries: number, readonly keyUnits: number, readonly valUnits: number) {
    let cap = 16;
    while (cap < maxEntries * 2) cap <<= 1;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap * 2).fill(-1);
    this.meta = new Int32Array(maxEntries * 4);
    this.keys = new Uint16Array(keyUnits);
    this.vals = new Int32Array(valUnits);
  }

  /** Entry index of text[start, end) with hash `h`, or -1. */
  find(text: string, start: number, end: number, h: number): number {
    const len = end - start;
    const slots = this.slots, mask = this.mask, keys = this.keys, meta = this.meta;
    const hh = h | 0;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const e = slots[s << 1]!;
      if (e < 0) return -1;
      if (slots[(s << 1) + 1] !== hh || meta[(e << 2) + 1] !== len) continue;
      const off = meta[e << 2]!;
      let i = 0;
      while (i < len && keys[off + i] === text.charCodeAt(start + i)) i++;
      if (i === len) return e;
    }
  }

  /** Appends the ids of entry `e` to `out`. */
  pushIds(e: number, out: number[]): void {
    const m = e << 2;
    const n = this.meta[m + 3]!;
    if (n === 1) { out.push(this.meta[m + 2]!); return; }
    const vals = this.vals;
    for (let i = this.meta[m + 2]!, z = i + n; i < z; i++) out.push(vals[i]!);
  }

  /** The ids of entry `e` (a copy). */
  ids(e: number): number[] {
    const out: number[] = [];
    this.pushIds(e, out);
    return out;
  }

  /** True if an entry of `len` code units with `n` ids fits without dropping the cache. */
  fits(len: number, n: number): boolean {
    return this.count < this.maxEntries && this.keyUsed + len <= this.keys.length && (n === 1 || this.valUsed + n <= this.vals.length);
  }

  /**
   * Inserts text[start, end) -> ids[0..n); the caller has checked that it is absent. Drops the
   * cached entries first when full. Returns the entry index, or -1 if it cannot fit even then.
   */
  insert(text: string, start: number, end: number, h: number, ids: ArrayLike<number>, n: number): number {
    const len = end - start;
    if (!this.fits(len, n)) {
      this.dropCache();
      if (!this.fits(len, n)) return -1;
    }
    const e = this.count++;
    const m = e << 2;
    this.meta[m] = this.keyUsed; this.meta[m + 1] = len; this.meta[m + 3] = n;
    for (let i = 0; i < len; i++) this.keys[this.keyUsed + i] = text.charCodeAt(start + i);
    this.keyUsed += len;
    if (n === 1) this.meta[m + 2] = ids[0]!;
    else {
      this.meta[m + 2] = this.valUsed;
      for (let i = 0; i < n; i++) this.vals[this.valUsed + i] = ids[i]!;
      this.valUsed += n;
    }
    this.place(e, h);
    return e;
  }

  /** Marks every entry inserted so far as frozen (kept by dropCache). */
  freeze(): void {
    this.frozen = this.count; this.frozenKeys = this.keyUsed; this.frozenVals = this.valUsed;
  }

  /** Forgets the cached entries, keeps the frozen ones (re-placed, so no probe chain breaks). */
  dropCache(): void {
    const slots = this.slots;
    const keep: number[] = [];
    for (let s = 0; s < slots.length; s += 2) if (slots[s]! >= 0 && slots[s]! < this.frozen) keep.push(slots[s]!, slots[s + 1]!);
    slots.fill(-1);
    for (let i = 0; i < keep.length; i += 2) this.place(keep[i]!, keep[i + 1]! >>> 0);
    this.count = this.frozen; this.keyUsed = this.frozenKeys; this.valUsed = this.frozenVals;
  }

  /** Number of entries (frozen + cached). */
  get size(): number {
    return this.count;
  }

  private place(e: number, h: number): void {
    let s = h & this.mask;
    while (this.slots[s << 1] !== -1) s = (s + 1) & this.mask;
    this.slots[s << 1] = e;
    this.slots[(s << 1) + 1] = h | 0;
  }
}

/** A WordCounts table as plain typed arrays. */
export interface WordCountsSnapshot {
  keys: Uint16Array;
  keyOff: Int32Array;
  keyLen: Int32Array;
  counts: Float64Array;
}

/**
 * A growing table word -> count, keyed by string ranges like WordTable (no substring is made
 * for a word already present). Used to count training words; nothing is ever dropped.
 */
export class WordCounts {
  private slots = new Int32Array(1 << 16).fill(-1);
  private mask = (1 << 16) - 1;
  private keyOff = new Int32Array(1 << 15);
  private keyLen = new Int32Array(1 << 15);
  private hashes = new Int32Array(1 << 15);
  private counts = new Float64Array(1 << 15);
  private keys = new Uint16Array(1 << 20);
  private keyUsed = 0;
  /** Number of distinct words. */
  size = 0;

  /** Adds `by` to the count of text[start, end). */
  add(text: string, start: number, end: number, by = 1): void {
    const h = hashRange(text, start, end);
    const len = end - start;
    const keys = this.keys, mask = this.mask;
    let s = h & mask;
    for (;; s = (s + 1) & mask) {
      const e = this.slots[s]!;
      if (e < 0) break;
      if (this.hashes[e] !== (h | 0) || this.keyLen[e] !== len) continue;
      const off = this.keyOff[e]!;
      let i = 0;
      while (i < len && keys[off + i] === text.charCodeAt(start + i)) i++;
      if (i === len) { this.counts[e] += by; return; }
    }
    const e = this.size++;
    if (e === this.keyOff.length) this.growEntries();
    if (this.keyUsed + len > this.keys.length) {
      const k = new Uint16Array(Math.max(this.keys.length * 2, this.keyUsed + len));
      k.set(this.keys.subarray(0, this.keyUsed));
      this.keys = k;
    }
    for (let i = 0; i < len; i++) this.keys[this.keyUsed + i] = text.charCodeAt(start + i);
    this.keyOff[e] = this.keyUsed; this.keyLen[e] = len; this.hashes[e] = h | 0; this.counts[e] = by;
    this.keyUsed += len;
    this.slots[s] = e;
    if (this.size * 2 > this.mask + 1) this.growSlots();
  }

  /** The table as typed arrays (copies, trimmed), e.g. to post from a worker thread. */
  snapshot(): WordCountsSnapshot {
    return {
      keys: this.keys.slice(0, this.keyUsed), keyOff: this.keyOff.slice(0, this.size),
      keyLen: this.keyLen.slice(0, this.size), counts: this.counts.slice(0, this.size),
    };
  }

  /** Adds every word of a snapshot with its count. */
  addSnapshot(t: WordCountsSnapshot): void {
    // Rebuild the keys as one string, in chunks (String.fromCharCode keeps every code unit).
    const parts: string[] = [];
    for (let i = 0; i < t.keys.length; i += 8192) parts.push(String.fromCharCode(...t.keys.subarray(i, i + 8192)));
    const all = parts.join('');
    for (let e = 0; e < t.keyOff.length; e++) this.add(all, t.keyOff[e]!, t.keyOff[e]! + t.keyLen[e]!, t.counts[e]!);
  }

  /** The words and their counts, in first-seen order. */
  *entries(): IterableIterator<[string, number]> {
    for (let e = 0; e < this.size; e++) {
      const off = this.keyOff[e]!, len = this.keyLen[e]!;
      let w = '';
      for (let i = 0; i < len; i += 8192) w += String.fromCharCode(...this.keys.subarray(off + i, off + Math.min(len, i + 8192)));
      yield [w, this.counts[e]!];
    }
  }

  private growEntries(): void {
    const n = this.keyOff.length * 2;
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => { const b = make(n); b.set(a); return b; };
    this.keyOff = grow(this.keyOff, (k) => new Int32Array(k));
    this.keyLen = grow(this.keyLen, (k) => new Int32Array(k));
    this.hashes = grow(this.hashes, (k) => new Int32Array(k));
    this.counts = grow(this.counts, (k) => new Float64Array(k));
  }

  private growSlots(): void {
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap).fill(-1);
    for (let e = 0; e < this.size; e++) {
      let s = (this.hashes[e]! >>> 0) & this.mask;
      while (this.slots[s] !== -1) s = (s + 1) & this.mask;
      this.slots[s] = e;
    }
  }
}

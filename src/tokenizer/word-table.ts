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
  private slots: Int32Array;
  private mask: number;
  private keyOff: Int32Array;
  private keyLen: Int32Array;
  private hashes: Int32Array;
  /** Offset and length of each entry's ids in `vals`. */
  readonly valOff: Int32Array;
  readonly valLen: Int32Array;
  private keys: Uint16Array;
  /** The ids of all entries. */
  readonly vals: Int32Array;
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
    this.slots = new Int32Array(cap).fill(-1);
    this.keyOff = new Int32Array(maxEntries);
    this.keyLen = new Int32Array(maxEntries);
    this.hashes = new Int32Array(maxEntries);
    this.valOff = new Int32Array(maxEntries);
    this.valLen = new Int32Array(maxEntries);
    this.keys = new Uint16Array(keyUnits);
    this.vals = new Int32Array(valUnits);
  }

  /** Entry index of text[start, end) with hash `h`, or -1. */
  find(text: string, start: number, end: number, h: number): number {
    const len = end - start;
    const slots = this.slots, mask = this.mask, keys = this.keys;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const e = slots[s]!;
      if (e < 0) return -1;
      if (this.hashes[e] !== (h | 0) || this.keyLen[e] !== len) continue;
      const off = this.keyOff[e]!;
      let i = 0;
      while (i < len && keys[off + i] === text.charCodeAt(start + i)) i++;
      if (i === len) return e;
    }
  }

  /** True if an entry of `len` code units with `n` ids fits without dropping the cache. */
  fits(len: number, n: number): boolean {
    return this.count < this.maxEntries && this.keyUsed + len <= this.keys.length && this.valUsed + n <= this.vals.length;
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
    this.keyOff[e] = this.keyUsed; this.keyLen[e] = len; this.hashes[e] = h | 0;
    for (let i = 0; i < len; i++) this.keys[this.keyUsed + i] = text.charCodeAt(start + i);
    this.keyUsed += len;
    this.valOff[e] = this.valUsed; this.valLen[e] = n;
    for (let i = 0; i < n; i++) this.vals[this.valUsed + i] = ids[i]!;
    this.valUsed += n;
    this.place(e, h);
    return e;
  }

  /** Marks every entry inserted so far as frozen (kept by dropCache). */
  freeze(): void {
    this.frozen = this.count; this.frozenKeys = this.keyUsed; this.frozenVals = this.valUsed;
  }

  /** Forgets the cached entries, keeps the frozen ones. */
  dropCache(): void {
    this.count = this.frozen; this.keyUsed = this.frozenKeys; this.valUsed = this.frozenVals;
    this.slots.fill(-1);
    for (let e = 0; e < this.count; e++) this.place(e, this.hashes[e]! >>> 0);
  }

  /** Number of entries (frozen + cached). */
  get size(): number {
    return this.count;
  }

  private place(e: number, h: number): void {
    let s = h & this.mask;
    while (this.slots[s] !== -1) s = (s + 1) & this.mask;
    this.slots[s] = e;
  }
}

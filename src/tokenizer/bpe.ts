/**
 * The byte-level BPE model: token byte strings plus a table of merges, and the merge loop that
 * turns the bytes of one pre-tokenised word into token ids.
 *
 * A merge is (left id, right id) -> (priority, result id). Encoding a word starts from one token
 * per byte and repeatedly merges the adjacent pair with the lowest priority, the leftmost one on
 * ties, until no adjacent pair has a merge. Both families of files fit this one rule:
 *  - tiktoken rank files: every split of every token into two tokens is a merge whose priority
 *    is the rank (= id) of the token, which reproduces tiktoken's "merge the adjacent parts whose
 *    concatenation has the lowest rank" exactly;
 *  - Hugging Face merges lists and Lumen training: the listed pairs only, priority = list index.
 * With `ignoreMerges` a word that is itself a token is emitted whole (tiktoken always does this;
 * HF calls the option `ignore_merges`).
 *
 * Merges live in an open-addressing hash table over typed arrays keyed by the integer pair, so
 * the hot loop does no string building and no allocation per lookup.
 */
import { InputError } from '../util/errors.ts';

/** One merge rule, as stored in files and produced by training. */
export interface Merge {
  left: number;
  right: number;
  result: number;
  priority: number;
}

const EMPTY = -1;

/**
 * Open-addressing hash map (left, right) -> (priority, result). One slot is 4 consecutive
 * Int32s [left, right, priority, result], so a lookup touches one cache line.
 */
class PairTable {
  private mask: number;
  private t: Int32Array;
  size = 0;
  maxPriority = 0;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap <<= 1;
    this.mask = cap - 1;
    this.t = new Int32Array(cap * 4).fill(EMPTY);
  }

  private static hash(a: number, b: number): number {
    let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    return (h ^ (h >>> 13)) >>> 0;
  }

  /** Adds or keeps the lower-priority merge for (a, b). */
  set(a: number, b: number, prio: number, result: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    if (prio > this.maxPriority) this.maxPriority = prio;
    const t = this.t;
    let i = PairTable.hash(a, b) & this.mask;
    for (;;) {
      const o = i << 2;
      const l = t[o]!;
      if (l === EMPTY) {
        t[o] = a; t[o + 1] = b; t[o + 2] = prio; t[o + 3] = result;
        this.size++;
        return;
      }
      if (l === a && t[o + 1] === b) {
        if (prio < t[o + 2]!) { t[o + 2] = prio; t[o + 3] = result; }
        return;
      }
      i = (i + 1) & this.mask;
    }
  }

  /** Slot index of (a, b), or -1. */
  find(a: number, b: number): number {
    const t = this.t, mask = this.mask;
    let i = PairTable.hash(a, b) & mask;
    for (;;) {
      const o = i << 2;
      const l = t[o]!;
      if (l === EMPTY) return -1;
      if (l === a && t[o + 1] === b) return i;
      i = (i + 1) & mask;
    }
  }

  prio(slot: number): number { return this.t[(slot << 2) + 2]!; }
  result(slot: number): number { return this.t[(slot << 2) + 3]!; }

  private grow(): void {
    const old = this.t;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.t = new Int32Array(cap * 4).fill(EMPTY);
    this.size = 0;
    for (let o = 0; o < old.length; o += 4) if (old[o] !== EMPTY) this.set(old[o]!, old[o + 1]!, old[o + 2]!, old[o + 3]!);
  }
}

/** Latin-1 string of bytes: a compact exact Map key for a byte string. */
export function bytesKey(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** Byte-level BPE model over a vocabulary of byte strings (ids 0..n-1, holes allowed). */
export class BpeModel {
  /** Id of the single-byte token for each byte value. */
  readonly byteIds = new Int32Array(256);
  private readonly pairs: PairTable;
  /** Exact byte string (latin-1 key) -> id, built on first use. */
  private byBytes: Map<string, number> | null = null;
  /** Largest merge priority (mergeHeap packs priorities below 2^21 into its keys). */
  private maxPriority = 0;
  /** Priority of the merge of the single-byte tokens of (x, y), indexed x * 256 + y (MAX when none). */
  private readonly bytePairPrio = new Int32Array(65536);
  /** Result id of that merge (-1 when none). */
  private readonly bytePairResult = new Int32Array(65536);

  /**
   * @param tokens bytes of each id (undefined for ids that hold no BPE token, e.g. specials)
   * @param merges the merge rules (see the file comment)
   * @param ignoreMerges emit a word whole when its bytes are a token
   */
  constructor(readonly tokens: readonly (Uint8Array | undefined)[], merges: Iterable<Merge> | ((add: (m: Merge) => void) => void), readonly ignoreMerges: boolean, expectedMerges = tokens.length) {
    this.byteIds.fill(-1);
    for (let id = 0; id < tokens.length; id++) {
      const t = tokens[id];
      if (t && t.length === 1 && this.byteIds[t[0]!] === -1) this.byteIds[t[0]!] = id;
    }
    for (let b = 0; b < 256; b++) {
      if (this.byteIds[b] === -1) throw new InputError(`BPE vocabulary: no token for the single byte 0x${b.toString(16).padStart(2, '0')}; a byte-level vocabulary must contain all 256 bytes`);
    }
    this.pairs = new PairTable(expectedMerges);
    const add = (m: Merge): void => this.pairs.set(m.left, m.right, m.priority, m.result);
    if (typeof merges === 'function') merges(add);
    else for (const m of merges) add(m);
    this.maxPriority = this.pairs.maxPriority;
    for (let x = 0; x < 256; x++) {
      for (let y = 0; y < 256; y++) {
        const s = this.pairs.find(this.byteIds[x]!, this.byteIds[y]!);
        this.bytePairPrio[x * 256 + y] = s < 0 ? 0x7fffffff : this.pairs.prio(s);
        this.bytePairResult[x * 256 + y] = s < 0 ? -1 : this.pairs.result(s);
      }
    }
  }

  /** Number of merge rules. */
  get mergeCount(): number {
    return this.pairs.size;
  }

  /** The merge for (left, right), or null. */
  merge(left: number, right: number): { priority: number; result: number } | null {
    const s = this.pairs.find(left, right);
    return s < 0 ? null : { priority: this.pairs.prio(s), result: this.pairs.result(s) };
  }

  /** Id of the token whose bytes are exactly `b`, or undefined. */
  tokenOfBytes(b: Uint8Array): number | undefined {
    if (!this.byBytes) {
      this.byBytes = new Map();
      for (let id = 0; id < this.tokens.length; id++) {
        const t = this.tokens[id];
        if (t) { const k = bytesKey(t); if (!this.byBytes.has(k)) this.byBytes.set(k, id); }
      }
    }
    return this.byBytes.get(bytesKey(b));
  }

  // Scratch buffers reused across calls (the model is used from one thread).
  private ids = new Int32Array(64);
  private next = new Int32Array(64);
  private prev = new Int32Array(64);
  private scratchPrio = new Int32Array(64);
  private scratchResult = new Int32Array(64);

  /**
   * Appends the ids of word bytes `b[0..n)` to `out`, applying merges (and `ignoreMerges`, unless
   * the caller already knows the word is not a whole token: `knownNotWhole`).
   */
  encodeWord(b: Uint8Array, n: number, out: number[], knownNotWhole = false): void {
    if (n === 0) return;
    if (n === 1) { out.push(this.byteIds[b[0]!]!); return; }
    if (this.ignoreMerges && !knownNotWhole) {
      const whole = this.tokenOfBytes(n === b.length ? b : b.subarray(0, n));
      if (whole !== undefined) { out.push(whole); return; }
    }
    if (n <= 64 || this.maxPriority >= 1 << 21) this.mergeSmall(b, n, out);
    else this.mergeHeap(b, n, out);
  }

  /**
   * Quadratic scan; fastest for short words. Keeps, per adjacent pair, its merge priority and
   * result, so each merge costs two table lookups (the new neighbours); the first pairs come
   * from the 256 x 256 byte-pair tables without hashing.
   */
  private mergeSmall(b: Uint8Array, n: number, out: number[]): void {
    if (this.ids.length < n) this.ensure(n);
    const ids = this.ids;
    const pr = this.scratchPrio; // priority of the pair (i, i+1) in the compacted array, or MAX
    const rs = this.scratchResult; // the id that merge produces
    const pairs = this.pairs;
    const MAX = 0x7fffffff;
    const bp = this.bytePairPrio, br = this.bytePairResult;
    for (let i = 0; i < n; i++) ids[i] = this.byteIds[b[i]!]!;
    let len = n;
    for (let i = 0; i + 1 < len; i++) { const k = (b[i]! << 8) | b[i + 1]!; pr[i] = bp[k]!; rs[i] = br[k]!; }
    while (len > 1) {
      let best = MAX, at = -1;
      for (let i = 0; i + 1 < len; i++) if (pr[i]! < best) { best = pr[i]!; at = i; }
      if (at < 0) break;
      ids[at] = rs[at]!;
      for (let i = at + 1; i + 1 < len; i++) { ids[i] = ids[i + 1]!; pr[i] = pr[i + 1]!; rs[i] = rs[i + 1]!; }
      len--;
      if (at + 1 < len) {
        const s = pairs.find(ids[at]!, ids[at + 1]!);
        if (s < 0) pr[at] = MAX; else { pr[at] = pairs.prio(s); rs[at] = pairs.result(s); }
      } else pr[at] = MAX;
      if (at > 0) {
        const s = pairs.find(ids[at - 1]!, ids[at]!);
        if (s < 0) pr[at - 1] = MAX; else { pr[at - 1] = pairs.prio(s); rs[at - 1] = pairs.result(s); }
      }
    }
    for (let i = 0; i < len; i++) out.push(ids[i]!);
  }

  private heapKeys = new Float64Array(192);

  private ensure(n: number): void {
    if (this.ids.length < n) {
      let cap = this.ids.length;
      while (cap < n) cap *= 2;
      this.ids = new Int32Array(cap); this.next = new Int32Array(cap); this.prev = new Int32Array(cap);
      this.scratchPrio = new Int32Array(cap); this.scratchResult = new Int32Array(cap);
    }
    if (this.heapKeys.length < 3 * n) this.heapKeys = new Float64Array(3 * n);
  }

  /** Priority of the pair starting at `pos` in the linked list, or -1. */
  private pairPrioAt(pos: number): number {
    const nx = this.next[pos]!;
    if (nx < 0) return -1;
    const s = this.pairs.find(this.ids[pos]!, this.ids[nx]!);
    return s < 0 ? -1 : this.pairs.prio(s);
  }

  /**
   * Linked list of parts + binary min-heap with lazy deletion: O(n log n) for long words (runs of
   * symbols, base64 blobs). A heap key is priority * 2^32 + position (exact in a double for
   * priorities below 2^21), so the smallest key is the lowest priority, leftmost.
   */
  private mergeHeap(b: Uint8Array, n: number, out: number[]): void {
    this.ensure(n);
    const ids = this.ids, next = this.next, prev = this.prev, heap = this.heapKeys;
    const pairs = this.pairs;
    const SHIFT = 4294967296;
    for (let i = 0; i < n; i++) { ids[i] = this.byteIds[b[i]!]!; next[i] = i + 1; prev[i] = i - 1; }
    next[n - 1] = -1;
    let size = 0;
    const push = (key: number): void => {
      let i = size++;
      while (i > 0) {
        const up = (i - 1) >> 1;
        if (heap[up]! <= key) break;
        heap[i] = heap[up]!; i = up;
      }
      heap[i] = key;
    };
    for (let i = 0; i + 1 < n; i++) { const p = this.pairPrioAt(i); if (p >= 0) push(p * SHIFT + i); }
    while (size > 0) {
      const top = heap[0]!;
      // Pop: move the last key down from the root.
      const last = heap[--size]!;
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && heap[c + 1]! < heap[c]!) c++;
        if (heap[c]! >= last) break;
        heap[i] = heap[c]!; i = c;
      }
      heap[i] = last;
      const prio = Math.floor(top / SHIFT), pos = top - prio * SHIFT;
      if (ids[pos] === -1 || this.pairPrioAt(pos) !== prio) continue; // stale entry
      const nx = next[pos]!;
      ids[pos] = pairs.result(pairs.find(ids[pos]!, ids[nx]!));
      ids[nx] = -1;
      const nn = next[nx]!;
      next[pos] = nn;
      if (nn >= 0) prev[nn] = pos;
      const pp = prev[pos]!;
      if (pp >= 0) { const p = this.pairPrioAt(pp); if (p >= 0) push(p * SHIFT + pp); }
      const p2 = this.pairPrioAt(pos);
      if (p2 >= 0) push(p2 * SHIFT + pos);
    }
    for (let i = 0; i >= 0; i = next[i]!) out.push(ids[i]!);
  }
}

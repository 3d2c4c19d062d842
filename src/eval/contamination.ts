/**
 * Contamination check: was an evaluation item in the training data?
 *
 * Per item: normalise (./normalise.ts: letters and digits only, lower case), take 3 random
 * 50-character substrings (the whole normalised item when shorter; seeded per item id), and
 * flag the item if any substring occurs in the normalised training text.
 *
 * The index (built once, saved, reused while the corpus files are unchanged) holds the
 * normalised corpus bytes plus a sampled hashed n-gram table: for every run of W = 31
 * consecutive K = 20-byte n-grams, the position of the one with the smallest hash (a
 * "minimizer"). Any string of K + W - 1 = 50 or more bytes contains a full run, and the corpus
 * recorded that same run's minimizer at the matching place, so looking up the query's
 * minimizers finds every occurrence: no false negatives. Each candidate position is verified
 * byte for byte against the stored corpus: no false positives. Only about 2/(W+1) ≈ 6% of
 * positions are stored (8 bytes each) instead of all of them. Queries shorter than 50 bytes
 * (short items) cannot rely on the sampling and are found by one rolling-hash scan of the
 * normalised corpus per distinct length.
 *
 * Files on disk (in the index folder): meta.json, corpus.norm (normalised bytes, files joined by
 * a 0 byte that no query contains), index.bin (uint32: bucket bits, entry count, bucket offsets,
 * hashes, positions).
 */
import { openSync, readSync, closeSync, statSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fmix32, Rng } from '../tensor/rng.ts';
import { InputError } from '../util/errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.ts';
import { Progress } from '../util/progress.ts';
import { ByteNormaliser, normaliseText } from './normalise.ts';
import { expandInputs } from '../io/files.ts';

/** n-gram length in bytes. */
export const K = 20;
/** n-grams per minimizer window; K + W - 1 = 50. */
export const W = 31;
/** Substring length the check samples. */
export const SUBSTRING = 50;
/** Substrings sampled per item. */
export const SAMPLES = 3;
const VERSION = 1;
const BASE = 0x01000193;
/** BASE^(K-1) mod 2^32. */
const BASE_K1 = powU32(BASE, K - 1);

function powU32(b: number, e: number): number {
  let r = 1;
  for (let i = 0; i < e; i++) r = Math.imul(r, b) >>> 0;
  return r;
}

/** One corpus file as it was indexed. */
export interface IndexedFile { path: string; size: number; mtimeMs: number }

/** The index's description (meta.json). */
export interface IndexMeta {
  version: number;
  k: number;
  w: number;
  files: IndexedFile[];
  normBytes: number;
  entries: number;
}

/** Tracks n-gram hashes and picks window minimizers; shared by the corpus scan and the queries. */
function minimizers(text: Uint8Array, onPick: (pos: number, key: number) => void): void {
  const n = text.length;
  if (n < K) return;
  const M = 63; // deque capacity 64 > W
  const dqPos = new Int32Array(64), dqKey = new Uint32Array(64);
  let head = 0, tail = 0, last = -1;
  let h = 0;
  for (let i = 0; i < K - 1; i++) h = (Math.imul(h, BASE) + text[i]!) >>> 0;
  for (let p = 0; p + K <= n; p++) {
    if (p > 0) h = (Math.imul((h - Math.imul(text[p - 1]!, BASE_K1)) | 0, BASE) + text[p + K - 1]!) >>> 0;
    else h = (Math.imul(h, BASE) + text[K - 1]!) >>> 0;
    const key = fmix32(h);
    while (tail > head && dqKey[(tail - 1) & M]! > key) tail--;
    dqPos[tail & M] = p; dqKey[tail & M] = key; tail++;
    if (dqPos[head & M]! <= p - W) head++;
    if (p >= W - 1) {
      const m = dqPos[head & M]!;
      if (m !== last) { onPick(m, dqKey[head & M]!); last = m; }
    }
  }
}

/** A loaded contamination index. */
export class ContaminationIndex {
  constructor(
    readonly meta: IndexMeta,
    /** Normalised corpus bytes. */
    readonly corpus: Uint8Array,
    readonly bits: number,
    readonly offsets: Uint32Array,
    readonly hashes: Uint32Array,
    readonly positions: Uint32Array,
  ) {}

  private equalAt(start: number, q: Uint8Array): boolean {
    if (start < 0 || start + q.length > this.corpus.length) return false;
    for (let i = 0; i < q.length; i++) if (this.corpus[start + i] !== q[i]) return false;
    return true;
  }

  /** Whether a normalised query of >= 50 bytes occurs in the corpus (index lookup + verification). */
  private containsLong(q: Uint8Array): boolean {
    let found = false;
    const shift = 32 - this.bits;
    minimizers(q, (off, key) => {
      if (found) return;
      const b = this.bits === 0 ? 0 : key >>> shift;
      for (let j = this.offsets[b]!, e = this.offsets[b + 1]!; j < e; j++) {
        if (this.hashes[j] === key && this.equalAt(this.positions[j]! - off, q)) { found = true; return; }
      }
    });
    return found;
  }

  /** For each normalised query (UTF-8 bytes): does it occur in the corpus? */
  containsAll(queries: Uint8Array[]): boolean[] {
    const out = queries.map((q) => (q.length >= K + W - 1 ? this.containsLong(q) : false));
    // Short queries: one rolling-hash scan per distinct length.
    const byLen = new Map<number, number[]>();
    queries.forEach((q, i) => { if (q.length > 0 && q.length < K + W - 1) (byLen.get(q.length) ?? byLen.set(q.length, []).get(q.length)!).push(i); });
    for (const [len, idx] of byLen) this.scanLength(len, idx.map((i) => queries[i]!)).forEach((hit, j) => { out[idx[j]!] = hit; });
    return out;
  }

  /** Finds queries of one length by rolling a hash over the whole corpus. */
  private scanLength(len: number, qs: Uint8Array[]): boolean[] {
    const hashOf = (t: Uint8Array, from: number) => { let h = 0; for (let i = 0; i < len; i++) h = (Math.imul(h, BASE) + t[from + i]!) >>> 0; return h; };
    const FB = 20, filter = new Uint8Array(1 << (FB - 3));
    const slot = (h: number) => Math.imul(h, 0x9e3779b1) >>> (32 - FB);
    const want = new Map<number, number[]>();
    qs.forEach((q, i) => {
      const h = hashOf(q, 0);
      (want.get(h) ?? want.set(h, []).get(h)!).push(i);
      const s = slot(h); filter[s >>> 3]! |= 1 << (s & 7);
    });
    const hits = qs.map(() => false);
    let remaining = qs.length;
    const t = this.corpus, n = t.length;
    if (n < len) return hits;
    const top = powU32(BASE, len - 1);
    let h = hashOf(t, 0);
    for (let p = 0; ; p++) {
      const s = slot(h);
      if (filter[s >>> 3]! & (1 << (s & 7))) {
        const cand = want.get(h);
        if (cand) for (const i of cand) if (!hits[i] && this.equalAt(p, qs[i]!)) { hits[i] = true; remaining--; }
        if (remaining === 0) break;
      }
      if (p + len >= n) break;
      h = (Math.imul((h - Math.imul(t[p]!, top)) | 0, BASE) + t[p + len]!) >>> 0;
    }
    return hits;
  }
}

/** Builds an index over corpus files (already expanded). */
export function buildIndex(files: string[], opts: { quiet?: boolean } = {}): ContaminationIndex {
  if (files.length === 0) throw new InputError('contamination: the training corpus is empty (no files given)');
  const infos: IndexedFile[] = files.map((path) => { const s = statSync(path); return { path, size: s.size, mtimeMs: s.mtimeMs }; });
  const total = infos.reduce((a, f) => a + f.size, 0);
  const norm = new ByteNormaliser(total + files.length + 16);
  const bar = new Progress({ label: 'contamination: normalise corpus', total, unit: 'B', quiet: opts.quiet });
  const chunk = Buffer.allocUnsafe(16 << 20);
  let done = 0;
  for (const f of infos) {
    const fd = openSync(f.path, 'r');
    try {
      for (;;) {
        const got = readSync(fd, chunk, 0, chunk.length, null);
        if (got <= 0) break;
        norm.push(chunk.subarray(0, got));
        done += got;
        if (done < total) bar.update(done);
      }
    } finally { closeSync(fd); }
    norm.endFile();
    norm.pushRaw(0);
  }
  bar.done();
  const corpus = norm.bytes();
  if (corpus.length >= 2 ** 32) throw new InputError(`contamination: the normalised corpus is ${corpus.length} bytes; the index supports under 4 GiB`);
  // Pass 1: collect minimizers.
  let cap = Math.max(1024, Math.ceil(corpus.length * 2 / (W + 1) * 1.25));
  let pos = new Uint32Array(cap), key = new Uint32Array(cap);
  let n = 0;
  minimizers(corpus, (p, k) => {
    if (n === cap) {
      cap *= 2;
      const p2 = new Uint32Array(cap); p2.set(pos); pos = p2;
      const k2 = new Uint32Array(cap); k2.set(key); key = k2;
    }
    pos[n] = p; key[n] = k; n++;
  });
  // Pass 2: counting sort into buckets by the top `bits` of the hash (about 4 entries a bucket).
  const bits = Math.min(24, Math.max(0, Math.ceil(Math.log2(Math.max(1, n / 4)))));
  const buckets = 2 ** bits, shift = 32 - bits;
  const offsets = new Uint32Array(buckets + 1);
  for (let i = 0; i < n; i++) offsets[(bits === 0 ? 0 : key[i]! >>> shift) + 1]!++;
  for (let b = 0; b < buckets; b++) offsets[b + 1]! += offsets[b]!;
  const fill = offsets.slice(0, buckets);
  const hashes = new Uint32Array(n), positions = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const b = bits === 0 ? 0 : key[i]! >>> shift;
    const at = fill[b]!++;
    hashes[at] = key[i]!;
    positions[at] = pos[i]!;
  }
  const meta: IndexMeta = { version: VERSION, k: K, w: W, files: infos, normBytes: corpus.length, entries: n };
  return new ContaminationIndex(meta, corpus, bits, offsets, hashes, positions);
}

const u8 = (a: Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Saves an index to a folder (three files, each written atomically; meta.json last). */
export function saveIndex(dir: string, idx: ContaminationIndex): void {
  writeFileAtomic(join(dir, 'corpus.norm'), idx.corpus);
  writeFileAtomic(join(dir, 'index.bin'), [u8(Uint32Array.of(idx.bits, idx.hashes.length)), u8(idx.offsets), u8(idx.hashes), u8(idx.positions)]);
  writeJsonAtomic(join(dir, 'meta.json'), idx.meta);
}

/** Loads a saved index. */
export function loadIndex(dir: string): ContaminationIndex {
  const metaPath = join(dir, 'meta.json');
  if (!existsSync(metaPath)) throw new InputError(`contamination index '${dir}': no meta.json (build it first)`);
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as IndexMeta;
  if (meta.version !== VERSION || meta.k !== K || meta.w !== W) throw new InputError(`contamination index '${dir}': version ${meta.version} (k=${meta.k}, w=${meta.w}); expected version ${VERSION} (k=${K}, w=${W}); rebuild it`);
  const corpus = new Uint8Array(readFileSync(join(dir, 'corpus.norm')));
  const raw = readFileSync(join(dir, 'index.bin'));
  const words = new Uint32Array(raw.byteLength / 4);
  new Uint8Array(words.buffer).set(raw);
  const bits = words[0]!, n = words[1]!, buckets = 2 ** bits;
  if (corpus.length !== meta.normBytes || words.length !== 2 + buckets + 1 + 2 * n) throw new InputError(`contamination index '${dir}': files are truncated or do not match meta.json; rebuild it`);
  const offsets = words.subarray(2, 3 + buckets);
  const hashes = words.subarray(3 + buckets, 3 + buckets + n);
  const positions = words.subarray(3 + buckets + n);
  return new ContaminationIndex(meta, corpus, bits, offsets, hashes, positions);
}

/** Whether a saved index was built from exactly these files, unchanged since. */
function upToDate(meta: IndexMeta, files: string[]): boolean {
  if (meta.files.length !== files.length) return false;
  return meta.files.every((f, i) => {
    if (f.path !== files[i]) return false;
    const s = statSync(f.path);
    return s.size === f.size && s.mtimeMs === f.mtimeMs;
  });
}

/**
 * The index of a corpus (files, directories, globs): loaded from `indexDir` if it was built from
 * the same unchanged files, else built and saved there. Without `indexDir` it is built in memory.
 */
export function openIndex(corpusSpecs: string[], indexDir?: string, opts: { quiet?: boolean } = {}): { index: ContaminationIndex; built: boolean } {
  const files = expandInputs(corpusSpecs, 'corpus');
  if (indexDir && existsSync(join(indexDir, 'meta.json'))) {
    const meta = JSON.parse(readFileSync(join(indexDir, 'meta.json'), 'utf8')) as IndexMeta;
    if (meta.version === VERSION && upToDate(meta, files)) return { index: loadIndex(indexDir), built: false };
  }
  const index = buildIndex(files, opts);
  if (indexDir) saveIndex(indexDir, index);
  return { index, built: true };
}

/** FNV-1a of a string, for per-item seeds. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The substrings checked for one item: 3 random 50-character pieces of its normalised text, or all of it when shorter. */
export function sampleSubstrings(text: string, id: string, seed = 0): string[] {
  const cps = Array.from(normaliseText(text));
  if (cps.length === 0) return [];
  if (cps.length <= SUBSTRING) return [cps.join('')];
  const rng = new Rng((hashString(id) ^ seed) >>> 0);
  const out: string[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const start = rng.int(cps.length - SUBSTRING + 1);
    out.push(cps.slice(start, start + SUBSTRING).join(''));
  }
  return out;
}

/** Flags items (given as id + text) whose sampled substrings occur in the indexed corpus. */
export function checkContamination(items: { id: string; text: string }[], index: ContaminationIndex, seed = 0): boolean[] {
  const owner: number[] = [];
  const queries: Uint8Array[] = [];
  items.forEach((it, i) => {
    for (const s of sampleSubstrings(it.text, it.id, seed)) { owner.push(i); queries.push(new Uint8Array(Buffer.from(s, 'utf8'))); }
  });
  const found = index.containsAll(queries);
  const flagged = items.map(() => false);
  found.forEach((f, q) => { if (f) flagged[owner[q]!] = true; });
  return flagged;
}

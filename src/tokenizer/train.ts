/**
 * Byte-level BPE training.
 *
 *   const tok = await trainBpe({ inputs: ['corpus/**\/*.txt'], vocabSize: 32000 });
 *
 * 1. Count words (streaming, see count.ts): the corpus is never held in memory; from 16 MB of
 *    files on, two worker threads count halves of the files.
 * 2. Start from the 256 byte tokens; each unique word of two or more bytes becomes a linked list
 *    of symbols in one flat array, weighted by the word's count.
 * 3. Keep, for every adjacent pair of symbols, its weighted count and the list of positions where
 *    it starts (an index that may hold stale entries, checked when used), and a lazy max-heap of
 *    pairs. Each merge pops the most frequent pair, rewrites only its occurrences, and updates
 *    the counts of the neighbouring pairs; pairs whose count grew are pushed again.
 *
 * Determinism: the winner is the pair with the highest count; ties go to the pair with the
 * smaller left id, then the smaller right id. Counts do not depend on the order of the inputs,
 * so the merges are a function of the corpus alone.
 *
 * Ids: 0..255 are the bytes (id = byte value), 256.. the merges in order, and the special tokens
 * of src/tokenizer/special.ts take the last ids. `vocabSize` counts all three.
 */
import { availableParallelism } from 'node:os';
import { InputError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';
import { countWords, inputBytes, type TrainInput } from './count.ts';
import { expandInputs } from '../io/files.ts';
import { CL100K_PATTERN, PreTokenizer, resolvePattern } from './pretokenize.ts';
import { SPECIAL_TOKENS } from './special.ts';
import { Tokenizer } from './tokenizer.ts';

/** Options of trainBpe. */
export interface TrainOptions {
  /** Files, globs, streams or async iterables of text. */
  inputs: readonly TrainInput[];
  /** Total vocabulary: 256 bytes + merges + special tokens. */
  vocabSize: number;
  /** Pre-tokenisation regex source or a name ('cl100k' default, 'o200k'). */
  pattern?: string;
  /** Special tokens placed at the last ids (default: SPECIAL_TOKENS). */
  specialTokens?: readonly string[];
  /** Show a progress bar with ETA on stderr (default true; LUMEN_QUIET=1 silences it). */
  progress?: boolean;
  /** Name stored in the tokenizer. */
  name?: string;
  /** Worker threads for counting corpora of 16 MB or more (default: min(2, available cores)). */
  threads?: number;
}

/** Statistics of a training run. */
export interface TrainStats {
  bytes: number;
  uniqueWords: number;
  merges: number;
  countSeconds: number;
  mergeSeconds: number;
}

/** Trains a byte-level BPE tokenizer; see the file comment. */
export async function trainBpe(opts: TrainOptions): Promise<Tokenizer & { trainStats: TrainStats }> {
  const pattern = resolvePattern(opts.pattern ?? CL100K_PATTERN);
  new PreTokenizer(pattern); // validate early
  const specials = opts.specialTokens ?? SPECIAL_TOKENS;
  const minVocab = 256 + specials.length;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < minVocab) {
    throw new InputError(`vocabSize: expected an integer >= ${minVocab} (256 bytes + ${specials.length} special tokens), got ${opts.vocabSize}`);
  }
  if (opts.inputs.length === 0) throw new InputError('inputs: expected at least one file, glob or stream, got none');
  const quiet = opts.progress === false;
  const t0 = performance.now();
  const files = expandInputs(opts.inputs.filter((x): x is string => typeof x === 'string'));
  const total = inputBytes(files);
  const readBar = new Progress({ label: 'count', total: Math.max(1, Math.round(total / 1e6)), unit: 'MB', quiet });
  let seen = 0;
  let shown = -1;
  const threads = opts.threads ?? Math.min(2, availableParallelism());
  const onBytes = (n: number): void => {
    seen += n;
    const mb = Math.round(seen / 1e6);
    if (mb !== shown) { shown = mb; readBar.update(mb); }
  };
  const counter = await countWords(opts.inputs, pattern, { onBytes, threads });
  readBar.done({ words: counter.size });
  if (counter.bytes === 0) throw new InputError(`inputs: the corpus is empty (${files.length} file(s), 0 bytes)`);
  const t1 = performance.now();
  const nMerges = opts.vocabSize - 256 - specials.length;
  const merges = learnMerges(counter.counts, nMerges, quiet);
  const t2 = performance.now();
  if (merges.length < nMerges && !quiet) {
    process.stderr.write(`train: the corpus supports only ${merges.length} merges (asked ${nMerges}); vocabulary size is ${256 + merges.length + specials.length}\n`);
  }
  const tokens: Uint8Array[] = [];
  for (let b = 0; b < 256; b++) tokens.push(Uint8Array.of(b));
  for (const [a, b] of merges) {
    const x = tokens[a]!, y = tokens[b]!;
    const t = new Uint8Array(x.length + y.length);
    t.set(x); t.set(y, x.length);
    tokens.push(t);
  }
  const sp = new Map<string, number>();
  specials.forEach((s, i) => sp.set(s, tokens.length + i));
  const tok = new Tokenizer({ pattern, tokens, merges, ignoreMerges: false, specials: sp, name: opts.name ?? 'lumen-bpe' });
  const stats: TrainStats = { bytes: counter.bytes, uniqueWords: counter.size, merges: merges.length, countSeconds: (t1 - t0) / 1000, mergeSeconds: (t2 - t1) / 1000 };
  return Object.assign(tok, { trainStats: stats });
}

/**
 * The merge loop over word counts. Returns the merges [left, right] in order; merge k creates
 * id 256 + k. Stops early when no pair is left.
 */
export function learnMerges(counts: ReadonlyMap<string, number>, nMerges: number, quiet = true): Array<[number, number]> {
  // Flat symbol storage: sym (id or -1 when removed), nxt / prv links (-1 at word ends), and the
  // owning word's count per position. Words are UTF-8 encoded straight into one growing buffer.
  const enc = new TextEncoder();
  let bytes = new Uint8Array(1 << 20);
  let used = 0;
  const starts: number[] = [];
  const wcount: number[] = [];
  for (const [w, c] of counts) {
    if (used + w.length * 3 > bytes.length) { const b = new Uint8Array(Math.max(bytes.length * 2, used + w.length * 3)); b.set(bytes.subarray(0, used)); bytes = b; }
    const { written } = enc.encodeInto(w, bytes.subarray(used));
    if (written < 2) continue;
    starts.push(used); wcount.push(c);
    used += written;
  }
  starts.push(used);
  const totalSyms = used;
  const sym = new Int32Array(totalSyms);
  const nxt = new Int32Array(totalSyms);
  const prv = new Int32Array(totalSyms);
  const weight = new Float64Array(totalSyms);
  for (let w = 0; w + 1 < starts.length; w++) {
    const a = starts[w]!, z = starts[w + 1]!;
    for (let i = a; i < z; i++) {
      sym[i] = bytes[i]!; prv[i] = i === a ? -1 : i - 1; nxt[i] = i === z - 1 ? -1 : i + 1; weight[i] = wcount[w]!;
    }
  }
  bytes = new Uint8Array(0);

  // Pair registry: (a, b) -> pair index, open addressing over Int32 arrays.
  let cap = 1 << 16;
  let hA = new Int32Array(cap).fill(-1), hB = new Int32Array(cap), hI = new Int32Array(cap);
  let nPairs = 0;
  let pA = new Int32Array(1 << 16), pB = new Int32Array(1 << 16), pCount = new Float64Array(1 << 16);
  const pPos: number[][] = []; // positions where each pair starts (may hold stale entries)
  const hash = (a: number, b: number): number => {
    let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b);
    h ^= h >>> 15; h = Math.imul(h, 0x2c1b3c6d);
    return (h ^ (h >>> 13)) >>> 0;
  };
  const grow = (): void => {
    const oA = hA, oB = hB, oI = hI;
    cap *= 2;
    hA = new Int32Array(cap).fill(-1); hB = new Int32Array(cap); hI = new Int32Array(cap);
    for (let i = 0; i < oA.length; i++) {
      if (oA[i] === -1) continue;
      let j = hash(oA[i]!, oB[i]!) & (cap - 1);
      while (hA[j] !== -1) j = (j + 1) & (cap - 1);
      hA[j] = oA[i]!; hB[j] = oB[i]!; hI[j] = oI[i]!;
    }
  };
  const pairOf = (a: number, b: number): number => {
    let j = hash(a, b) & (cap - 1);
    for (;;) {
      const x = hA[j]!;
      if (x === -1) break;
      if (x === a && hB[j] === b) return hI[j]!;
      j = (j + 1) & (cap - 1);
    }
    const id = nPairs++;
    hA[j] = a; hB[j] = b; hI[j] = id;
    if (id >= pA.length) {
      const n = pA.length * 2;
      const a2 = new Int32Array(n); a2.set(pA); pA = a2;
      const b2 = new Int32Array(n); b2.set(pB); pB = b2;
      const c2 = new Float64Array(n); c2.set(pCount); pCount = c2;
    }
    pA[id] = a; pB[id] = b; pCount[id] = 0;
    pPos.push([]);
    if (nPairs * 2 > cap) grow();
    return id;
  };

  for (let i = 0; i < totalSyms; i++) {
    const j = nxt[i]!;
    if (j < 0) continue;
    const p = pairOf(sym[i]!, sym[j]!);
    pCount[p] = pCount[p]! + weight[i]!;
    pPos[p]!.push(i);
  }

  // Lazy max-heap of (count snapshot, pair); order: count desc, left id asc, right id asc.
  let hCount = new Float64Array(1 << 16), hPair = new Int32Array(1 << 16);
  let hSize = 0;
  const before = (i: number, j: number): boolean => {
    const ci = hCount[i]!, cj = hCount[j]!;
    if (ci !== cj) return ci > cj;
    const pi = hPair[i]!, pj = hPair[j]!;
    return pA[pi]! < pA[pj]! || (pA[pi] === pA[pj] && pB[pi]! < pB[pj]!);
  };
  const swap = (i: number, j: number): void => {
    const c = hCount[i]!; hCount[i] = hCount[j]!; hCount[j] = c;
    const p = hPair[i]!; hPair[i] = hPair[j]!; hPair[j] = p;
  };
  const push = (pair: number): void => {
    if (hSize === hCount.length) {
      const c2 = new Float64Array(hSize * 2); c2.set(hCount); hCount = c2;
      const p2 = new Int32Array(hSize * 2); p2.set(hPair); hPair = p2;
    }
    let i = hSize++;
    hCount[i] = pCount[pair]!; hPair[i] = pair;
    while (i > 0) { const up = (i - 1) >> 1; if (!before(i, up)) break; swap(i, up); i = up; }
  };
  const popTop = (): void => {
    hSize--;
    hCount[0] = hCount[hSize]!; hPair[0] = hPair[hSize]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < hSize && before(l, m)) m = l;
      if (r < hSize && before(r, m)) m = r;
      if (m === i) break;
      swap(i, m); i = m;
    }
  };
  for (let p = 0; p < nPairs; p++) if (pCount[p]! > 0) push(p);

  const merges: Array<[number, number]> = [];
  const bar = new Progress({ label: 'merge', total: nMerges, unit: 'merge', quiet });
  let touched = new Int32Array(1 << 16).fill(-1);
  const grew: number[] = [];
  while (merges.length < nMerges && hSize > 0) {
    const snap = hCount[0]!, pair = hPair[0]!;
    popTop();
    const cur = pCount[pair]!;
    if (cur <= 0) continue;
    if (snap !== cur) { if (cur < snap) push(pair); continue; }
    const a = pA[pair]!, b = pB[pair]!;
    const c = 256 + merges.length;
    merges.push([a, b]);
    const pos = Int32Array.from(pPos[pair]!).sort();
    pPos[pair] = [];
    grew.length = 0;
    const bump = (p: number): void => {
      if (p >= touched.length) { const t = new Int32Array(Math.max(p + 1, touched.length * 2)).fill(-1); t.set(touched); touched = t; }
      if (touched[p] !== c) { touched[p] = c; grew.push(p); }
    };
    for (let k = 0; k < pos.length; k++) {
      const i = pos[k]!;
      if (sym[i] !== a) continue;
      const j = nxt[i]!;
      if (j < 0 || sym[j] !== b) continue;
      const w = weight[i]!;
      const pi = prv[i]!, r = nxt[j]!;
      if (pi >= 0) {
        const x = sym[pi]!;
        const op = pairOf(x, a);
        pCount[op] -= w;
        const np = pairOf(x, c);
        pCount[np] += w; pPos[np]!.push(pi); bump(np);
      }
      if (r >= 0) {
        const y = sym[r]!;
        const op = pairOf(b, y);
        pCount[op] -= w;
        const np = pairOf(c, y);
        pCount[np] += w; pPos[np]!.push(i); bump(np);
      }
      pCount[pair] -= w;
      sym[i] = c; sym[j] = -1;
      nxt[i] = r; if (r >= 0) prv[r] = i;
    }
    pCount[pair] = 0;
    for (const p of grew) if (pCount[p]! > 0) push(p);
    if ((merges.length & 63) === 0) bar.update(merges.length, { count: cur, pairs: nPairs });
  }
  bar.done({ merges: merges.length });
  return merges;
}

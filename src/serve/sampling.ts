/**
 * Per-request sampling: penalties, temperature, top-k, top-p, a seeded generator, and the
 * log-probabilities reported to clients.
 *
 * Reported logprobs are those of the model's own distribution (log-softmax of the raw logits),
 * before penalties, temperature and truncation, as OpenAI and vLLM report them; so a scorer
 * reads the same numbers whatever sampling settings the request used.
 */
import { randomInt } from 'node:crypto';
import { Rng } from '../tensor/rng.ts';

/** Sampling settings of one request (already validated). */
export interface SamplingParams {
  /** 0 = greedy (argmax, ties to the lowest id). */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 = off. */
  topP: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Seed of the request's generator; undefined = a fresh random seed. */
  seed?: number;
  /** Subtracted once from the logit of every token already generated. */
  presencePenalty: number;
  /** Subtracted per occurrence from the logit of every token already generated. */
  frequencyPenalty: number;
}

/** A token with its log-probability. */
export interface TokenLogprob { id: number; logprob: number }

/** log(sum(exp(x))) of row `x`, computed stably. */
export function logSumExp(x: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > m) m = x[i]!;
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i]! - m);
  return m + Math.log(s);
}

/** The k highest-logprob tokens of a logits row, best first (ties to the lower id). */
export function topLogprobs(logits: Float32Array, k: number, lse = logSumExp(logits)): TokenLogprob[] {
  if (k <= 0) return [];
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (ids.length === k) {
      if (v <= logits[ids[k - 1]!]!) continue;
      ids.pop();
    }
    let j = ids.length;
    while (j > 0 && logits[ids[j - 1]!]! < v) j--;
    ids.splice(j, 0, i);
  }
  return ids.map((id) => ({ id, logprob: logits[id]! - lse }));
}

/** Index of the largest value (the first one on ties). */
export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Draws tokens for one request; keeps the generated-token counts the penalties need. */
export class Sampler {
  private readonly rng: Rng;
  private readonly counts = new Map<number, number>();
  private readonly work: Float32Array;

  /** `banned` ids are never sampled (padding, image placeholders). */
  constructor(readonly params: SamplingParams, vocabSize: number, private readonly banned: readonly number[] = []) {
    this.rng = new Rng(params.seed ?? randomInt(0, 2 ** 32 - 1));
    this.work = new Float32Array(vocabSize);
  }

  /** Records a generated token (for the penalties). */
  observe(id: number): void {
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  }

  /** Picks the next token from a logits row (vocab). Does not record it; call observe. */
  sample(logits: Float32Array): number {
    const p = this.params;
    const x = this.work;
    x.set(logits);
    for (const id of this.banned) x[id] = -Infinity;
    if (p.presencePenalty !== 0 || p.frequencyPenalty !== 0) {
      for (const [id, c] of this.counts) x[id] = x[id]! - p.presencePenalty - p.frequencyPenalty * c;
    }
    if (p.temperature === 0) return argmax(x);
    if (p.topK > 0 && p.topK < x.length) {
      // only the k best survive: sample among them
      const ids = topLogprobs(x, p.topK, 0).map((t) => t.id).filter((i) => x[i]! > -Infinity);
      return this.drawFrom(ids, x, p.topP);
    }
    const m = x[argmax(x)]!;
    if (m === -Infinity) return argmax(logits);
    const w = this.weights(x, m);
    let total = 0;
    for (let i = 0; i < w.length; i++) total += w[i]!;
    if (p.topP >= 1) return drawAll(w, total, this.rng);
    return drawIds(nucleus(w, p.topP * total, this.scratch ??= new Int32Array(x.length)), w, this.rng);
  }

  private scratch: Int32Array | null = null;
  private weightBuf: Float64Array | null = null;

  /** exp((x - max) / T) for every token (0 for banned ones). */
  private weights(x: Float32Array, m: number): Float64Array {
    const w = this.weightBuf ??= new Float64Array(x.length);
    const invT = 1 / this.params.temperature;
    for (let i = 0; i < x.length; i++) w[i] = Math.exp((x[i]! - m) * invT);
    return w;
  }

  /** Samples among `ids` (best first) at the temperature, with an optional nucleus cut. */
  private drawFrom(ids: number[], x: Float32Array, topP: number): number {
    if (ids.length === 0) return argmax(x);
    const m = x[ids[0]!]!;
    const invT = 1 / this.params.temperature;
    const w = new Float64Array(x.length);
    let total = 0;
    for (const i of ids) { w[i] = Math.exp((x[i]! - m) * invT); total += w[i]!; }
    let n = ids.length;
    if (topP < 1) {
      let mass = 0; n = 0;
      while (n < ids.length && mass < topP * total) mass += w[ids[n++]!]!;
      n = Math.max(1, n);
    }
    return drawIds(ids.slice(0, n), w, this.rng);
  }
}

/**
 * The nucleus: a smallest set of the heaviest tokens whose weights sum to at least `target`
 * (ties at the boundary taken in id order). Quickselect-style partitioning, expected O(V),
 * instead of sorting the whole vocabulary for every token.
 */
export function nucleus(w: Float64Array, target: number, scratch: Int32Array): number[] {
  let n = 0;
  for (let i = 0; i < w.length; i++) if (w[i]! > 0) scratch[n++] = i;
  const keep: number[] = [];
  let lo = 0, hi = n, need = target;
  while (lo < hi && need > 0) {
    // pivot: median of three weights of the range
    const a = w[scratch[lo]!]!, b = w[scratch[(lo + hi) >> 1]!]!, c = w[scratch[hi - 1]!]!;
    const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
    let i = lo, mass = 0;
    for (let j = lo; j < hi; j++) {
      const id = scratch[j]!;
      if (w[id]! > pivot) { scratch[j] = scratch[i]!; scratch[i] = id; i++; mass += w[id]!; }
    }
    if (mass >= need) { hi = i; continue; } // the boundary lies among the heavier ones
    for (let k = lo; k < i; k++) keep.push(scratch[k]!);
    need -= mass;
    // then the ties at the pivot, in id order, until the mass is reached
    const ties: number[] = [];
    let e = i;
    for (let j = i; j < hi; j++) {
      const id = scratch[j]!;
      if (w[id]! === pivot) { ties.push(id); scratch[j] = scratch[e]!; scratch[e] = id; e++; }
    }
    ties.sort((x, y) => x - y);
    for (const id of ties) { if (need <= 0) break; keep.push(id); need -= pivot; }
    lo = e;
  }
  if (keep.length === 0 && n > 0) keep.push(scratch[0]!);
  return keep;
}

/** Draws from all tokens with weights `w` summing to `total`. */
function drawAll(w: Float64Array, total: number, rng: Rng): number {
  let u = rng.uniform() * total;
  let last = 0;
  for (let i = 0; i < w.length; i++) {
    if (w[i]! === 0) continue;
    last = i;
    u -= w[i]!;
    if (u < 0) return i;
  }
  return last;
}

/** Draws among `ids` with weights w[id], in id order so the result does not depend on how ids were found. */
function drawIds(ids: number[], w: Float64Array, rng: Rng): number {
  const sorted = [...ids].sort((a, b) => a - b);
  let total = 0;
  for (const i of sorted) total += w[i]!;
  let u = rng.uniform() * total;
  for (const i of sorted) {
    u -= w[i]!;
    if (u < 0) return i;
  }
  return sorted[sorted.length - 1]!;
}

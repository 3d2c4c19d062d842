/**
 * Choosing the next token from logits: greedy, temperature, top-k, top-p (nucleus), with a
 * seeded generator so a seed reproduces a sample exactly.
 */
import type { Rng } from '../tensor/rng.ts';

export interface SampleOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Keep the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP?: number;
}

/** Index of the largest value (first on ties). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Samples one token id from a row of logits. */
export function sampleToken(logits: Float32Array, o: SampleOptions, rng: Rng): number {
  if (o.temperature <= 0) return argmax(logits);
  const V = logits.length;
  let idx = Array.from({ length: V }, (_, i) => i);
  const topK = o.topK && o.topK > 0 ? Math.min(o.topK, V) : V;
  if (topK < V || (o.topP !== undefined && o.topP < 1)) {
    idx.sort((a, b) => logits[b]! - logits[a]! || a - b);
    idx = idx.slice(0, topK);
  }
  let max = -Infinity;
  for (const i of idx) max = Math.max(max, logits[i]! / o.temperature);
  const p = idx.map((i) => Math.exp(logits[i]! / o.temperature - max));
  let sum = p.reduce((s, x) => s + x, 0);
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0, cut = idx.length;
    for (let j = 0; j < idx.length; j++) { acc += p[j]! / sum; if (acc >= o.topP) { cut = j + 1; break; } }
    idx = idx.slice(0, cut); p.length = cut;
    sum = p.reduce((s, x) => s + x, 0);
  }
  let u = rng.uniform() * sum;
  for (let j = 0; j < idx.length; j++) { u -= p[j]!; if (u <= 0) return idx[j]!; }
  return idx[idx.length - 1]!;
}

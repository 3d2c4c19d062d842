import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, argmax, logSumExp, nucleus, topLogprobs, type SamplingParams } from '../../src/serve/sampling.ts';
import { Rng } from '../../src/tensor/rng.ts';

const P = (p: Partial<SamplingParams>): SamplingParams => ({ temperature: 1, topP: 1, topK: 0, presencePenalty: 0, frequencyPenalty: 0, ...p });
const logits = Float32Array.from([0.5, 2, 2, -1, 1, 0]);

function counts(s: Sampler, x: Float32Array, n: number): number[] {
  const c = new Array(x.length).fill(0);
  for (let i = 0; i < n; i++) c[s.sample(x)]++;
  return c;
}

test('greedy takes the first maximum; top_k = 1 is greedy at any temperature', () => {
  assert.equal(argmax(logits), 1);
  assert.equal(new Sampler(P({ temperature: 0 }), 6).sample(logits), 1);
  const c = counts(new Sampler(P({ temperature: 1.5, topK: 1, seed: 1 }), 6), logits, 50);
  assert.equal(c[1], 50);
});

test('a seed reproduces the draws; another seed differs', () => {
  const draw = (seed: number) => { const s = new Sampler(P({ seed }), 6); return Array.from({ length: 40 }, () => s.sample(logits)); };
  assert.deepEqual(draw(5), draw(5));
  assert.notDeepEqual(draw(5), draw(6));
});

test('draws follow softmax(logits / T)', () => {
  const T = 0.7, n = 20000;
  const c = counts(new Sampler(P({ temperature: T, seed: 123 }), 6), logits, n);
  const z = logSumExp(Float32Array.from(logits, (v) => v / T));
  logits.forEach((v, i) => {
    const p = Math.exp(v / T - z);
    const sd = Math.sqrt(p * (1 - p) / n);
    assert.ok(Math.abs(c[i]! / n - p) < 5 * sd + 1e-9, `token ${i}: ${c[i]! / n} vs ${p}`);
  });
});

test('top_p keeps the smallest most-likely set reaching the mass; top_k keeps k', () => {
  const x = Float32Array.from([Math.log(0.6), Math.log(0.3), Math.log(0.06), Math.log(0.04)]);
  assert.deepEqual(counts(new Sampler(P({ topP: 0.5, seed: 9 }), 4), x, 300), [300, 0, 0, 0]);
  const c = counts(new Sampler(P({ topP: 0.85, seed: 9 }), 4), x, 600);
  assert.ok(c[0]! > 0 && c[1]! > 0 && c[2] === 0 && c[3] === 0, String(c));
  const k = counts(new Sampler(P({ topK: 3, seed: 2 }), 4), x, 2000);
  assert.equal(k[3], 0);
  assert.ok(k[2]! > 0);
});

test('penalties lower repeated tokens; banned tokens are never drawn', () => {
  const s = new Sampler(P({ temperature: 0, presencePenalty: 0.5, frequencyPenalty: 0.4 }), 6, [2]);
  assert.equal(s.sample(logits), 1);
  s.observe(1);
  assert.equal(s.sample(logits), 1, 'token 1: 2 - 0.5 - 0.4 = 1.1 still beats token 4 (1.0); token 2 (2.0) is banned');
  s.observe(1);
  assert.equal(s.sample(logits), 4, 'token 1: 2 - 0.5 - 0.8 = 0.7 now loses to token 4 (1.0)');
});

test('topLogprobs: best first, ties to the lower id, log-probabilities', () => {
  const t = topLogprobs(logits, 3);
  assert.deepEqual(t.map((x) => x.id), [1, 2, 4]);
  const z = logSumExp(logits);
  assert.ok(Math.abs(t[0]!.logprob - (2 - z)) < 1e-12);
  assert.deepEqual(topLogprobs(logits, 0), []);
  assert.equal(topLogprobs(logits, 10).length, 6);
});

test('nucleus selection equals the sort-based definition', () => {
  const rng = new Rng(4);
  for (let trial = 0; trial < 200; trial++) {
    const V = 1 + rng.int(300);
    const w = new Float64Array(V);
    for (let i = 0; i < V; i++) w[i] = rng.uniform() < 0.2 ? 0 : Math.round(Math.exp(rng.normal() * (1 + trial % 4)) * 8) / 8; // zeros and ties
    let total = 0;
    for (const x of w) total += x;
    if (total === 0) continue;
    const p = [0.1, 0.5, 0.9, 0.99, 1][trial % 5]!;
    const got = nucleus(w, p * total, new Int32Array(V)).sort((a, b) => a - b);
    // reference: sort by weight (ties by id), keep until the mass reaches p
    const order = [...w.keys()].filter((i) => w[i]! > 0).sort((a, b) => w[b]! - w[a]! || a - b);
    const want: number[] = [];
    let mass = 0;
    for (const i of order) { if (mass >= p * total) break; want.push(i); mass += w[i]!; }
    assert.deepEqual(got, want.sort((a, b) => a - b), `trial ${trial}`);
  }
});

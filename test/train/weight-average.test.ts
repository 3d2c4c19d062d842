import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/index.ts';
import type { Param } from '../../src/nn/layers.ts';
import { WeightAverage } from '../../src/train/weight-average.ts';

const param = (name: string, data: number[]): Param => ({ name, tensor: Tensor.from(new Float32Array(data), [data.length]), decay: true, lrScale: 1 });
const values = (p: Param) => Array.from(p.tensor.toArray());
const close = (a: number[], b: number[]) => a.every((x, i) => Math.abs(x - b[i]!) < 1e-6);

test('weight average: starts at the weights, folds each update in with the decay, swaps in and out without touching the live weights', async () => {
  const w = param('w', [1, 2, 3]), b = param('b', [-1]);
  const avg = new WeightAverage([w, b], 0.75);
  const live = (xs: number[], ys: number[]) => { setAll(w, xs); setAll(b, ys); };
  live([5, 6, 7], [3]);
  avg.update(); // 0.75·start + 0.25·live
  live([9, 10, 11], [7]);
  avg.update();
  const expectW = [1, 2, 3].map((x0, i) => 0.75 * (0.75 * x0 + 0.25 * [5, 6, 7][i]!) + 0.25 * [9, 10, 11][i]!);
  const expectB = [0.75 * (0.75 * -1 + 0.25 * 3) + 0.25 * 7];
  avg.swapIn();
  assert.ok(close(values(w), expectW), `averaged ${values(w)} vs ${expectW}`);
  assert.ok(close(values(b), expectB));
  assert.throws(() => avg.update(), /while the average is swapped in/);
  avg.swapIn(); // idempotent
  avg.swapOut();
  assert.deepEqual(values(w), [9, 10, 11]);
  assert.deepEqual(values(b), [7]);
  const seen = await avg.with(() => values(w));
  assert.ok(close(seen, expectW));
  assert.deepEqual(values(w), [9, 10, 11], 'with() restores the live weights');
  await assert.rejects(avg.with(() => { throw new Error('boom'); }), /boom/);
  assert.deepEqual(values(w), [9, 10, 11], 'even when the callback throws');
  assert.throws(() => new WeightAverage([w], 1), /decay must be in \[0, 1\), got 1/);
  assert.throws(() => new WeightAverage([w], -0.1), /decay must be in \[0, 1\)/);
});

function setAll(p: Param, xs: number[]): void {
  (p.tensor.backend.toHost(p.tensor.buf) as Float32Array).set(xs);
}

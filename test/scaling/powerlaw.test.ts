import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitComputeLaw, fitChinchilla, computeLaw, chinchillaLaw, chinchillaOptimum } from '../../src/scaling/powerlaw.ts';
import { Rng } from '../../src/tensor/rng.ts';

const truth = { a: 40, b: -0.15, c: 1.7 };
const grid = [1e9, 2e9, 5e9, 1e10, 2e10, 5e10, 1e11];

test('L(C) fit recovers known parameters from exact data', () => {
  const f = fitComputeLaw(grid.map((C) => ({ C, L: computeLaw(truth, C) })));
  assert.ok(f.ok, f.ok ? '' : f.reason);
  assert.ok(Math.abs(f.params.b - truth.b) < 1e-4, `b ${f.params.b}`);
  assert.ok(Math.abs(f.params.c - truth.c) < 1e-3, `c ${f.params.c}`);
  assert.ok(Math.abs(f.params.a / truth.a - 1) < 2e-3, `a ${f.params.a}`);
  assert.ok(f.rmsLogResidual < 1e-6);
});

test('L(C) fit with 0.2% noise: parameters within tolerance and the 1000x extrapolation within 5%', () => {
  // Tolerances from a simulation over 200 seeds (7 points over 2 decades, 0.2% noise): the 99th
  // percentiles were |Δb| 0.027, |Δc| 0.24 and 4.6% for the extrapolation to 1e14 (median 1.1%).
  const rng = new Rng(11);
  const f = fitComputeLaw(grid.map((C) => ({ C, L: computeLaw(truth, C) * (1 + 0.002 * rng.normal()) })));
  assert.ok(f.ok, f.ok ? '' : f.reason);
  assert.ok(Math.abs(f.params.b - truth.b) < 0.03, `b ${f.params.b}`);
  assert.ok(Math.abs(f.params.c - truth.c) < 0.25, `c ${f.params.c}`);
  const pred = computeLaw(f.params, 1e14), actual = computeLaw(truth, 1e14);
  assert.ok(Math.abs(pred / actual - 1) < 0.05, `pred ${pred} vs ${actual}`);
});

test('L(C) fit is robust to one diverged run (Huber), unlike least squares', () => {
  const pts = grid.map((C) => ({ C, L: computeLaw(truth, C) }));
  pts[3]!.L *= 1.3;
  const err = (delta?: number) => {
    const f = fitComputeLaw(pts, delta === undefined ? {} : { huberDelta: delta });
    assert.ok(f.ok, f.ok ? '' : f.reason);
    return Math.abs(computeLaw(f.params, 1e14) / computeLaw(truth, 1e14) - 1);
  };
  const robust = err(), ls = err(Infinity);
  assert.ok(robust < 0.03, `Huber extrapolation error ${robust}`);
  assert.ok(ls > 3 * robust, `least squares error ${ls} should be much worse than Huber ${robust}`);
});

test('L(C) fit with no floor reports c at its bound rather than failing', () => {
  const f = fitComputeLaw(grid.map((C) => ({ C, L: 30 * Math.pow(C, -0.1) })));
  assert.ok(f.ok, f.ok ? '' : f.reason);
  assert.ok(f.params.c < 1e-3, `c ${f.params.c}`);
  assert.ok(Math.abs(f.params.b + 0.1) < 1e-3);
  assert.ok(f.notes.some((n) => /lower bound/.test(n)));
});

test('L(C) fit fails with a reason on degenerate input', () => {
  const pts = grid.map((C) => ({ C, L: computeLaw(truth, C) }));
  const r1 = fitComputeLaw(pts.slice(0, 3));
  assert.ok(!r1.ok && /too few points.*got 3/.test(r1.reason));
  const r2 = fitComputeLaw(pts.map((p, i) => (i === 2 ? { C: p.C, L: NaN } : p)));
  assert.ok(!r2.ok && /L\[2\] is not a finite number/.test(r2.reason));
  const r3 = fitComputeLaw(pts.map((p) => ({ C: 1e10, L: p.L })));
  assert.ok(!r3.ok && /distinct/.test(r3.reason));
  const r4 = fitComputeLaw(grid.map((C) => ({ C, L: 1 + 1e-3 * Math.log(C) }))); // loss rises with compute
  assert.ok(!r4.ok && /does not decrease/.test(r4.reason), r4.ok ? 'fit succeeded' : r4.reason);
  const r5 = fitComputeLaw(pts.map((p, i) => (i === 0 ? { C: -1, L: p.L } : p)));
  assert.ok(!r5.ok && /C\[0\] must be > 0/.test(r5.reason));
});

const chTruth = { E: 1.7, A: 400, alpha: 0.34, B: 410, beta: 0.28 };
function chPoints(noise: number, seed: number) {
  const rng = new Rng(seed);
  const pts: { N: number; D: number; L: number }[] = [];
  for (const N of [1e4, 3e4, 1e5, 3e5, 1e6]) for (const D of [1e6, 3e6, 1e7, 3e7]) pts.push({ N, D, L: chinchillaLaw(chTruth, N, D) * (1 + noise * rng.normal()) });
  return pts;
}

test('L(N, D) fit recovers known parameters exactly, and within tolerance under noise', () => {
  const f = fitChinchilla(chPoints(0, 1));
  assert.ok(f.ok, f.ok ? '' : f.reason);
  for (const k of ['E', 'alpha', 'beta'] as const) assert.ok(Math.abs(f.params[k] / chTruth[k] - 1) < 1e-3, `${k} ${f.params[k]}`);
  assert.ok(Math.abs(f.params.A / chTruth.A - 1) < 1e-2 && Math.abs(f.params.B / chTruth.B - 1) < 1e-2);
  const g = fitChinchilla(chPoints(0.003, 5));
  assert.ok(g.ok, g.ok ? '' : g.reason);
  assert.ok(Math.abs(g.params.alpha - chTruth.alpha) < 0.05 && Math.abs(g.params.beta - chTruth.beta) < 0.05, `α ${g.params.alpha} β ${g.params.beta}`);
  assert.ok(Math.abs(g.params.E - chTruth.E) < 0.3, `E ${g.params.E}`);
  // predictions inside the data are within the noise
  assert.ok(Math.abs(chinchillaLaw(g.params, 1e5, 1e7) / chinchillaLaw(chTruth, 1e5, 1e7) - 1) < 0.005);
});

test('L(N, D) fit fails with a reason when N and D are collinear or too few', () => {
  const line = [1, 2, 3, 4, 5, 6, 7].map((k) => ({ N: 1e4 * k, D: 1e6 * k, L: 3 - 0.1 * k }));
  const r = fitChinchilla(line);
  assert.ok(!r.ok && /collinear/.test(r.reason), r.ok ? 'fit succeeded' : r.reason);
  const few = fitChinchilla(chPoints(0, 1).slice(0, 5));
  assert.ok(!few.ok && /need at least 6/.test(few.reason));
});

test('chinchillaOptimum balances N and D so that C = 6·N·D', () => {
  const o = chinchillaOptimum(chTruth, 1e15);
  assert.ok(Math.abs(6 * o.N * o.D / 1e15 - 1) < 1e-9);
  // it is the minimum along the iso-FLOP line
  for (const f of [0.8, 1.25]) assert.ok(chinchillaLaw(chTruth, o.N * f, o.D / f) > o.L);
});

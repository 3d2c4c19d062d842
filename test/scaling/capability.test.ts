import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitCapability, predictCapability, capabilityLaw, solvedByAll, meanNegLogPass } from '../../src/scaling/capability.ts';
import { Rng } from '../../src/tensor/rng.ts';

const truth = { alpha: 1000, k: 0.3 };
const Cs = [1e9, 3e9, 1e10, 3e10, 1e11];

/** Per-problem pass rates exp(−d_j·y(C)) with difficulties d_j of mean 1 (exact, no sampling). */
function exactPoints(difficulties: number[]) {
  return Cs.map((C) => ({ C, perProblemPass: difficulties.map((d) => Math.exp(-d * capabilityLaw(truth, C))) }));
}

test('capability fit recovers α and k from exact per-problem pass rates and predicts the target', () => {
  const rng = new Rng(3);
  const d = [...Array(30)].map(() => Math.exp(0.5 * rng.normal()));
  const mean = d.reduce((s, v) => s + v, 0) / d.length;
  const f = fitCapability(exactPoints(d.map((v) => v / mean)));
  assert.ok(f.ok, f.ok ? '' : f.reason);
  assert.equal(f.params.problems.length, 30);
  assert.ok(Math.abs(f.params.k - truth.k) < 1e-6, `k ${f.params.k}`);
  assert.ok(Math.abs(f.params.alpha / truth.alpha - 1) < 1e-4, `alpha ${f.params.alpha}`);
  const p = predictCapability(f.params, 1e14);
  assert.ok(Math.abs(p.negLogPass / capabilityLaw(truth, 1e14) - 1) < 1e-4);
  assert.ok(Math.abs(p.passRate - Math.exp(-capabilityLaw(truth, 1e14))) < 1e-6);
});

test('capability fit keeps only problems every model solves at least once', () => {
  const pts = exactPoints([1, 1, 1, 1]);
  pts[0]!.perProblemPass[2] = 0; // the smallest model never solves problem 2
  assert.deepEqual(solvedByAll(pts), [0, 1, 3]);
  const f = fitCapability(pts);
  assert.ok(f.ok, f.ok ? '' : f.reason);
  assert.deepEqual(f.params.problems, [0, 1, 3]);
  assert.ok(Math.abs(f.params.k - truth.k) < 1e-6);
});

test('capability fit with sampled pass rates stays within tolerance', () => {
  // 200 problems, 100 samples each: the mean log pass rate is estimated to about 1-2%; tolerance on k
  // is ±0.03 (about 3 standard errors for this design).
  const rng = new Rng(9);
  const d = [...Array(200)].map(() => Math.exp(0.3 * rng.normal()));
  const pts = Cs.map((C) => ({ C, perProblemPass: d.map((dj) => { const p = Math.exp(-dj * capabilityLaw(truth, C)); let s = 0; for (let i = 0; i < 100; i++) if (rng.uniform() < p) s++; return s / 100; }) }));
  const f = fitCapability(pts);
  assert.ok(f.ok, f.ok ? '' : f.reason);
  assert.ok(Math.abs(f.params.k - truth.k) < 0.03, `k ${f.params.k}`);
});

test('capability fit fails with a reason on degenerate input', () => {
  const none = fitCapability(Cs.map((C, i) => ({ C, perProblemPass: [i === 0 ? 0 : 0.5, i === 1 ? 0 : 0.5] })));
  assert.ok(!none.ok && /no problem is solved at least once by every model/.test(none.reason));
  const few = fitCapability(exactPoints([1]).slice(0, 2));
  assert.ok(!few.ok && /need at least 3/.test(few.reason));
  const flat = fitCapability(Cs.map((C) => ({ C, perProblemPass: [0.5, 0.25] })));
  assert.ok(!flat.ok && /does not improve/.test(flat.reason), flat.ok ? `k ${flat.params.k}` : flat.reason);
  const bad = fitCapability(Cs.map((C) => ({ C, perProblemPass: [1.5] })));
  assert.ok(!bad.ok && /must be in \[0, 1\]/.test(bad.reason));
  const ragged = fitCapability([{ C: 1e9, perProblemPass: [0.1, 0.2] }, { C: 1e10, perProblemPass: [0.3] }, { C: 1e11, perProblemPass: [0.5, 0.6] }]);
  assert.ok(!ragged.ok && /model 1 has 1 per-problem pass rates/.test(ragged.reason));
});

test('meanNegLogPass floors unsolved problems instead of returning infinity', () => {
  assert.equal(meanNegLogPass([1, 1], [0, 1]), -0);
  assert.ok(Math.abs(meanNegLogPass([0, 1], [0, 1], 1e-3) - Math.log(1000) / 2) < 1e-12);
});

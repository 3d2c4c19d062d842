import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrap, quantile } from '../../src/scaling/bootstrap.ts';
import { fitComputeLaw, computeLaw } from '../../src/scaling/powerlaw.ts';
import { fail } from '../../src/scaling/fit.ts';
import { Rng } from '../../src/tensor/rng.ts';

test('quantile interpolates between order statistics', () => {
  assert.equal(quantile([1, 2, 3, 4, 5], 0.5), 3);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([7], 0.9), 7);
});

test('bootstrap CI of a mean covers the truth and has the textbook width', () => {
  const rng = new Rng(21);
  const xs = [...Array(200)].map(() => 5 + rng.normal());
  const r = bootstrap(xs, (s) => ({ ok: true, params: s.reduce((a, b) => a + b, 0) / s.length, n: s.length, rmsLogResidual: 0, iterations: 0, notes: [] }), (m) => ({ mean: m }), { samples: 2000, seed: 1 });
  assert.ok(r.ok);
  const iv = r.params.intervals.mean;
  assert.ok(iv.lo < 5 && iv.hi > 5, `[${iv.lo}, ${iv.hi}]`);
  // standard error 1/sqrt(200) ≈ 0.0707 → a 95% interval about 0.277 wide
  assert.ok(Math.abs((iv.hi - iv.lo) / (2 * 1.96 / Math.sqrt(200)) - 1) < 0.15, `width ${iv.hi - iv.lo}`);
});

test('bootstrap of the L(C) fit (points resampled within budgets) covers the true parameters and prediction', () => {
  const truth = { a: 40, b: -0.15, c: 1.7 };
  const rng = new Rng(4);
  // 7 budgets × 3 replicate runs with 0.3% noise; the fit uses the mean loss per budget.
  const units: { C: number; L: number; k: number }[] = [];
  [1e9, 2e9, 5e9, 1e10, 2e10, 5e10, 1e11].forEach((C, k) => { for (let r = 0; r < 3; r++) units.push({ C, L: computeLaw(truth, C) * (1 + 0.003 * rng.normal()), k }); });
  const reduce = (s: typeof units) => {
    const by = new Map<number, number[]>();
    for (const u of s) { const a = by.get(u.C) ?? []; a.push(u.L); by.set(u.C, a); }
    return [...by].map(([C, ls]) => ({ C, L: ls.reduce((x, y) => x + y, 0) / ls.length }));
  };
  const r = bootstrap(units, (s) => fitComputeLaw(reduce(s)), (p) => ({ b: p.b, c: p.c, target: computeLaw(p, 1e14) }), { samples: 300, seed: 2, strata: units.map((u) => u.k) });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  const { b, c, target } = r.params.intervals;
  assert.ok(b.lo <= truth.b && truth.b <= b.hi, `b [${b.lo}, ${b.hi}]`);
  assert.ok(c.lo <= truth.c && truth.c <= c.hi, `c [${c.lo}, ${c.hi}]`);
  const t = computeLaw(truth, 1e14);
  assert.ok(target.lo <= t && t <= target.hi, `target [${target.lo}, ${target.hi}] vs ${t}`);
  assert.equal(r.params.succeeded + r.params.failed, 300);
});

test('bootstrap fails, with the first reason, when most refits fail', () => {
  let calls = 0;
  const r = bootstrap([1, 2, 3], () => (calls++ % 4 === 0 ? { ok: true, params: 1, n: 3, rmsLogResidual: 0, iterations: 0, notes: [] } : fail('degenerate resample')), (p) => ({ v: p }), { samples: 40 });
  assert.ok(!r.ok && /only 10 of 40 refits succeeded.*degenerate resample/.test(r.reason), r.ok ? 'ok' : r.reason);
  const bad = bootstrap([], () => fail('x'), () => ({}), {});
  assert.ok(!bad.ok && /needs data/.test(bad.reason));
});

test('bootstrap is reproducible for a seed', () => {
  const xs = [1, 4, 2, 8, 5, 7];
  const run = (seed: number) => bootstrap(xs, (s) => ({ ok: true, params: Math.max(...s), n: s.length, rmsLogResidual: 0, iterations: 0, notes: [] }), (m) => ({ m }), { samples: 50, seed });
  assert.deepEqual(run(5), run(5));
});

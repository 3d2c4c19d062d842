import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planSweep, lrSweepPlan } from '../../src/scaling/plan.ts';
import { WIDTH_LADDER, layersFor, shapeConfig, defaultBase } from '../../src/scaling/shape.ts';
import { flopsPerToken, paramCount } from '../../src/models/config.ts';
import { lrOptima, plotLrSweep } from '../../src/scaling/lr.ts';
import { InputError } from '../../src/util/errors.ts';

test('planSweep spans C/1e5 to C/1e3 with several model sizes per budget, FLOPs from the model count', () => {
  const plan = planSweep({ targetFlops: 1e14, budgetsPerDecade: 2, modelsPerBudget: 4 });
  assert.equal(plan.budgets.length, 5);
  assert.ok(Math.abs(plan.budgets[0]! / 1e9 - 1) < 1e-9 && Math.abs(plan.budgets[4]! / 1e11 - 1) < 1e-9);
  for (const B of plan.budgets) {
    const rs = plan.runs.filter((r) => r.budget === B);
    assert.ok(rs.length >= 3, `budget ${B} has ${rs.length} runs`);
    assert.equal(new Set(rs.map((r) => r.width)).size, rs.length, 'distinct sizes');
  }
  for (const r of plan.runs) {
    assert.equal(r.flopsPerToken, flopsPerToken(r.config));
    assert.equal(r.flops, r.tokens * flopsPerToken(r.config));
    assert.ok(Math.abs(r.flops / r.budget - 1) < 1e-3, `${r.id}: ${r.flops} vs budget ${r.budget}`);
    assert.equal(r.params, paramCount(r.config, { embeddings: false }));
    assert.equal(r.depth, layersFor(r.width));
    assert.equal(r.heads, Math.max(1, r.width / 16));
    assert.equal(r.config.kvHeads, r.heads);
  }
  assert.equal(new Set(plan.runs.map((r) => r.id)).size, plan.runs.length, 'unique ids');
  // The target sits at the full compute with about 20 tokens per parameter (within a ladder step).
  assert.ok(Math.abs(plan.target.flops / 1e14 - 1) < 1e-3);
  const ratio = plan.target.tokens / plan.target.params;
  assert.ok(ratio > 5 && ratio < 80, `target tokens/param ${ratio}`);
  // The sweep's most expensive run is at most 1/1000 of the target.
  assert.ok(Math.max(...plan.runs.map((r) => r.flops)) <= 1e11 * 1.001);
});

test('the ladder of shapes follows one rule and bigger widths mean bigger models', () => {
  const base = defaultBase();
  let prev = 0;
  for (const w of WIDTH_LADDER) {
    const c = shapeConfig(base, w);
    const n = paramCount(c, { embeddings: false });
    assert.ok(n > prev, `width ${w}`);
    prev = n;
  }
  assert.throws(() => shapeConfig(base, 40), InputError);
});

test('planSweep rejects impossible options with InputError naming them', () => {
  assert.throws(() => planSweep({ targetFlops: -1 }), /targetFlops must be a positive number/);
  assert.throws(() => planSweep({ targetFlops: 1e14, minFraction: 1e-2, maxFraction: 1e-3 }), /minFraction .* is above maxFraction/);
  assert.throws(() => planSweep({ targetFlops: 1e14, minFraction: 1e-3, maxFraction: 1e-3 }), /only 1 compute budget/);
  assert.throws(() => planSweep({ targetFlops: 1e14, modelsPerBudget: 2.5 }), /modelsPerBudget must be a positive integer/);
  assert.throws(() => planSweep({ targetFlops: 1e6 }), /fewer than 2048 tokens/);
});

test('lrSweepPlan: every width × lr, fixed depth and tokens, muP base width at the smallest width', () => {
  const runs = lrSweepPlan([128, 32, 64], [1e-3, 3e-3, 1e-2, 3e-2], { tokens: 1e5 });
  assert.equal(runs.length, 12);
  assert.deepEqual([...new Set(runs.map((r) => r.width))], [32, 64, 128]);
  assert.ok(runs.every((r) => r.depth === runs[0]!.depth && r.tokens === 1e5 && r.config.parametrization === 'mup' && r.config.baseWidth === 32));
  assert.throws(() => lrSweepPlan([32], [1, 2, 3]), /at least 2 widths/);
  assert.throws(() => lrSweepPlan([32, 64], [1, 2]), /at least 3 learning rates/);
});

test('lrOptima finds per-width optima between grid points and measures their spread', () => {
  // loss = 3 + 0.1·(ln lr − ln lr*_w)², with lr* = 0.01 at width 32 and 0.014 at width 128
  const lrs = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1];
  const opt: Record<number, number> = { 32: 0.01, 64: 0.012, 128: 0.014 };
  const results = Object.entries(opt).flatMap(([w, o]) => lrs.map((lr) => ({ width: Number(w), lr, finalValLoss: 3 + 0.1 * (Math.log(lr) - Math.log(o)) ** 2 })));
  const t = lrOptima(results);
  assert.equal(t.optima.length, 3);
  for (const o of t.optima) assert.ok(Math.abs(o.lr / opt[o.width]! - 1) < 0.3, `width ${o.width}: ${o.lr}`);
  assert.ok(Math.abs(t.shift - 1.4) < 0.3, `shift ${t.shift}`);
  assert.equal(t.widthRange, 4);
  assert.equal(t.transfers, true);
  // an optimum that moves 10x fails the check; an optimum at the sweep's edge is flagged
  const moved = results.map((r) => (r.width === 128 ? { ...r, finalValLoss: 3 + 0.1 * (Math.log(r.lr) - Math.log(0.1)) ** 2 } : r));
  const m = lrOptima(moved);
  assert.equal(m.transfers, false);
  assert.ok(m.optima.find((o) => o.width === 128)!.atEdge);
  const svg = plotLrSweep(results);
  assert.match(svg, /^<svg/);
  assert.ok(svg.includes('width 32') && svg.includes('width 128'));
});

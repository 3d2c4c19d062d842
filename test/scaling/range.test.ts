import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rangeSensitivity } from '../../src/scaling/analyze.ts';
import { computeLaw } from '../../src/scaling/powerlaw.ts';

const grid = [1e9, 2.15e9, 4.64e9, 1e10, 2.15e10, 4.64e10, 1e11];
const pts = (L: (C: number) => number) => grid.map((C) => ({ budget: C, C, L: L(C) }));

test('range check: one power law gives the same prediction from every part of the frontier', () => {
  const truth = { a: 40, b: -0.15, c: 1.7 };
  const r = rangeSensitivity(pts((C) => computeLaw(truth, C)), 1e14);
  assert.deepEqual(r.rows.map((x) => x.points), [7, 6, 5, 4]);
  assert.deepEqual(r.rows.map((x) => x.fromBudget), grid.slice(0, 4));
  for (const x of r.rows) assert.ok(x.prediction !== null && Math.abs(x.prediction / computeLaw(truth, 1e14) - 1) < 1e-3, `${x.prediction}`);
  assert.ok(r.spreadPct !== null && r.spreadPct < 0.2, `spread ${r.spreadPct}`);
});

test('range check: a frontier that bends (two regimes) gives drifting predictions and a large spread', () => {
  // small runs on a shallow law, larger ones steepening: the shape of the byte-level sweep below 1e11
  const bent = (C: number) => 3.2 * Math.pow(C / 1e9, -0.02) - 0.35 * Math.pow(C / 1e9, 0.25) + 0.35;
  const r = rangeSensitivity(pts(bent), 1e14);
  const preds = r.rows.map((x) => x.prediction).filter((v): v is number => v !== null);
  assert.ok(preds.length >= 3);
  assert.ok(preds[preds.length - 1]! < preds[0]!, `fitting only the top of a steepening frontier predicts lower: ${preds}`);
  assert.ok(r.spreadPct !== null && r.spreadPct > 5, `spread ${r.spreadPct}`);
});

test('range check: fewer than 4 points gives no refits and no spread', () => {
  const r = rangeSensitivity(pts((C) => 3 * Math.pow(C, -0.05)).slice(0, 3), 1e14);
  assert.deepEqual(r.rows, []);
  assert.equal(r.spreadPct, null);
});

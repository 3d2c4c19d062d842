import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byBudget, computeFrontier, frontierPoint, loglogFit, usableFrontier } from '../../src/scaling/frontier.ts';
import type { RunRecord } from '../../src/scaling/run.ts';

function rec(budget: number, N: number, L: number): RunRecord {
  return { id: `b${budget}-n${N}`, budget, width: 0, depth: 0, heads: 0, plannedTokens: 0, plannedFlops: budget, N, paramsTotal: N, D: budget / (6 * N), C: budget, finalValLoss: L, passRate: 0, seconds: 0, startedAt: '', finishedAt: '' };
}

test('frontierPoint takes the parabola vertex in ln N when it lies inside the sizes run', () => {
  // L = 3 + 0.05·(ln N − ln 2e4)² sampled at 5e3, 1e4, 4e4, 8e4 — the optimum 2e4 is between grid points
  const runs = [5e3, 1e4, 4e4, 8e4].map((N) => rec(1e10, N, 3 + 0.05 * (Math.log(N) - Math.log(2e4)) ** 2));
  const p = frontierPoint(runs);
  assert.equal(p.method, 'parabola');
  assert.ok(Math.abs(p.N / 2e4 - 1) < 1e-6, `N ${p.N}`);
  assert.ok(Math.abs(p.L - 3) < 1e-9);
  assert.ok(p.L <= Math.min(...runs.map((r) => r.finalValLoss)));
  assert.equal(p.bracketed, true);
  assert.equal(frontierPoint(runs, 'min').L, Math.min(...runs.map((r) => r.finalValLoss)));
});

test('frontierPoint falls back to the best run when the profile is not convex or the vertex is outside', () => {
  const falling = [1e4, 2e4, 4e4].map((N, i) => rec(1e10, N, 3 - 0.1 * i));
  const p = frontierPoint(falling);
  assert.equal(p.method, 'min');
  assert.equal(p.N, 4e4);
  assert.equal(p.bracketed, false, 'the best run is the largest size: the optimum is not bracketed');
  const two = frontierPoint([rec(1e10, 1e4, 3), rec(1e10, 2e4, 2.9)]);
  assert.equal(two.method, 'min');
});

test('usableFrontier leaves unbracketed budgets out when enough remain, and says so', () => {
  const mk = (b: number, bracketed: boolean) => ({ budget: b, C: b, L: 3, N: 1, D: 1, method: 'min' as const, runs: 3, bestRunId: '', bracketed });
  const pts = [mk(1e9, false), mk(1e10, true), mk(1e11, true), mk(1e12, true), mk(1e13, true)];
  const u = usableFrontier(pts);
  assert.equal(u.points.length, 4);
  assert.match(u.note!, /left out of the L\(C\) fit: budget\(s\) 1.00e\+9/);
  const few = usableFrontier(pts.slice(0, 3));
  assert.equal(few.points.length, 3);
  assert.match(few.note!, /kept: too few bracketed budgets/);
  assert.equal(usableFrontier(pts.slice(1)).note, null);
});

test('byBudget groups by nominal budget and computeFrontier returns one point per budget', () => {
  const rs = [rec(1e10, 1e4, 3), rec(1e9, 1e4, 4), rec(1e10, 2e4, 2.9), rec(1e9, 2e3, 4.1)];
  assert.deepEqual(byBudget(rs).map((g) => g.length), [2, 2]);
  assert.deepEqual(computeFrontier(rs).map((p) => p.budget), [1e9, 1e10]);
});

test('loglogFit recovers a power law and refuses degenerate input', () => {
  const xs = [1e9, 1e10, 1e11], ys = xs.map((x) => 0.3 * Math.pow(x, 0.5));
  const f = loglogFit(xs, ys)!;
  assert.ok(Math.abs(f.h - 0.5) < 1e-12 && Math.abs(f.g / 0.3 - 1) < 1e-9);
  assert.equal(loglogFit([1e9, 1e9], [1, 2]), null);
  assert.equal(loglogFit([1e9], [1]), null);
});

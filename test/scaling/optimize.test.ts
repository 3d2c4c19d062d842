import { test } from 'node:test';
import assert from 'node:assert/strict';
import { solve, nnls, levenbergMarquardt, huber } from '../../src/scaling/optimize.ts';

test('solve handles pivoting and reports singular systems', () => {
  const x = solve([[0, 2, 1], [1, 1, 0], [3, 0, 1]], [5, 3, 6]);
  assert.ok(x);
  // check A x = b
  const A = [[0, 2, 1], [1, 1, 0], [3, 0, 1]], b = [5, 3, 6];
  A.forEach((row, i) => assert.ok(Math.abs(row.reduce((s, v, j) => s + v * x![j]!, 0) - b[i]!) < 1e-12));
  assert.equal(solve([[1, 2], [2, 4]], [1, 2]), null);
});

test('nnls clamps a coefficient that would be negative to zero', () => {
  // y = 2·x1 exactly; an unconstrained fit with an intercept column would be fine, but make the
  // intercept want to be negative: y = 2x − 1 on x ≥ 1.
  const xs = [1, 2, 3, 4];
  const X = xs.map((x) => [x, 1]);
  const y = xs.map((x) => 2 * x - 1);
  const free = nnls(X, y, xs.map(() => 1))!;
  assert.ok(free.beta.every((b) => b >= 0));
  assert.equal(free.beta[1], 0, 'intercept clamped');
  assert.ok(free.beta[0]! > 1.5 && free.beta[0]! < 2);
});

test('levenbergMarquardt fits an exponential decay exactly and Huber resists an outlier', () => {
  const ts = [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4];
  const truth = [2, 0.7];
  const ys = ts.map((t) => truth[0]! * Math.exp(-truth[1]! * t));
  const r = levenbergMarquardt((p) => ts.map((t, i) => p[0]! * Math.exp(-p[1]! * t) - ys[i]!), [1, 0.1]);
  assert.ok(r.converged, r.reason);
  assert.ok(Math.abs(r.theta[0]! - 2) < 1e-7 && Math.abs(r.theta[1]! - 0.7) < 1e-7, `${r.theta}`);

  const bad = [...ys]; bad[4] = bad[4]! + 1; // one gross outlier
  const ls = levenbergMarquardt((p) => ts.map((t, i) => p[0]! * Math.exp(-p[1]! * t) - bad[i]!), [1, 0.1]);
  const hub = levenbergMarquardt((p) => ts.map((t, i) => p[0]! * Math.exp(-p[1]! * t) - bad[i]!), [1, 0.1], { huberDelta: 0.01 });
  assert.ok(ls.converged && hub.converged);
  const errLs = Math.abs(ls.theta[1]! - 0.7), errHub = Math.abs(hub.theta[1]! - 0.7);
  assert.ok(errHub < errLs / 5, `Huber error ${errHub} should be far below least squares ${errLs}`);
});

test('levenbergMarquardt reports non-finite starting residuals instead of returning garbage', () => {
  const r = levenbergMarquardt(() => [NaN, 1], [0]);
  assert.equal(r.converged, false);
  assert.match(r.reason, /not finite/);
});

test('huber is quadratic inside delta and linear outside, continuous at delta', () => {
  assert.equal(huber(0.5, 1), 0.125);
  assert.equal(huber(3, 1), 2.5);
  assert.ok(Math.abs(huber(1 + 1e-9, 1) - huber(1, 1)) < 1e-8);
});

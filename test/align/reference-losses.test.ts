import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bradleyTerryLossRef, dpoLossRef, ppoPolicyLossRef, ppoValueLossRef, sigmoid, softplus } from '../../src/align/reference-losses.ts';

const near = (a: number, b: number, tol = 1e-12, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

/** Central finite difference; step 1e-6 gives ~1e-9 accuracy on these smooth pieces. */
function fd(f: (x: number) => number, x: number): number {
  const h = 1e-6;
  return (f(x + h) - f(x - h)) / (2 * h);
}

test('PPO clipped policy loss: hand values and gradients', () => {
  // ratio = e^0.2 ≈ 1.2214 > 1.2. A > 0: the clipped term (−2·1.2) is larger → gradient 0.
  let r = ppoPolicyLossRef(-1, -1.2, 2, 0.2);
  near(r.loss, -2.4); assert.equal(r.dLogp, 0);
  // A < 0: the unclipped term 2·e^0.2 is larger → gradient −A·ratio = 2·e^0.2.
  r = ppoPolicyLossRef(-1, -1.2, -2, 0.2);
  near(r.loss, 2 * Math.exp(0.2)); near(r.dLogp, 2 * Math.exp(0.2));
  // Inside the trust region: loss −A·ratio.
  r = ppoPolicyLossRef(-1.05, -1, 3, 0.2);
  near(r.loss, -3 * Math.exp(-0.05)); near(r.dLogp, fd((x) => ppoPolicyLossRef(x, -1, 3, 0.2).loss, -1.05), 1e-8);
});

test('PPO clipped value loss: hand values and gradients', () => {
  // value 1.0 moved 0.5 from 0.5, clipped to 0.7; errors 0.2 (unclipped) and 0.1 → ½·0.04, gradient 0.2.
  let v = ppoValueLossRef(1.0, 0.5, 0.8, 0.2);
  near(v.loss, 0.02); near(v.dValue, 0.2);
  // value 0.1 from 0.5 (clipped to 0.3), return 0.8: errors 0.7 (unclipped) and 0.5 (clipped) → unclipped.
  v = ppoValueLossRef(0.1, 0.5, 0.8, 0.2);
  near(v.loss, 0.5 * 0.49); near(v.dValue, -0.7);
  // value 0.75 from 0.5 (clipped to 0.7), return 2: errors 1.25 and 1.3 → clipped branch, clip active → gradient 0.
  v = ppoValueLossRef(0.75, 0.5, 2, 0.2);
  near(v.loss, 0.5 * 1.3 ** 2); assert.equal(v.dValue, 0);
});

test('Bradley-Terry and DPO losses: hand values and gradients', () => {
  let b = bradleyTerryLossRef(1, 1);
  near(b.loss, Math.LN2); near(b.dChosen, -0.5); near(b.dRejected, 0.5);
  b = bradleyTerryLossRef(2, -1);
  near(b.loss, Math.log1p(Math.exp(-3)));
  near(b.dChosen, fd((x) => bradleyTerryLossRef(x, -1).loss, 2), 1e-8);
  near(b.dRejected, fd((x) => bradleyTerryLossRef(2, x).loss, -1), 1e-8);

  // margin m = (−10 − −11) − (−12 − −11.5) = 1 + 0.5 = 1.5; β = 0.1 → L = log(1 + e^−0.15)
  const d = dpoLossRef(-10, -12, -11, -11.5, 0.1);
  near(d.loss, Math.log1p(Math.exp(-0.15)));
  near(d.dPolicyChosen, -0.1 * sigmoid(-0.15)); near(d.dPolicyRejected, 0.1 * sigmoid(-0.15));
  near(d.dPolicyChosen, fd((x) => dpoLossRef(x, -12, -11, -11.5, 0.1).loss, -10), 1e-8);
  near(d.rewardChosen, 0.1); near(d.rewardRejected, -0.05);
  // Equal policy and reference: L = log 2 whatever β.
  near(dpoLossRef(-3, -4, -3, -4, 0.5).loss, Math.LN2);
});

test('sigmoid and softplus are stable at the extremes', () => {
  assert.equal(sigmoid(1000), 1); assert.equal(sigmoid(-1000), 0);
  near(softplus(1000), 1000); near(softplus(-1000), 0);
  near(softplus(0), Math.LN2);
});

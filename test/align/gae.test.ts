import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdaptiveKlController, FixedKlController, gae, gaeBatch, klPerToken, tokenRewards, whiten,
} from '../../src/align/gae.ts';

/** Element-wise closeness; 1e-12 is far above float64 rounding on these few operations. */
function close(actual: readonly number[], expected: readonly number[], tol = 1e-12): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tol, `[${i}] ${a} vs ${expected[i]}`));
}

const R = [0.1, -0.2, 1.0], V = [0.5, 0.4, 0.3];

test('GAE matches hand computation (γ=1, λ=0.95, finished response)', () => {
  // δ2 = 1.0 − 0.3 = 0.7;  δ1 = −0.2 + 0.3 − 0.4 = −0.3;  δ0 = 0.1 + 0.4 − 0.5 = 0
  // A2 = 0.7;  A1 = −0.3 + 0.95·0.7 = 0.365;  A0 = 0 + 0.95·0.365 = 0.34675
  const { advantages, returns } = gae(R, V, { gamma: 1, lambda: 0.95 });
  close(advantages, [0.34675, 0.365, 0.7]);
  close(returns, [0.84675, 0.765, 1.0]);
});

test('GAE matches hand computation (γ=0.9, λ=0.5, truncated with V_T=0.2)', () => {
  // δ2 = 1.0 + 0.9·0.2 − 0.3 = 0.88;  δ1 = −0.2 + 0.9·0.3 − 0.4 = −0.33;  δ0 = 0.1 + 0.9·0.4 − 0.5 = −0.04
  // A2 = 0.88;  A1 = −0.33 + 0.45·0.88 = 0.066;  A0 = −0.04 + 0.45·0.066 = −0.0103
  const { advantages, returns } = gae(R, V, { gamma: 0.9, lambda: 0.5, lastValue: 0.2 });
  close(advantages, [-0.0103, 0.066, 0.88]);
  close(returns, [0.4897, 0.466, 1.18]);
});

test('GAE limits: λ=1 gives returns-to-go minus V, λ=0 gives one-step TD errors', () => {
  close(gae(R, V, { gamma: 1, lambda: 1 }).advantages, [0.9 - 0.5, 0.8 - 0.4, 1.0 - 0.3]);
  close(gae(R, V, { gamma: 1, lambda: 1 }).returns, [0.9, 0.8, 1.0]);
  close(gae(R, V, { gamma: 1, lambda: 0 }).advantages, [0, -0.3, 0.7]);
});

test('gaeBatch handles ragged sequences and per-sequence last values', () => {
  const out = gaeBatch([R, [2]], [V, [0.5]], { gamma: 0.9, lambda: 0.5, lastValues: [0.2, 0] });
  close(out[0]!.advantages, [-0.0103, 0.066, 0.88]);
  close(out[1]!.advantages, [1.5]);
  assert.throws(() => gae([1, 2], [1], { gamma: 1, lambda: 1 }), /rewards has 2 entries but values has 1/);
  assert.throws(() => gae([1], [1], { gamma: 1.5, lambda: 1 }), /gamma and lambda must be in \[0, 1\]/);
});

test('per-token KL estimators and rewards', () => {
  const logp = [-1, -2], ref = [-1.5, -1]; // d = [0.5, −1]
  close(klPerToken(logp, ref, 'k1'), [0.5, -1]);
  close(klPerToken(logp, ref, 'k2'), [0.125, 0.5]);
  close(klPerToken(logp, ref, 'k3'), [Math.exp(-0.5) - 1 + 0.5, Math.E - 1 - 1], 1e-15);
  close(tokenRewards([0.1, 0.2, -0.1], 0.5, 2), [-0.05, -0.1, 2.05]);
  assert.throws(() => tokenRewards([], 0.1, 1), /at least one token/);
});

test('whitening uses the unbiased variance over all tokens', () => {
  // mean 3, var = (4 + 0 + 4) / 2 = 4, std 2
  const w = whiten([[1, 3], [5]], { eps: 0 });
  close(w.flat(), [-1, 0, 1]);
  close(whiten([[1, 3], [5]], { eps: 0, shiftMean: false }).flat(), [2, 3, 4]);
  assert.throws(() => whiten([[1]]), /at least 2 values/);
});

test('adaptive KL controller: one update by hand', () => {
  const c = new AdaptiveKlController({ init: 0.2, target: 6, horizon: 10000 });
  c.update(12, 256); // error 1 clipped to 0.2 → β·(1 + 0.2·0.0256)
  assert.ok(Math.abs(c.value - 0.2 * 1.00512) < 1e-15);
  c.update(6.6, 256); // error 0.1 → ·(1 + 0.1·0.0256)
  assert.ok(Math.abs(c.value - 0.2 * 1.00512 * 1.00256) < 1e-15);
  const before = c.value;
  c.update(6, 1000); // on target: unchanged
  assert.equal(c.value, before);
  c.update(0, 256); // error −1 clipped to −0.2
  assert.ok(Math.abs(c.value - before * (1 - 0.2 * 0.0256)) < 1e-15);
});

test('adaptive KL controller drives KL to the target; fixed controller never moves', () => {
  // A policy whose KL falls as β rises: KL = 1.2/β. Equilibrium at target 6 is β = 0.2.
  for (const init of [0.02, 2]) {
    const c = new AdaptiveKlController({ init, target: 6, horizon: 2000 });
    for (let step = 0; step < 400; step++) c.update(1.2 / c.value, 256);
    assert.ok(Math.abs(1.2 / c.value - 6) < 0.3, `init ${init}: KL ${1.2 / c.value}`);
  }
  const f = new FixedKlController(0.1);
  f.update();
  assert.equal(f.value, 0.1);
  const c = new AdaptiveKlController({ init: 0.3, target: 1, horizon: 100 });
  c.update(5, 10);
  const s = c.state();
  const d = new AdaptiveKlController({ init: 1, target: 1, horizon: 100 });
  d.restore(s);
  assert.equal(d.value, c.value);
  assert.throws(() => new AdaptiveKlController({ init: 0.1, target: 0, horizon: 1 }), /target must be > 0/);
});

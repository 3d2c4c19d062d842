/**
 * PPO bookkeeping on plain numbers (no tensors): per-token KL estimates, per-token rewards,
 * generalized advantage estimation (GAE), returns, advantage whitening, and the fixed and
 * adaptive KL controllers. (Scalar reference losses live in reference-losses.ts.)
 *
 * Rewards in RLHF arrive once per response, but the policy acts once per token. Each token t of
 * a response gets reward r_t = -β·KL_t (a penalty for drifting from the frozen reference model,
 * with KL_t estimated from the two models' log-probabilities of the sampled token), and the last
 * token also gets the sequence score (reward model + rule-based reward). GAE then spreads the
 * credit backwards: δ_t = r_t + γ·V(t+1) − V(t) with V after the last token = `lastValue` (0 for
 * a finished response), A_t = δ_t + γλ·A_{t+1}; the value targets (returns) are A_t + V(t).
 */
import { InputError } from '../util/errors.ts';

/** Estimator of KL(π‖π_ref) from the log-probs of a token sampled from π. */
export type KlEstimator = 'k1' | 'k2' | 'k3';

/**
 * Per-token KL estimates. With d = logp − logpRef:
 *   k1 = d (unbiased, can be negative), k2 = d²/2 (biased, low variance, ≥ 0),
 *   k3 = (e^{−d} − 1) + d (unbiased and ≥ 0).
 */
export function klPerToken(logp: ArrayLike<number>, logpRef: ArrayLike<number>, estimator: KlEstimator = 'k1'): number[] {
  sameLength('klPerToken', 'logp', logp, 'logpRef', logpRef);
  const out = new Array<number>(logp.length);
  for (let i = 0; i < logp.length; i++) {
    const d = logp[i]! - logpRef[i]!;
    out[i] = estimator === 'k1' ? d : estimator === 'k2' ? 0.5 * d * d : Math.expm1(-d) + d;
  }
  return out;
}

/** Per-token rewards: −β·KL_t on every token, plus `score` on the last. */
export function tokenRewards(kl: ArrayLike<number>, beta: number, score: number): number[] {
  if (kl.length === 0) throw new InputError('tokenRewards: a response needs at least one token, got 0');
  const r = Array.from(kl, (k) => -beta * k);
  r[r.length - 1]! += score;
  return r;
}

export interface GaeOptions {
  /** Discount γ (RLHF usually 1). */
  gamma: number;
  /** GAE λ: 0 is one-step TD, 1 is Monte-Carlo returns minus the baseline. */
  lambda: number;
  /** Value after the last token: 0 when the response ended, V(s_T) when it was truncated. */
  lastValue?: number;
}

/** Advantages and returns of one sequence. */
export interface GaeResult { advantages: number[]; returns: number[] }

/** GAE over one sequence of per-token rewards and value estimates. */
export function gae(rewards: ArrayLike<number>, values: ArrayLike<number>, opts: GaeOptions): GaeResult {
  sameLength('gae', 'rewards', rewards, 'values', values);
  const { gamma, lambda } = opts;
  if (!(gamma >= 0 && gamma <= 1) || !(lambda >= 0 && lambda <= 1)) throw new InputError(`gae: gamma and lambda must be in [0, 1], got gamma=${gamma}, lambda=${lambda}`);
  const n = rewards.length;
  const adv = new Array<number>(n);
  let next = 0, nextValue = opts.lastValue ?? 0;
  for (let t = n - 1; t >= 0; t--) {
    const delta = rewards[t]! + gamma * nextValue - values[t]!;
    next = delta + gamma * lambda * next;
    adv[t] = next;
    nextValue = values[t]!;
  }
  return { advantages: adv, returns: adv.map((a, t) => a + values[t]!) };
}

/** GAE over a batch of sequences of different lengths. */
export function gaeBatch(rewards: readonly ArrayLike<number>[], values: readonly ArrayLike<number>[], opts: GaeOptions & { lastValues?: readonly number[] }): GaeResult[] {
  if (rewards.length !== values.length) throw new InputError(`gaeBatch: ${rewards.length} reward sequences but ${values.length} value sequences`);
  return rewards.map((r, i) => gae(r, values[i]!, { ...opts, lastValue: opts.lastValues?.[i] ?? opts.lastValue }));
}

/**
 * Whitening: (x − mean) / sqrt(var + eps) over all tokens of the batch, with the unbiased
 * variance (n − 1). With `shiftMean: false` the mean is added back (scale only), as is usual
 * for whitening rewards rather than advantages.
 */
export function whiten(xs: readonly ArrayLike<number>[], opts: { shiftMean?: boolean; eps?: number } = {}): number[][] {
  const shift = opts.shiftMean ?? true, eps = opts.eps ?? 1e-8;
  let n = 0, sum = 0;
  for (const x of xs) for (let i = 0; i < x.length; i++) { sum += x[i]!; n++; }
  if (n < 2) throw new InputError(`whiten: needs at least 2 values, got ${n}`);
  const mean = sum / n;
  let ss = 0;
  for (const x of xs) for (let i = 0; i < x.length; i++) ss += (x[i]! - mean) ** 2;
  const inv = 1 / Math.sqrt(ss / (n - 1) + eps);
  return xs.map((x) => Array.from(x, (v) => (v - mean) * inv + (shift ? 0 : mean)));
}

/** A KL coefficient controller: `value` is the current β; `update` is called once per PPO batch. */
export interface KlController {
  readonly value: number;
  update(observedKl: number, nSteps: number): void;
  state(): { kind: 'fixed' | 'adaptive'; value: number };
}

/** β that never changes. */
export class FixedKlController implements KlController {
  constructor(readonly value: number) {
    if (!(value >= 0)) throw new InputError(`FixedKlController: beta must be >= 0, got ${value}`);
  }
  update(): void { /* fixed */ }
  state() { return { kind: 'fixed' as const, value: this.value }; }
}

/**
 * β adjusted towards a target KL (the proportional controller of Ziegler et al., 2019).
 *
 * After each batch, compare the measured KL with the target: the relative error
 * KL/target − 1 is clipped to ±0.2 (so one wild batch cannot swing β much), scaled by the
 * fraction of the horizon the batch represents (nSteps/horizon, nSteps being the number of
 * samples/episodes in it), and β is multiplied by 1 plus that. Above target, β grows and pulls
 * the policy back to the reference; below, β shrinks and lets it explore. Over one horizon of
 * steps, a persistent error of +20% raises β by about e^0.2.
 */
export class AdaptiveKlController implements KlController {
  private beta: number;
  readonly target: number;
  readonly horizon: number;

  constructor(opts: { init: number; target: number; horizon: number }) {
    if (!(opts.init > 0)) throw new InputError(`AdaptiveKlController: init must be > 0, got ${opts.init}`);
    if (!(opts.target > 0)) throw new InputError(`AdaptiveKlController: target must be > 0, got ${opts.target}`);
    if (!(opts.horizon > 0)) throw new InputError(`AdaptiveKlController: horizon must be > 0, got ${opts.horizon}`);
    this.beta = opts.init; this.target = opts.target; this.horizon = opts.horizon;
  }

  get value(): number { return this.beta; }

  update(observedKl: number, nSteps: number): void {
    if (!Number.isFinite(observedKl)) throw new InputError(`AdaptiveKlController.update: KL must be finite, got ${observedKl}`);
    if (!(nSteps > 0)) throw new InputError(`AdaptiveKlController.update: nSteps must be > 0, got ${nSteps}`);
    const err = Math.min(0.2, Math.max(-0.2, observedKl / this.target - 1));
    this.beta *= 1 + err * (nSteps / this.horizon);
  }

  state() { return { kind: 'adaptive' as const, value: this.beta }; }
  /** Restores β from `state()` (exact resume). */
  restore(s: { value: number }): void { this.beta = s.value; }
}

function sameLength(fn: string, an: string, a: ArrayLike<number>, bn: string, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new InputError(`${fn}: ${an} has ${a.length} entries but ${bn} has ${b.length}`);
}

/**
 * Scalar reference versions of the alignment losses and their gradients, written out by hand
 * on plain numbers so the tensor implementations (PPO, reward model, DPO) can be checked against
 * them on tiny inputs. Each returns the loss of one item and the derivatives with respect to its
 * trainable inputs; a batch loss is the mean over items, so batch gradients are these divided
 * by the batch size.
 */

/** σ(x), computed without overflow for large |x|. */
export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** log(1 + e^x), computed without overflow. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * PPO clipped policy loss for one token: ratio r = exp(logp − oldLogp);
 * L = max(−A·r, −A·clip(r, 1−ε, 1+ε)). Gradient with respect to logp: −A·r where the
 * unclipped term is the larger (ties only happen where both terms are the same function of r,
 * or A = 0), else 0 (the clipped term is constant in logp outside [1−ε, 1+ε]).
 */
export function ppoPolicyLossRef(logp: number, oldLogp: number, advantage: number, clip: number): { loss: number; dLogp: number } {
  const r = Math.exp(logp - oldLogp);
  const unclipped = -advantage * r;
  const clipped = -advantage * Math.min(1 + clip, Math.max(1 - clip, r));
  return unclipped >= clipped ? { loss: unclipped, dLogp: -advantage * r } : { loss: clipped, dLogp: 0 };
}

/**
 * PPO clipped value loss for one token: v_c = oldValue + clip(value − oldValue, −ε, ε);
 * L = ½·max((value − ret)², (v_c − ret)²). Gradient with respect to value: (value − ret) when
 * the unclipped error is the larger, else (v_c − ret) if the clip is inactive, 0 if active.
 */
export function ppoValueLossRef(value: number, oldValue: number, ret: number, clip: number): { loss: number; dValue: number } {
  const delta = value - oldValue;
  const vc = oldValue + Math.min(clip, Math.max(-clip, delta));
  const a = (value - ret) ** 2, b = (vc - ret) ** 2;
  if (a >= b) return { loss: 0.5 * a, dValue: value - ret };
  return { loss: 0.5 * b, dValue: Math.abs(delta) < clip ? vc - ret : 0 };
}

/**
 * Bradley–Terry reward-model loss for one pair: L = −log σ(r_chosen − r_rejected)
 * = softplus(r_rejected − r_chosen); dL/dr_chosen = −σ(r_rejected − r_chosen) = −dL/dr_rejected.
 */
export function bradleyTerryLossRef(rChosen: number, rRejected: number): { loss: number; dChosen: number; dRejected: number } {
  const s = sigmoid(rRejected - rChosen);
  return { loss: softplus(rRejected - rChosen), dChosen: -s, dRejected: s };
}

/**
 * DPO loss for one pair from sequence log-probabilities (sums over response tokens) under the
 * policy and the frozen reference: margin m = (logπ(y_w) − logπ_ref(y_w)) − (logπ(y_l) − logπ_ref(y_l)),
 * L = −log σ(β·m) = softplus(−β·m). Gradients with respect to the policy log-probs:
 * dL/dlogπ(y_w) = −β·σ(−β·m), dL/dlogπ(y_l) = +β·σ(−β·m). Also returns the implicit rewards
 * β·(logπ − logπ_ref) of both responses, which DPO implementations usually log.
 */
export function dpoLossRef(policyChosen: number, policyRejected: number, refChosen: number, refRejected: number, beta: number): {
  loss: number; dPolicyChosen: number; dPolicyRejected: number; rewardChosen: number; rewardRejected: number;
} {
  const m = (policyChosen - refChosen) - (policyRejected - refRejected);
  const s = sigmoid(-beta * m);
  return {
    loss: softplus(-beta * m), dPolicyChosen: -beta * s, dPolicyRejected: beta * s,
    rewardChosen: beta * (policyChosen - refChosen), rewardRejected: beta * (policyRejected - refRejected),
  };
}

/**
 * A synthetic trainer: outcomes drawn from a known scaling law plus noise, for tests and for
 * trying the sweep → fit → verify pipeline without training. Records it produces are marked
 * `synthetic: true` by the runner and are never written to bench results.
 *
 * Loss: L(N, D) = E + A/N^α + B/D^β times (1 + noise·z). Capability: problem j has difficulty
 * d_j (mean 1) and true pass probability exp(−d_j·α_c·C^(−k)); the reported pass rate is the
 * fraction of `samples` Bernoulli draws that pass, so hard problems are sometimes never solved
 * by small models, as in real evaluations. Runs with a learning rate get a penalty quadratic in
 * ln(lr / lrOptimum), with one optimum for every width (what ideal transfer looks like). All randomness is a hash of (seed, run id), so a
 * resumed sweep reproduces the same outcomes.
 */
import { hashAt, Rng } from '../tensor/rng.ts';
import { chinchillaLaw, type ChinchillaLaw } from './powerlaw.ts';
import type { CapabilityLaw } from './capability.ts';
import type { TrainFn } from './run.ts';

/** Parameters of the synthetic world. */
export interface SyntheticOptions {
  law?: ChinchillaLaw;
  capability?: CapabilityLaw;
  /** Relative noise (standard deviation) of the loss. */
  noise?: number;
  problems?: number;
  samples?: number;
  seed?: number;
  /** For runs with an `lr`: loss × (1 + lrCurvature·ln²(lr / lrOptimum)), the same optimum at every width (ideal transfer). */
  lrOptimum?: number;
  lrCurvature?: number;
}

/** Defaults: exponents near Hoffmann et al.'s, scaled so tiny models land in a byte-level loss range. */
export const SYNTHETIC_DEFAULTS: Required<SyntheticOptions> = {
  law: { E: 1.5, A: 20, alpha: 0.34, B: 25, beta: 0.28 },
  capability: { alpha: 1000, k: 0.3 },
  noise: 0.003,
  problems: 40,
  samples: 20,
  seed: 7,
  lrOptimum: 0.01,
  lrCurvature: 0.02,
};

function seedFor(seed: number, id: string): number {
  let h = seed >>> 0;
  for (let i = 0; i < id.length; i++) h = hashAt(h, id.charCodeAt(i));
  return h;
}

/** A TrainFn whose outcomes follow the given laws. */
export function syntheticTrainer(opts: SyntheticOptions = {}): TrainFn {
  const o = { ...SYNTHETIC_DEFAULTS, ...opts };
  const difficulty = (() => {
    const rng = new Rng(o.seed ^ 0x5a5a);
    const d = [...Array(o.problems)].map(() => Math.exp(0.8 * rng.normal()));
    const mean = d.reduce((s, v) => s + v, 0) / d.length;
    return d.map((v) => v / mean);
  })();
  return async (run) => {
    const rng = new Rng(seedFor(o.seed, run.id));
    const N = run.params, D = run.tokens, C = run.flops;
    const lrFactor = run.lr === undefined ? 1 : 1 + o.lrCurvature * Math.log(run.lr / o.lrOptimum) ** 2;
    const loss = chinchillaLaw(o.law, N, D) * lrFactor * (1 + o.noise * rng.normal());
    const y = o.capability.alpha * Math.pow(C, -o.capability.k);
    const perProblemPass = difficulty.map((d) => {
      const p = Math.exp(-d * y);
      let pass = 0;
      for (let s = 0; s < o.samples; s++) if (rng.uniform() < p) pass++;
      return pass / o.samples;
    });
    const passRate = perProblemPass.reduce((s, v) => s + v, 0) / perProblemPass.length;
    return { finalValLoss: loss, passRate, perProblemPass, tokens: D, flops: C, seconds: 0 };
  };
}

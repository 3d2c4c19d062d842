/**
 * Everything `lumen scale fit` computes from a finished sweep: the frontier, L(C) on it,
 * L(N, D) on all runs, N_opt(C), the capability law, bootstrap intervals for each, the target run
 * (re-chosen at the fitted compute-optimal size) and the predictions for it.
 *
 * Bootstrap units: for the loss laws, runs resampled within their compute budget (so every
 * budget stays in every refit; the frontier is recomputed from each resample); for capability,
 * the problems (the dominant noise is which problems happen to be in the set), or the models
 * when there are fewer than 5 problems.
 */
import { bootstrap, quantile, type BootstrapResult, type Interval } from './bootstrap.ts';
import { fitCapability, meanNegLogPass, predictCapability, type CapabilityFit, type CapabilityPoint } from './capability.ts';
import { chinchillaLaw, computeLaw, fitChinchilla, fitComputeLaw, type ChinchillaLaw, type ComputeLaw, type LossFitOptions } from './powerlaw.ts';
import { byBudget, computeFrontier, frontierPoint, loglogFit, usableFrontier, type FrontierPoint } from './frontier.ts';
import { WIDTH_LADDER, shapeConfig, shapeCounts } from './shape.ts';
import type { FitResult } from './fit.ts';
import type { PlannedRun, SweepPlan } from './plan.ts';
import type { RunRecord } from './run.ts';

/** Options of {@link fitStudy}. */
export interface StudyOptions {
  bootstrapSamples?: number; seed?: number; huberDelta?: number; frontier?: 'parabola' | 'min';
  /** 'fitted': move the target to the fitted compute-optimal size; 'planned' (default): keep the planned shape. */
  target?: 'planned' | 'fitted';
}

/** A prediction with its bootstrap interval (null when the fit failed, with the reason). */
export type Predicted = { value: number; ci: Interval | null } | { value: null; reason: string };

/** The whole fit of a study. */
export interface StudyFit {
  frontier: FrontierPoint[];
  /** Which frontier points the L(C) and N_opt fits used, and why others were left out. */
  frontierUsed: number[];
  frontierNote: string | null;
  computeLaw: FitResult<ComputeLaw>;
  computeLawCI: FitResult<BootstrapResult<string>> | null;
  chinchilla: FitResult<ChinchillaLaw>;
  chinchillaCI: FitResult<BootstrapResult<string>> | null;
  nOpt: { g: number; h: number } | null;
  capability: FitResult<CapabilityFit>;
  capabilityCI: FitResult<BootstrapResult<string>> | null;
  /** Records the capability law was fitted on (best run per budget). */
  capabilityRunIds: string[];
  target: PlannedRun;
  targetNote: string;
  /** How the L(C) prediction moves when the lowest budgets are left out (see rangeSensitivity). */
  rangeCheck: RangeCheck;
  predictions: { loss: Predicted; lossNd: Predicted; negLogPass: Predicted; passRate: Predicted };
}

/** One refit of L(C) on the frontier points from `fromBudget` up. */
export interface RangePrediction { fromBudget: number; points: number; prediction: number | null; reason?: string }
/** Predictions of L(C) at the target from ever higher parts of the frontier, and their spread. */
export interface RangeCheck { rows: RangePrediction[]; spreadPct: number | null }

/**
 * A check of the L(C) law itself: refits it after leaving out the lowest 0, 1, 2… frontier points
 * (down to 4 points) and predicts the target each time. If the frontier follows one power law
 * with a floor, the predictions agree; if it bends (small runs in another regime than large ones),
 * they drift with the range, and their spread, (max − min) / median, is a lower bound on how far
 * the prediction can be trusted — the bootstrap interval, which resamples runs, cannot show that.
 */
export function rangeSensitivity(points: readonly { budget: number; C: number; L: number }[], targetC: number, opts: LossFitOptions = {}): RangeCheck {
  const sorted = [...points].sort((a, b) => a.C - b.C);
  const rows: RangePrediction[] = [];
  for (let k = 0; sorted.length - k >= 4; k++) {
    const pts = sorted.slice(k);
    const f = fitComputeLaw(pts.map((p) => ({ C: p.C, L: p.L })), opts);
    const v = f.ok ? computeLaw(f.params, targetC) : NaN;
    rows.push(f.ok && Number.isFinite(v) ? { fromBudget: pts[0]!.budget, points: pts.length, prediction: v }
      : { fromBudget: pts[0]!.budget, points: pts.length, prediction: null, reason: f.ok ? 'prediction is not finite' : f.reason });
  }
  const vals = rows.flatMap((r) => (r.prediction === null ? [] : [r.prediction])).sort((a, b) => a - b);
  return { rows, spreadPct: vals.length >= 2 ? (100 * (vals[vals.length - 1]! - vals[0]!)) / quantile(vals, 0.5) : null };
}

/** The best run of each budget (used for capability, where the frontier point must be a real model). */
export function bestPerBudget(records: RunRecord[]): RunRecord[] {
  return byBudget(records).map((g) => g.reduce((a, b) => (b.finalValLoss < a.finalValLoss ? b : a)));
}

/** Capability points from records: per-problem pass rates, or the overall pass rate as a single problem. */
export function capabilityPoints(records: RunRecord[]): CapabilityPoint[] {
  const perProblem = records.every((r) => Array.isArray(r.perProblemPass) && r.perProblemPass.length > 0);
  return records.map((r) => ({ C: r.C, perProblemPass: perProblem ? r.perProblemPass! : [r.passRate] }));
}

/** Re-chooses the target shape at the fitted compute-optimal size (ladder width whose N is closest in log), keeping the target's compute. */
export function chooseTarget(plan: SweepPlan, nOpt: { g: number; h: number } | null): { target: PlannedRun; note: string } {
  if (!nOpt) return { target: plan.target, note: 'N_opt(C) could not be fitted; the target keeps the planned shape' };
  const want = nOpt.g * Math.pow(plan.targetFlops, nOpt.h);
  let best = plan.target, bestErr = Infinity;
  for (const w of WIDTH_LADDER) {
    const config = shapeConfig(plan.base, w);
    const c = shapeCounts(config);
    const err = Math.abs(Math.log(c.params / want));
    if (err < bestErr) {
      bestErr = err;
      const tokens = Math.max(1, Math.round(plan.targetFlops / c.flopsPerToken));
      best = { id: 'target', budget: plan.targetFlops, width: w, depth: config.layers, heads: config.heads, tokens, flops: tokens * c.flopsPerToken, flopsPerToken: c.flopsPerToken, params: c.params, paramsTotal: c.paramsTotal, config };
    }
  }
  const note = best.width === plan.target.width
    ? `fitted N_opt(C) = ${want.toExponential(2)} at the target compute; the planned width ${best.width} is the closest ladder size`
    : `fitted N_opt(C) = ${want.toExponential(2)} at the target compute; target moved from the planned width ${plan.target.width} to width ${best.width} (N = ${best.params})`;
  return { target: best, note };
}

function predicted(fit: FitResult<unknown>, value: () => number, ci: FitResult<BootstrapResult<string>> | null, key: string): Predicted {
  if (!fit.ok) return { value: null, reason: fit.reason };
  const v = value();
  if (!Number.isFinite(v)) return { value: null, reason: 'prediction is not finite' };
  return { value: v, ci: ci && ci.ok ? ci.params.intervals[key] ?? null : null };
}

/** Fits every law of a study and predicts the target. */
export function fitStudy(plan: SweepPlan, records: RunRecord[], opts: StudyOptions = {}): StudyFit {
  const samples = opts.bootstrapSamples ?? 400, seed = opts.seed ?? 1234;
  const method = opts.frontier ?? 'parabola';
  const lossOpts = opts.huberDelta !== undefined ? { huberDelta: opts.huberDelta } : {};
  const frontier = computeFrontier(records, method);
  const usable = usableFrontier(frontier);
  const nOpt = loglogFit(usable.points.map((p) => p.C), usable.points.map((p) => p.N));
  const { target, note } = (opts.target ?? 'planned') === 'fitted'
    ? chooseTarget(plan, nOpt)
    : { target: plan.target, note: `target kept at the planned shape (width ${plan.target.width}); fitted N_opt(C) = ${nOpt ? (nOpt.g * Math.pow(plan.targetFlops, nOpt.h)).toExponential(2) : 'n/a'}` };
  const budgets = byBudget(records);
  const strata = budgets.flatMap((g, k) => g.map(() => k));
  const ordered = budgets.flat();

  // L(C) on the frontier.
  const computeFit = fitComputeLaw(usable.points.map((p) => ({ C: p.C, L: p.L })), lossOpts);
  const rangeCheck = rangeSensitivity(usable.points, target.flops, lossOpts);
  const usedBudgets = new Set(usable.points.map((p) => p.budget));
  const computeCI = computeFit.ok && samples > 0 ? bootstrap(ordered.filter((r) => usedBudgets.has(r.budget)), (s) => fitComputeLaw(byBudget(s).map((g) => frontierPoint(g, method)).map((p) => ({ C: p.C, L: p.L })), lossOpts),
    (p) => ({ a: p.a, b: p.b, c: p.c, target: computeLaw(p, target.flops) }), { samples, seed, strata: strata.filter((_, i) => usedBudgets.has(ordered[i]!.budget)) }) : null;

  // L(N, D) on every run.
  const ndPoints = (rs: RunRecord[]) => rs.map((r) => ({ N: r.N, D: r.D, L: r.finalValLoss }));
  const chin = fitChinchilla(ndPoints(records), lossOpts);
  const chinCI = chin.ok && samples > 0 ? bootstrap(ordered, (s) => fitChinchilla(ndPoints(s), { ...lossOpts, starts: 3 }),
    (p) => ({ E: p.E, A: p.A, alpha: p.alpha, B: p.B, beta: p.beta, target: chinchillaLaw(p, target.params, target.tokens) }), { samples: Math.min(samples, 200), seed: seed + 1, strata }) : null;

  // Capability on the best run of each budget.
  const capRuns = bestPerBudget(records);
  const capPts = capabilityPoints(capRuns);
  const cap = fitCapability(capPts);
  let capCI: FitResult<BootstrapResult<string>> | null = null;
  if (cap.ok && samples > 0) {
    const m = capPts[0]!.perProblemPass.length;
    const stat = (p: CapabilityFit) => { const pr = predictCapability(p, target.flops); return { alpha: p.alpha, k: p.k, negLogPass: pr.negLogPass, passRate: pr.passRate }; };
    capCI = m >= 5
      ? bootstrap([...Array(m).keys()], (js) => fitCapability(capPts.map((p) => ({ C: p.C, perProblemPass: js.map((j) => p.perProblemPass[j]!) }))), stat, { samples, seed: seed + 2 })
      : bootstrap(capPts, (s) => fitCapability(s), stat, { samples, seed: seed + 2 });
  }
  const predictions = {
    loss: predicted(computeFit, () => computeLaw((computeFit as { params: ComputeLaw }).params, target.flops), computeCI, 'target'),
    lossNd: predicted(chin, () => chinchillaLaw((chin as { params: ChinchillaLaw }).params, target.params, target.tokens), chinCI, 'target'),
    negLogPass: predicted(cap, () => predictCapability((cap as { params: CapabilityFit }).params, target.flops).negLogPass, capCI, 'negLogPass'),
    passRate: predicted(cap, () => predictCapability((cap as { params: CapabilityFit }).params, target.flops).passRate, capCI, 'passRate'),
  };
  return { frontier, frontierUsed: usable.points.map((p) => frontier.indexOf(p)), frontierNote: usable.note, computeLaw: computeFit, computeLawCI: computeCI, chinchilla: chin, chinchillaCI: chinCI, nOpt, capability: cap, capabilityCI: capCI, capabilityRunIds: capRuns.map((r) => r.id), target, targetNote: note, rangeCheck, predictions };
}

/** The target's measured capability metric on the problems the fit kept (pass rates below `floor` raised to it, since an unsolved problem has log 0 = −∞). */
export function actualCapability(perProblemPass: number[] | undefined, passRate: number, problems: number[], floor: number): { negLogPass: number; passRate: number; floored: number } {
  const pp = perProblemPass && perProblemPass.length > 0 ? perProblemPass : [passRate];
  const probs = perProblemPass && perProblemPass.length > 0 ? problems : [0];
  const floored = probs.filter((j) => pp[j]! < floor).length;
  const y = meanNegLogPass(pp, probs, floor);
  return { negLogPass: y, passRate: Math.exp(-y), floored };
}

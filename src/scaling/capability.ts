/**
 * Capability scaling: −E[log pass_rate(C)] = α·C^(−k), as in the GPT-4 technical report.
 *
 * For each model m and problem j we have a pass rate p_jm (fraction of samples that pass the
 * automatic check). Only problems every model solves at least once (p_jm > 0 for all m) are kept,
 * since log 0 is undefined and a problem no small model ever solves carries no signal about the
 * trend. The per-model metric is y_m = −mean_j log p_jm (the negative mean log pass rate); the
 * power law is fitted to (C_m, y_m) by LM on the Huber loss of log residuals (for this two-
 * parameter model that is a robust straight-line fit in log–log space). The prediction for a
 * target compute is y(C) and the pass rate exp(−y(C)) — the geometric mean pass rate over the
 * kept problems, which is what the metric measures.
 */
import { levenbergMarquardt } from './optimize.ts';
import { DEFAULT_HUBER_DELTA, distinct, fail, geomean, positiveFinite, rms, type FitResult } from './fit.ts';

/** −E[log pass_rate] = alpha·C^(−k). */
export interface CapabilityLaw { alpha: number; k: number; }

/** Parameters plus which problems the fit used (indices into perProblemPass). */
export interface CapabilityFit extends CapabilityLaw { problems: number[]; }

/** One model's evaluation: its compute and per-problem pass rates (same problem order for every model). */
export interface CapabilityPoint { C: number; perProblemPass: number[]; }

/** Evaluates −E[log pass_rate] at compute C. */
export function capabilityLaw(p: CapabilityLaw, C: number): number {
  return p.alpha * Math.pow(C, -p.k);
}

/** Problems (indices) that every model passes at least once. */
export function solvedByAll(points: CapabilityPoint[]): number[] {
  const m = points[0]?.perProblemPass.length ?? 0;
  return [...Array(m).keys()].filter((j) => points.every((p) => p.perProblemPass[j]! > 0));
}

/** −mean log pass rate over `problems`; pass rates below `floor` are raised to it (so an unsolved problem costs log(1/floor), not infinity). */
export function meanNegLogPass(perProblemPass: number[], problems: number[], floor = 0): number {
  return -problems.reduce((s, j) => s + Math.log(Math.max(perProblemPass[j]!, floor)), 0) / problems.length;
}

/** Fits the capability law. Needs ≥ 3 models with ≥ 3 distinct compute values and ≥ 1 problem they all solve. */
export function fitCapability(points: CapabilityPoint[], opts: { huberDelta?: number } = {}): FitResult<CapabilityFit> {
  if (points.length < 3) return fail(`too few models for −E[log pass_rate] = α·C^(−k): need at least 3, got ${points.length}`);
  const C = points.map((p) => p.C);
  const badC = positiveFinite('C', C);
  if (badC) return fail(badC);
  const m = points[0]!.perProblemPass.length;
  if (m === 0) return fail('no problems: perProblemPass is empty');
  for (const [i, p] of points.entries()) {
    if (p.perProblemPass.length !== m) return fail(`model ${i} has ${p.perProblemPass.length} per-problem pass rates, model 0 has ${m}`);
    for (const [j, v] of p.perProblemPass.entries()) if (!(v >= 0 && v <= 1)) return fail(`model ${i} problem ${j}: pass rate must be in [0, 1], got ${v}`);
  }
  const problems = solvedByAll(points);
  if (problems.length === 0) return fail(`no problem is solved at least once by every model (${m} problems, ${points.length} models)`);
  const notes: string[] = [`${problems.length} of ${m} problems are solved at least once by every model`];
  const y = points.map((p) => meanNegLogPass(p.perProblemPass, problems));
  const keep = y.map((v, i) => i).filter((i) => y[i]! > 0);
  if (keep.length < y.length) notes.push(`${y.length - keep.length} model(s) pass every kept problem always (−E[log p] = 0) and are left out`);
  if (keep.length < 3) return fail(`too few models with −E[log pass_rate] > 0: need 3, got ${keep.length}`);
  const Ck = keep.map((i) => C[i]!), yk = keep.map((i) => y[i]!);
  if (distinct(Ck) < 2) return fail('degenerate data: every model has the same compute');
  const C0 = geomean(Ck);
  const lx = Ck.map((c) => Math.log(c / C0)), ly = yk.map(Math.log);
  // Start from ordinary least squares in log–log space.
  const mx = lx.reduce((s, v) => s + v, 0) / lx.length, my = ly.reduce((s, v) => s + v, 0) / ly.length;
  const sxy = lx.reduce((s, v, i) => s + (v - mx) * (ly[i]! - my), 0), sxx = lx.reduce((s, v) => s + (v - mx) ** 2, 0);
  const slope = sxy / sxx;
  const resid = (t: number[]) => lx.map((l, i) => t[0]! - t[1]! * l - ly[i]!);
  const lm = levenbergMarquardt(resid, [my - slope * mx, -slope], { huberDelta: opts.huberDelta ?? DEFAULT_HUBER_DELTA * 5 });
  if (!lm.converged) return fail(`capability fit did not converge: ${lm.reason}`);
  const [la, k] = lm.theta as [number, number];
  if (!(k > 0)) return fail(`capability does not improve with compute: fitted k = ${k.toFixed(4)} (must be > 0)`);
  const alpha = Math.exp(la + k * Math.log(C0));
  if (!Number.isFinite(alpha)) return fail('capability fit produced a non-finite α');
  return { ok: true, params: { alpha, k, problems }, n: keep.length, rmsLogResidual: rms(lm.residuals), iterations: lm.iterations, notes };
}

/** Predicted −E[log pass_rate] and geometric-mean pass rate at compute C. */
export function predictCapability(p: CapabilityLaw, C: number): { negLogPass: number; passRate: number } {
  const y = capabilityLaw(p, C);
  return { negLogPass: y, passRate: Math.exp(-y) };
}

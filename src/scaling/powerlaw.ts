/**
 * Loss scaling laws.
 *
 * 1. L(C) = a·C^b + c with b < 0 and c ≥ 0 (the irreducible loss), fitted on the compute-optimal
 *    frontier. Method — variable projection, then robust refinement:
 *      - compute is normalised by its geometric mean C0 so the parameters are O(1);
 *      - for each exponent b on a grid over [−3, −0.002], the model is linear in (a, c), so the
 *        best non-negative (a, c) come from a weighted least-squares solve on relative errors,
 *        reweighted Huber-style (IRLS) so an outlier cannot choose the start; the grid point with
 *        the lowest Huber cost is a global start that needs no guess;
 *      - Levenberg–Marquardt then minimises the Huber loss of the log residuals
 *        log(a·C^b + c) − log L in the parameters (ln a, b, s) with c = min(L)·sigmoid(s).
 *    Log residuals because the goal is relative accuracy and the noise of a loss is roughly
 *    proportional to it; the grid start avoids the local minima a plain nonlinear fit falls into
 *    when c and b trade off; the sigmoid keeps 0 ≤ c < min(L) (the curve never dips below c).
 * 2. L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022). Same recipe: a grid over (α, β) with
 *    (E, A, B) solved linearly and non-negatively at each node, the best few nodes as starts for
 *    LM on the Huber loss of the log residuals in (s_E, ln A, ln B, α, β).
 */
import { levenbergMarquardt, robustNnls, sigmoid, logit } from './optimize.ts';
import { DEFAULT_HUBER_DELTA, distinct, fail, geomean, positiveFinite, rms, type FitResult } from './fit.ts';

/** L(C) = a·C^b + c, with C in FLOPs. */
export interface ComputeLaw { a: number; b: number; c: number; }

/** L(N, D) = E + A/N^α + B/D^β, N parameters, D tokens. */
export interface ChinchillaLaw { E: number; A: number; alpha: number; B: number; beta: number; }

/** Evaluates L(C). */
export function computeLaw(p: ComputeLaw, C: number): number {
  return p.a * Math.pow(C, p.b) + p.c;
}

/** Evaluates L(N, D). */
export function chinchillaLaw(p: ChinchillaLaw, N: number, D: number): number {
  return p.E + p.A * Math.pow(N, -p.alpha) + p.B * Math.pow(D, -p.beta);
}

/** Options shared by the loss fits. */
export interface LossFitOptions { huberDelta?: number; }

/** Fits L(C) = a·C^b + c to (C, L) points. Needs ≥ 4 points with ≥ 3 distinct compute values. */
export function fitComputeLaw(points: { C: number; L: number }[], opts: LossFitOptions = {}): FitResult<ComputeLaw> {
  const n = points.length;
  if (n < 4) return fail(`too few points for L(C) = a·C^b + c: need at least 4 (3 parameters + 1), got ${n}`);
  const C = points.map((p) => p.C), L = points.map((p) => p.L);
  const bad = positiveFinite('C', C) ?? positiveFinite('L', L);
  if (bad) return fail(bad);
  if (distinct(C) < 3) return fail(`degenerate data: compute takes only ${distinct(C)} distinct value(s); need at least 3`);
  const C0 = geomean(C);
  const x = C.map((c) => c / C0);
  const lx = x.map(Math.log);
  const logL = L.map(Math.log);
  const Lmin = Math.min(...L);
  const delta = opts.huberDelta ?? DEFAULT_HUBER_DELTA;

  // 1. Grid over b; (a, c) by robust non-negative least squares; the start with the lowest Huber cost wins.
  let start: { a: number; b: number; c: number; cost: number } | null = null;
  for (let i = 0; i < 200; i++) {
    const b = -Math.exp(Math.log(0.002) + (i / 199) * (Math.log(3) - Math.log(0.002)));
    const sol = robustNnls(lx.map((l) => [Math.exp(b * l), 1]), L, delta);
    if (!sol) continue;
    const [a, c] = sol.beta as [number, number];
    if (!(a > 0)) continue;
    if (Number.isFinite(sol.cost) && (!start || sol.cost < start.cost)) start = { a, b, c: Math.min(c, Lmin * (1 - 1e-6)), cost: sol.cost };
  }
  if (!start) return fail('loss does not decrease with compute: no decreasing power law fits the points');

  // 2. Robust LM refinement in (ln a, b, s), c = Lmin·sigmoid(s).
  const resid = (t: number[]) => lx.map((l, k) => Math.log(Math.exp(t[0]! + t[1]! * l) + Lmin * sigmoid(t[2]!)) - logL[k]!);
  const lm = levenbergMarquardt(resid, [Math.log(start.a), start.b, logit(start.c / Lmin)], { huberDelta: delta });
  if (!lm.converged) return fail(`L(C) fit did not converge: ${lm.reason}`);
  const [la, b, s] = lm.theta as [number, number, number];
  const c = Lmin * sigmoid(s);
  if (!(b < 0)) return fail(`loss does not decrease with compute: fitted exponent b = ${b.toFixed(4)} (must be < 0)`);
  if (b < -5) return fail(`implausible exponent b = ${b.toFixed(3)}: the points do not follow a power law`);
  // Back to raw compute: a·(C/C0)^b = (a·C0^−b)·C^b.
  const a = Math.exp(la - b * Math.log(C0));
  if (![a, b, c].every(Number.isFinite)) return fail('L(C) fit produced non-finite parameters');
  const notes: string[] = [];
  if (c < 1e-6 * Lmin) notes.push('irreducible loss c is at its lower bound 0 (the data show no floor)');
  if (c > 0.999 * Lmin) notes.push('irreducible loss c is at its upper bound min(L): the curve is nearly flat');
  return { ok: true, params: { a, b, c }, n, rmsLogResidual: rms(lm.residuals), iterations: lm.iterations, notes };
}

/** Pearson correlation. */
function corr(u: number[], v: number[]): number {
  const mu = u.reduce((s, x) => s + x, 0) / u.length, mv = v.reduce((s, x) => s + x, 0) / v.length;
  let suv = 0, suu = 0, svv = 0;
  for (let i = 0; i < u.length; i++) { suv += (u[i]! - mu) * (v[i]! - mv); suu += (u[i]! - mu) ** 2; svv += (v[i]! - mv) ** 2; }
  return suv / Math.sqrt(suu * svv);
}

const EXPONENT_GRID = [0.05, 0.1, 0.15, 0.2, 0.27, 0.35, 0.45, 0.6, 0.8, 1.0, 1.3, 1.7];

/** Fits L(N, D) = E + A/N^α + B/D^β. Needs ≥ 6 points in which N and D vary independently. */
export function fitChinchilla(points: { N: number; D: number; L: number }[], opts: LossFitOptions & { starts?: number } = {}): FitResult<ChinchillaLaw> {
  const n = points.length;
  if (n < 6) return fail(`too few points for L(N, D) = E + A/N^α + B/D^β: need at least 6 (5 parameters + 1), got ${n}`);
  const N = points.map((p) => p.N), D = points.map((p) => p.D), L = points.map((p) => p.L);
  const bad = positiveFinite('N', N) ?? positiveFinite('D', D) ?? positiveFinite('L', L);
  if (bad) return fail(bad);
  if (distinct(N) < 2 || distinct(D) < 2) return fail(`degenerate data: N takes ${distinct(N)} and D ${distinct(D)} distinct values; both must vary`);
  const lnN0 = Math.log(geomean(N)), lnD0 = Math.log(geomean(D));
  const ln = N.map((v) => Math.log(v) - lnN0), ld = D.map((v) => Math.log(v) - lnD0);
  const r = corr(ln, ld);
  if (!(Math.abs(r) < 0.995)) return fail(`degenerate data: log N and log D are collinear (correlation ${r.toFixed(4)}); the sweep must vary model size at fixed compute`);
  const logL = L.map(Math.log);
  const Lmin = Math.min(...L);
  const delta = opts.huberDelta ?? DEFAULT_HUBER_DELTA;

  // 1. Grid over (α, β), (E, A, B) by robust non-negative least squares, in normalised N, D.
  const nodes: { t: number[]; sse: number }[] = [];
  for (const alpha of EXPONENT_GRID) for (const beta of EXPONENT_GRID) {
    const sol = robustNnls(ln.map((a, i) => [1, Math.exp(-alpha * a), Math.exp(-beta * ld[i]!)]), L, delta);
    if (!sol) continue;
    const [E, A, B] = sol.beta as [number, number, number];
    const floor = 1e-4 * Lmin;
    const t = [logit(Math.min(E, 0.999 * Lmin) / Lmin), Math.log(Math.max(A, floor)), Math.log(Math.max(B, floor)), alpha, beta];
    if (Number.isFinite(sol.cost)) nodes.push({ t, sse: sol.cost });
  }
  if (nodes.length === 0) return fail('no grid start gave a finite fit');
  nodes.sort((p, q) => p.sse - q.sse);

  // 2. LM from the best few starts, keep the lowest Huber cost.
  const resid = (t: number[]) => ln.map((a, i) => Math.log(Lmin * sigmoid(t[0]!) + Math.exp(t[1]! - t[3]! * a) + Math.exp(t[2]! - t[4]! * ld[i]!)) - logL[i]!);
  let best: ReturnType<typeof levenbergMarquardt> | null = null;
  let lastReason = '';
  for (const node of nodes.slice(0, opts.starts ?? 6)) {
    const lm = levenbergMarquardt(resid, node.t, { huberDelta: delta, maxIter: 500 });
    if (!lm.converged) { lastReason = lm.reason; continue; }
    if (!best || lm.cost < best.cost) best = lm;
  }
  if (!best) return fail(`L(N, D) fit did not converge from any start: ${lastReason}`);
  const [s, lA, lB, alpha, beta] = best.theta as [number, number, number, number, number];
  if (!(alpha > 0) || !(beta > 0)) return fail(`fitted exponents must be positive (loss falls with N and D), got α = ${alpha.toFixed(4)}, β = ${beta.toFixed(4)}`);
  if (alpha > 5 || beta > 5) return fail(`implausible exponents α = ${alpha.toFixed(3)}, β = ${beta.toFixed(3)}: the points do not follow the law`);
  const E = Lmin * sigmoid(s);
  // Undo the normalisation: A·(N/N0)^−α = (A·N0^α)·N^−α.
  const A = Math.exp(lA + alpha * lnN0), B = Math.exp(lB + beta * lnD0);
  if (![E, A, B].every(Number.isFinite)) return fail('L(N, D) fit produced non-finite parameters');
  const notes: string[] = [];
  if (E < 1e-6 * Lmin) notes.push('irreducible loss E is at its lower bound 0');
  return { ok: true, params: { E, A, alpha, B, beta }, n, rmsLogResidual: rms(best.residuals), iterations: best.iterations, notes };
}

/**
 * Compute-optimal allocation implied by L(N, D) under C = k·N·D (k FLOPs per parameter per token,
 * 6 for the usual estimate): N_opt = G·(C/k)^(β/(α+β)), D_opt = (C/k)/N_opt with
 * G = (αA / βB)^(1/(α+β)) (Hoffmann et al., eq. 4).
 */
export function chinchillaOptimum(p: ChinchillaLaw, C: number, k = 6): { N: number; D: number; L: number } {
  const G = Math.pow((p.alpha * p.A) / (p.beta * p.B), 1 / (p.alpha + p.beta));
  const N = G * Math.pow(C / k, p.beta / (p.alpha + p.beta));
  const D = C / k / N;
  return { N, D, L: chinchillaLaw(p, N, D) };
}

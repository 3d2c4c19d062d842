/**
 * The compute-optimal frontier: for each compute budget, the lowest loss reachable and the model
 * size that reaches it.
 *
 * Per budget (an iso-FLOP profile of several model sizes) the frontier point is, when at least
 * three sizes were run, the vertex of a parabola fitted to loss against ln N — provided the
 * parabola opens upwards and its vertex lies inside the sizes that were run (Hoffmann et al.'s
 * approach 2); otherwise it is simply the best run. The parabola uses every run of the budget,
 * so it is less noisy than the single best run and not limited to the discrete sizes of the
 * ladder. Each point records which method made it.
 */
import { solve } from './optimize.ts';
import type { RunRecord } from './run.ts';

/** One frontier point. C is the mean compute actually used by the budget's runs. */
export interface FrontierPoint {
  budget: number; C: number; L: number; N: number; D: number; method: 'parabola' | 'min'; runs: number; bestRunId: string;
  /** False when the best run is the smallest or largest size of its budget: the true optimum may lie outside the sizes run, so L is an upper bound. */
  bracketed: boolean;
}

/** Groups records by nominal budget (relative tolerance 1e-6), sorted by budget. */
export function byBudget(records: RunRecord[]): RunRecord[][] {
  const groups: RunRecord[][] = [];
  for (const r of [...records].sort((a, b) => a.budget - b.budget)) {
    const g = groups[groups.length - 1];
    if (g && Math.abs(g[0]!.budget - r.budget) <= 1e-6 * r.budget) g.push(r);
    else groups.push([r]);
  }
  return groups;
}

/** The frontier point of one budget's runs. */
export function frontierPoint(runs: RunRecord[], method: 'parabola' | 'min' = 'parabola'): FrontierPoint {
  const best = runs.reduce((a, b) => (b.finalValLoss < a.finalValLoss ? b : a));
  const C = runs.reduce((s, r) => s + r.C, 0) / runs.length;
  const Ns = runs.map((r) => r.N);
  const bracketed = best.N > Math.min(...Ns) && best.N < Math.max(...Ns);
  const fallback: FrontierPoint = { budget: best.budget, C, L: best.finalValLoss, N: best.N, D: best.D, method: 'min', runs: runs.length, bestRunId: best.id, bracketed };
  const xs = runs.map((r) => Math.log(r.N));
  const distinctN = new Set(xs.map((x) => x.toFixed(9))).size;
  if (method === 'min' || distinctN < 3) return fallback;
  // Least squares L = p0 + p1·x + p2·x², x = ln N − mean (conditioning).
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
  const u = xs.map((x) => x - mx);
  const X = u.map((x) => [1, x, x * x]);
  const A = [0, 1, 2].map((i) => [0, 1, 2].map((j) => X.reduce((s, row) => s + row[i]! * row[j]!, 0)));
  const b = [0, 1, 2].map((i) => X.reduce((s, row, k) => s + row[i]! * runs[k]!.finalValLoss, 0));
  const p = solve(A, b);
  if (!p || !(p[2]! > 0)) return fallback;
  const uStar = -p[1]! / (2 * p[2]!);
  if (uStar < Math.min(...u) || uStar > Math.max(...u)) return fallback;
  const L = p[0]! + p[1]! * uStar + p[2]! * uStar * uStar;
  if (!(L > 0) || L > best.finalValLoss) return fallback;
  // D at the vertex: ln D is close to linear in ln N at fixed compute; interpolate it.
  const ld = runs.map((r) => Math.log(r.D));
  const mld = ld.reduce((s, v) => s + v, 0) / ld.length;
  const slope = u.reduce((s, x, k) => s + x * (ld[k]! - mld), 0) / u.reduce((s, x) => s + x * x, 0);
  return { budget: best.budget, C, L, N: Math.exp(mx + uStar), D: Math.exp(mld + slope * uStar), method: 'parabola', runs: runs.length, bestRunId: best.id, bracketed };
}

/**
 * The points the L(C) fit should use: the bracketed ones when at least `minPoints` are, else all
 * (an unbracketed point overstates the frontier loss). Returns the points and a note on what was left out.
 */
export function usableFrontier(points: FrontierPoint[], minPoints = 4): { points: FrontierPoint[]; note: string | null } {
  const inside = points.filter((p) => p.bracketed);
  const outside = points.filter((p) => !p.bracketed);
  if (outside.length === 0) return { points, note: null };
  const list = outside.map((p) => p.budget.toExponential(2)).join(', ');
  if (inside.length >= minPoints) return { points: inside, note: `left out of the L(C) fit: budget(s) ${list}, whose best run is the smallest or largest size tried (optimum not bracketed)` };
  return { points, note: `budget(s) ${list} do not bracket their optimum (best run at the edge of the sizes tried) but are kept: too few bracketed budgets (${inside.length}) to fit without them` };
}

/** The frontier over all budgets. */
export function computeFrontier(records: RunRecord[], method: 'parabola' | 'min' = 'parabola'): FrontierPoint[] {
  return byBudget(records).map((g) => frontierPoint(g, method));
}

/** Least-squares power law y = g·x^h in log–log space (for N_opt(C)); null with fewer than 2 distinct x. */
export function loglogFit(xs: number[], ys: number[]): { g: number; h: number } | null {
  if (xs.length < 2 || xs.length !== ys.length || ![...xs, ...ys].every((v) => v > 0 && Number.isFinite(v))) return null;
  const lx = xs.map(Math.log), ly = ys.map(Math.log);
  const mx = lx.reduce((s, v) => s + v, 0) / lx.length, my = ly.reduce((s, v) => s + v, 0) / ly.length;
  const sxx = lx.reduce((s, v) => s + (v - mx) ** 2, 0);
  if (!(sxx > 1e-12)) return null;
  const h = lx.reduce((s, v, i) => s + (v - mx) * (ly[i]! - my), 0) / sxx;
  return { g: Math.exp(my - h * mx), h };
}

/**
 * Small dense numerical tools for the scaling-law fits: a linear solver, non-negative least
 * squares for 2–3 unknowns, and a robust Levenberg–Marquardt minimiser of the Huber loss.
 *
 * Why LM with iteratively reweighted residuals (IRLS): the fits have 2–5 parameters and a few
 * dozen points, so a dense Gauss–Newton step is cheap and converges in a handful of iterations;
 * LM's damping makes it safe far from the optimum, and IRLS weights w = min(1, δ/|r|) turn the
 * squared loss into Huber's, which keeps one bad run from dragging the law (Hoffmann et al.
 * 2022 fit Chinchilla's law with a Huber loss on log residuals for the same reason).
 */

/** Solves the dense system A x = b (A is n×n, row-major) by Gaussian elimination with partial pivoting; null when singular. */
export function solve(A: number[][], b: number[]): number[] | null {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(M[r]![col]!) > Math.abs(M[piv]![col]!)) piv = r;
    const scale = Math.max(...M.map((r) => Math.abs(r[col]!)), 1e-300);
    if (Math.abs(M[piv]![col]!) <= 1e-13 * scale) return null;
    [M[col], M[piv]] = [M[piv]!, M[col]!];
    for (let r = col + 1; r < n; r++) {
      const f = M[r]![col]! / M[col]![col]!;
      if (f === 0) continue;
      for (let c = col; c <= n; c++) M[r]![c]! -= f * M[col]![c]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!;
    for (let c = r + 1; c < n; c++) s -= M[r]![c]! * x[c]!;
    x[r] = s / M[r]![r]!;
  }
  return x.every(Number.isFinite) ? x : null;
}

/**
 * Weighted non-negative least squares for a handful of columns, by enumerating active sets:
 * minimise Σ w_i (Σ_j X_ij β_j − y_i)² subject to β ≥ 0. Exact for the 2–3 columns used here.
 * Returns null when every subset is singular.
 */
export function nnls(X: number[][], y: number[], w: number[]): { beta: number[]; sse: number } | null {
  const p = X[0]!.length;
  let best: { beta: number[]; sse: number } | null = null;
  for (let mask = 1; mask < 1 << p; mask++) {
    const cols = [...Array(p).keys()].filter((j) => mask & (1 << j));
    const A = cols.map((a) => cols.map((b) => X.reduce((s, row, i) => s + w[i]! * row[a]! * row[b]!, 0)));
    const rhs = cols.map((a) => X.reduce((s, row, i) => s + w[i]! * row[a]! * y[i]!, 0));
    const sol = solve(A, rhs);
    if (!sol || sol.some((v) => v < 0)) continue;
    const beta = new Array<number>(p).fill(0);
    cols.forEach((c, k) => { beta[c] = sol[k]!; });
    const sse = X.reduce((s, row, i) => { const r = row.reduce((t, x, j) => t + x * beta[j]!, 0) - y[i]!; return s + w[i]! * r * r; }, 0);
    if (!best || sse < best.sse) best = { beta, sse };
  }
  return best;
}

/**
 * Robust non-negative linear fit for the grid starts of the nonlinear fits: NNLS with weights
 * w_i·min(1, δ/|r_i/y_i|), reweighted a few times (IRLS on relative residuals), so an outlier
 * cannot pick the start. Returns the coefficients and the Huber cost of the log residuals.
 */
export function robustNnls(X: number[][], y: number[], delta: number, iters = 8): { beta: number[]; cost: number } | null {
  const w0 = y.map((v) => 1 / (v * v));
  let w = [...w0];
  let sol = nnls(X, y, w);
  for (let it = 0; it < iters && sol; it++) {
    const rel = X.map((row, i) => row.reduce((s, x, j) => s + x * sol!.beta[j]!, 0) / y[i]! - 1);
    w = w0.map((v, i) => v * (Math.abs(rel[i]!) <= delta ? 1 : delta / Math.abs(rel[i]!)));
    const next = nnls(X, y, w);
    if (!next) break;
    sol = next;
  }
  if (!sol) return null;
  let cost = 0;
  for (let i = 0; i < y.length; i++) {
    const m = X[i]!.reduce((s, x, j) => s + x * sol.beta[j]!, 0);
    if (!(m > 0)) return null;
    cost += huber(Math.log(m / y[i]!), delta);
  }
  return { beta: sol.beta, cost };
}

/** Huber loss ρ_δ(r): quadratic within ±δ, linear outside (scaled so it is continuous: r²/2 or δ(|r| − δ/2)). */
export function huber(r: number, delta: number): number {
  const a = Math.abs(r);
  return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

/** Options of {@link levenbergMarquardt}. */
export interface LMOptions {
  /** Huber threshold on residuals; Infinity gives ordinary least squares. */
  huberDelta?: number;
  maxIter?: number;
  /** Converged when the Huber gradient's max-norm is below gradTol × (1 + cost). */
  gradTol?: number;
  /** Converged when a step changes every parameter by less than stepTol × (|θ| + stepTol). */
  stepTol?: number;
}

/** Outcome of one LM minimisation. `converged` false means it stopped at maxIter or could not make progress from a non-stationary point. */
export interface LMResult { theta: number[]; cost: number; residuals: number[]; iterations: number; converged: boolean; reason: string; }

function costOf(r: number[], delta: number): number {
  let s = 0;
  for (const x of r) s += delta === Infinity ? 0.5 * x * x : huber(x, delta);
  return s;
}

/**
 * Minimises Σ ρ_δ(r_i(θ)) by Levenberg–Marquardt on IRLS-weighted residuals, with a central-
 * difference Jacobian. `residuals(θ)` may return non-finite values for invalid θ; such steps are
 * rejected. Returns converged=false (with the reason) rather than a silently bad θ.
 */
export function levenbergMarquardt(residuals: (theta: number[]) => number[], theta0: number[], opts: LMOptions = {}): LMResult {
  const delta = opts.huberDelta ?? Infinity;
  const maxIter = opts.maxIter ?? 300;
  const gradTol = opts.gradTol ?? 1e-10;
  const stepTol = opts.stepTol ?? 1e-12;
  const p = theta0.length;
  let theta = [...theta0];
  let r = residuals(theta);
  if (!r.every(Number.isFinite)) return { theta, cost: NaN, residuals: r, iterations: 0, converged: false, reason: 'residuals are not finite at the starting point' };
  let cost = costOf(r, delta);
  let lambda = 1e-3;
  for (let it = 1; it <= maxIter; it++) {
    // Jacobian by central differences.
    const J: number[][] = r.map(() => new Array<number>(p).fill(0));
    for (let j = 0; j < p; j++) {
      const h = 1e-6 * Math.max(1, Math.abs(theta[j]!));
      const tp = [...theta]; tp[j]! += h;
      const tm = [...theta]; tm[j]! -= h;
      const rp = residuals(tp), rm = residuals(tm);
      for (let i = 0; i < r.length; i++) J[i]![j] = (rp[i]! - rm[i]!) / (2 * h);
    }
    if (!J.every((row) => row.every(Number.isFinite))) return { theta, cost, residuals: r, iterations: it, converged: false, reason: 'the Jacobian is not finite' };
    const w = r.map((x) => (Math.abs(x) <= delta ? 1 : delta / Math.abs(x)));
    const A: number[][] = [...Array(p)].map((_, a) => [...Array(p)].map((_, b) => J.reduce((s, row, i) => s + w[i]! * row[a]! * row[b]!, 0)));
    const g: number[] = [...Array(p)].map((_, a) => J.reduce((s, row, i) => s + w[i]! * row[a]! * r[i]!, 0));
    const gmax = Math.max(...g.map(Math.abs));
    if (gmax <= gradTol * (1 + cost)) return { theta, cost, residuals: r, iterations: it, converged: true, reason: 'gradient below tolerance' };
    let accepted = false;
    while (lambda < 1e16) {
      const Ad = A.map((row, a) => row.map((v, b) => (a === b ? v + lambda * Math.max(v, 1e-12) : v)));
      const step = solve(Ad, g.map((x) => -x));
      if (step) {
        const tn = theta.map((t, j) => t + step[j]!);
        const rn = residuals(tn);
        const cn = rn.every(Number.isFinite) ? costOf(rn, delta) : Infinity;
        if (cn <= cost) {
          const small = step.every((s, j) => Math.abs(s) <= stepTol * (Math.abs(theta[j]!) + stepTol));
          const relDrop = (cost - cn) / Math.max(cost, 1e-300);
          theta = tn; r = rn; cost = cn;
          lambda = Math.max(lambda / 3, 1e-12);
          accepted = true;
          if (small || (relDrop < 1e-15 && cost > 0)) return { theta, cost, residuals: r, iterations: it, converged: true, reason: 'step below tolerance' };
          break;
        }
      }
      lambda *= 4;
    }
    if (!accepted) {
      // No descent direction left at any damping: a stationary point up to rounding.
      const ok = gmax <= 1e-6 * (1 + cost);
      return { theta, cost, residuals: r, iterations: it, converged: ok, reason: ok ? 'no further descent (stationary to rounding)' : `stuck with gradient ${gmax.toExponential(2)}` };
    }
  }
  return { theta, cost, residuals: r, iterations: maxIter, converged: false, reason: `did not converge in ${maxIter} iterations` };
}

/** Logistic function, used to keep a parameter inside (0, max). */
export function sigmoid(s: number): number {
  return s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s));
}

/** Inverse of {@link sigmoid}, clamped away from 0 and 1. */
export function logit(u: number): number {
  const v = Math.min(1 - 1e-9, Math.max(1e-9, u));
  return Math.log(v / (1 - v));
}

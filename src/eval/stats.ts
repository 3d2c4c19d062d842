/**
 * Bootstrap standard errors: resample the items with replacement B times (seeded), recompute
 * the statistic, and report the standard deviation of the B values. Works for any statistic
 * of the per-item values (accuracy, a percentile mapped from accuracy, ...).
 */
import { Rng } from '../tensor/rng.ts';

/** Mean of an array (NaN when empty). */
export function mean(xs: ArrayLike<number>): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}

/** The bootstrap standard error of `stat(values)` with `B` resamples; 0 for fewer than 2 values. */
export function bootstrapStderr(values: readonly number[], stat: (sampleMean: number, n: number) => number = (m) => m, B = 1000, seed = 0): number {
  const n = values.length;
  if (n < 2) return 0;
  const rng = new Rng(seed);
  const reps = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[rng.int(n)]!;
    reps[b] = stat(s / n, n);
  }
  const m = mean(reps);
  let v = 0;
  for (let b = 0; b < B; b++) v += (reps[b]! - m) ** 2;
  return Math.sqrt(v / (B - 1));
}

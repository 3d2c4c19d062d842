/**
 * Bootstrap confidence intervals for any fit: resample the data units with replacement
 * (optionally within strata, e.g. within each compute budget so every budget stays present),
 * refit, and take percentiles of each statistic over the refits that succeeded. Seeded, so a
 * report is reproducible. Refits that fail are counted, not hidden; when more than half fail the
 * bootstrap itself fails.
 */
import { Rng } from '../tensor/rng.ts';
import { fail, type FitResult } from './fit.ts';

/** Options of {@link bootstrap}. */
export interface BootstrapOptions {
  samples?: number;
  seed?: number;
  /** Central interval mass, e.g. 0.95 → the 2.5th and 97.5th percentiles. */
  level?: number;
  /** strata[i] is unit i's group; units are resampled within their group. */
  strata?: number[];
}

/** Percentile interval and median of one statistic. */
export interface Interval { lo: number; median: number; hi: number; }

/** Intervals for every named statistic, and how many refits succeeded. */
export interface BootstrapResult<K extends string> { intervals: Record<K, Interval>; samples: number; succeeded: number; failed: number; level: number; seed: number; firstFailure?: string; }

/** The q-quantile (0..1) of sorted values, linear interpolation between order statistics. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos), f = pos - i;
  return i + 1 < sorted.length ? sorted[i]! * (1 - f) + sorted[i + 1]! * f : sorted[i]!;
}

/**
 * Runs the bootstrap. `refit(sample)` gets a resampled list of units and returns a fit; `stats`
 * turns fitted parameters into named numbers (parameters, predictions…).
 */
export function bootstrap<U, P, K extends string>(
  units: U[], refit: (sample: U[]) => FitResult<P>, stats: (p: P) => Record<K, number>, opts: BootstrapOptions = {},
): FitResult<BootstrapResult<K>> {
  const samples = opts.samples ?? 1000, seed = opts.seed ?? 1234, level = opts.level ?? 0.95;
  if (!(samples >= 10)) return fail(`bootstrap needs at least 10 samples, got ${samples}`);
  if (!(level > 0 && level < 1)) return fail(`bootstrap level must be in (0, 1), got ${level}`);
  if (units.length === 0) return fail('bootstrap needs data, got none');
  const strata = opts.strata ?? units.map(() => 0);
  if (strata.length !== units.length) return fail(`strata has ${strata.length} entries for ${units.length} units`);
  const groups = new Map<number, number[]>();
  strata.forEach((g, i) => { const a = groups.get(g) ?? []; a.push(i); groups.set(g, a); });
  const rng = new Rng(seed);
  const values = new Map<K, number[]>();
  let succeeded = 0, failed = 0;
  let firstFailure: string | undefined;
  for (let s = 0; s < samples; s++) {
    const sample: U[] = [];
    for (const idx of groups.values()) for (let t = 0; t < idx.length; t++) sample.push(units[idx[rng.int(idx.length)]!]!);
    const f = refit(sample);
    if (!f.ok) { failed++; firstFailure ??= f.reason; continue; }
    const st = stats(f.params);
    if (!Object.values<number>(st).every(Number.isFinite)) { failed++; firstFailure ??= 'non-finite statistic'; continue; }
    succeeded++;
    for (const [k, v] of Object.entries(st) as [K, number][]) { const a = values.get(k) ?? []; a.push(v); values.set(k, a); }
  }
  if (succeeded < samples / 2) return fail(`bootstrap: only ${succeeded} of ${samples} refits succeeded (first failure: ${firstFailure})`);
  const intervals = {} as Record<K, Interval>;
  for (const [k, v] of values) {
    v.sort((a, b) => a - b);
    intervals[k] = { lo: quantile(v, (1 - level) / 2), median: quantile(v, 0.5), hi: quantile(v, 1 - (1 - level) / 2) };
  }
  const result: BootstrapResult<K> = { intervals, samples, succeeded, failed, level, seed };
  if (firstFailure !== undefined) result.firstFailure = firstFailure;
  return { ok: true, params: result, n: units.length, rmsLogResidual: NaN, iterations: samples, notes: failed ? [`${failed} of ${samples} refits failed (first: ${firstFailure})`] : [] };
}

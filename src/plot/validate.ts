/** Input checks for chart specs: every problem is reported with the chart, series and index it concerns. */
import { InputError } from '../util/errors.ts';

/** Throws unless `v` is a positive integer number of pixels within a sane range. */
export function checkSize(chart: string, what: string, v: number): void {
  if (!Number.isFinite(v) || v < 50 || v > 20000) throw new InputError(`chart '${chart}': ${what} must be a number of pixels in [50, 20000], got ${v}`);
}

/** Throws unless `d` is a finite, increasing pair (and positive on a log axis). */
export function checkDomain(chart: string, axis: string, d: [number, number] | undefined, log: boolean): void {
  if (d === undefined) return;
  if (!Array.isArray(d) || d.length !== 2 || !Number.isFinite(d[0]) || !Number.isFinite(d[1]) || !(d[0] < d[1]))
    throw new InputError(`chart '${chart}': ${axis}Domain must be [lo, hi] with finite lo < hi, got ${JSON.stringify(d)}`);
  if (log && !(d[0] > 0)) throw new InputError(`chart '${chart}': ${axis}Domain on a log axis must be positive, got ${JSON.stringify(d)}`);
}

/** Throws unless every value is finite (and > 0 when `log`). `label` names the owner, e.g. "series 'val' y". */
export function checkValues(chart: string, label: string, values: readonly number[], log: boolean): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`chart '${chart}': ${label}[${i}] must be a finite number, got ${String(v)}`);
    if (log && !(v > 0)) throw new InputError(`chart '${chart}': ${label}[${i}] is ${v} but the axis is logarithmic (values must be > 0)`);
  }
}

/**
 * The learning-rate transfer check: with a parametrization that transfers (maximal-update),
 * the best learning rate found at one width stays best at the others. For each width the
 * optimum is the vertex of a parabola through the best LR and its two neighbours in
 * (ln lr, loss) — finer than the sweep's grid — or the best grid point at the sweep's edge.
 * The check passes when the optima across widths differ by less than a factor of 2.
 */
import { InputError } from '../util/errors.ts';
import { lineChart } from '../plot/index.ts';

/** One finished run of an LR sweep. */
export interface LrResult { width: number; lr: number; finalValLoss: number; }

/** The optimum at one width. `atEdge` means the best LR was the smallest or largest tried (the true optimum may lie outside). */
export interface LrOptimum { width: number; lr: number; loss: number; atEdge: boolean; }

/** Optima per width and how far they move. */
export interface LrTransfer { optima: LrOptimum[]; shift: number; widthRange: number; transfers: boolean; }

/** Finds each width's optimal LR and the spread of the optima. Diverged runs (non-finite loss) count as worst. */
export function lrOptima(results: LrResult[]): LrTransfer {
  if (results.length === 0) throw new InputError('lrOptima: no results');
  const widths = [...new Set(results.map((r) => r.width))].sort((a, b) => a - b);
  const optima: LrOptimum[] = widths.map((w) => {
    const rs = results.filter((r) => r.width === w).sort((a, b) => a.lr - b.lr);
    if (rs.length < 3) throw new InputError(`lrOptima: width ${w} has ${rs.length} learning rates; need at least 3`);
    const loss = rs.map((r) => (Number.isFinite(r.finalValLoss) ? r.finalValLoss : Infinity));
    let i = 0;
    loss.forEach((l, k) => { if (l < loss[i]!) i = k; });
    if (!Number.isFinite(loss[i]!)) throw new InputError(`lrOptima: every run at width ${w} diverged`);
    if (i === 0 || i === rs.length - 1) return { width: w, lr: rs[i]!.lr, loss: loss[i]!, atEdge: true };
    const [x0, x1, x2] = [rs[i - 1]!.lr, rs[i]!.lr, rs[i + 1]!.lr].map(Math.log) as [number, number, number];
    const [y0, y1, y2] = [loss[i - 1]!, loss[i]!, loss[i + 1]!];
    let x = x1, y = y1;
    if (Number.isFinite(y0) && Number.isFinite(y2)) {
      const d = (x0 - x1) * (x0 - x2) * (x1 - x2);
      const a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / d;
      const b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / d;
      if (a > 0) { x = Math.min(x2, Math.max(x0, -b / (2 * a))); y = Math.min(y1, a * x * x + b * x + (y1 - a * x1 * x1 - b * x1)); }
    }
    return { width: w, lr: Math.exp(x), loss: y, atEdge: false };
  });
  const lrs = optima.map((o) => o.lr);
  const shift = Math.max(...lrs) / Math.min(...lrs);
  return { optima, shift, widthRange: widths[widths.length - 1]! / widths[0]!, transfers: shift < 2 && optima.every((o) => !o.atEdge) };
}

/** Loss against learning rate, one line per width, each optimum marked. Returns SVG text. */
export function plotLrSweep(results: LrResult[]): string {
  const t = lrOptima(results);
  const series = t.optima.map((o) => {
    const rs = results.filter((r) => r.width === o.width && Number.isFinite(r.finalValLoss)).sort((a, b) => a.lr - b.lr);
    return { name: `width ${o.width}`, x: rs.map((r) => r.lr), y: rs.map((r) => r.finalValLoss), style: 'line+points' as const };
  });
  return lineChart({
    title: `LR transfer: optimum moves ×${t.shift.toFixed(2)} over a ×${t.widthRange} width range`,
    xLabel: 'learning rate', yLabel: 'final validation loss', xLog: true, series,
    annotations: t.optima.map((o) => ({ x: o.lr, y: o.loss, text: `w${o.width}` })),
  });
}

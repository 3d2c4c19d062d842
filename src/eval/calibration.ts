/**
 * Calibration of multiple-choice answers: does the model's confidence match its accuracy?
 * The confidence of an item is the probability of the chosen answer under a softmax over the
 * choices' log likelihoods (./scoring.ts). Items are put in B = 10 equal-width bins of
 * confidence ([0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]); the expected calibration error is
 *
 *   ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b|
 *
 * and the reliability diagram plots accuracy against mean confidence per non-empty bin, with
 * the diagonal of perfect calibration; each point is labelled with its bin's count.
 */
import { InputError } from '../util/errors.ts';
import { lineChart, writeChart } from '../plot/index.ts';

/** Default number of equal-width bins. */
export const ECE_BINS = 10;

/** One bin of the reliability diagram. */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  confidence: number;
  accuracy: number;
}

/** ECE and its bins. */
export interface Calibration {
  ece: number;
  n: number;
  bins: CalibrationBin[];
}

/** Computes ECE over (confidence in [0, 1], correct) pairs. */
export function calibration(confidence: number[], correct: number[], bins = ECE_BINS): Calibration {
  if (confidence.length !== correct.length) throw new InputError(`calibration: ${confidence.length} confidences but ${correct.length} outcomes`);
  if (!Number.isInteger(bins) || bins < 1) throw new InputError(`calibration: bins must be an integer >= 1, got ${bins}`);
  const cnt = new Array<number>(bins).fill(0), conf = new Array<number>(bins).fill(0), acc = new Array<number>(bins).fill(0);
  confidence.forEach((c, i) => {
    if (!(c >= 0 && c <= 1)) throw new InputError(`calibration: confidence ${i} must be in [0, 1], got ${c}`);
    const b = Math.min(bins - 1, Math.floor(c * bins));
    cnt[b]!++; conf[b]! += c; acc[b]! += correct[i]!;
  });
  const n = confidence.length;
  let ece = 0;
  const out: CalibrationBin[] = [];
  for (let b = 0; b < bins; b++) {
    const k = cnt[b]!;
    const bin = { lo: b / bins, hi: (b + 1) / bins, count: k, confidence: k ? conf[b]! / k : NaN, accuracy: k ? acc[b]! / k : NaN };
    out.push(bin);
    if (k) ece += (k / n) * Math.abs(bin.accuracy - bin.confidence);
  }
  return { ece: n ? ece : NaN, n, bins: out };
}

/** Renders the reliability diagram as SVG. */
export function reliabilitySvg(cal: Calibration, title = 'Reliability diagram'): string {
  const used = cal.bins.filter((b) => b.count > 0);
  if (used.length === 0) throw new InputError('calibration: no items to plot');
  return lineChart({
    title: `${title} (ECE ${(cal.ece * 100).toFixed(1)}%, ${cal.n} answers)`, xLabel: 'confidence of the chosen answer', yLabel: 'accuracy',
    series: [{ name: 'model', x: used.map((b) => b.confidence), y: used.map((b) => b.accuracy), style: 'line+points' }],
    annotations: used.map((b) => ({ x: b.confidence, y: b.accuracy, text: `n=${b.count}` })),
    diagonal: true, xDomain: [0, 1], yDomain: [0, 1],
  });
}

/** Writes `<pathWithoutExt>.svg` and `.png`. */
export async function writeReliabilityDiagram(pathWithoutExt: string, cal: Calibration): Promise<{ svg: string; png: string }> {
  return writeChart(pathWithoutExt, reliabilitySvg(cal));
}

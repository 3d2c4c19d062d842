/**
 * `verify`: trains the target run (resumably, into target.jsonl), compares it with the
 * prediction made before it ran, rewrites the report with the actual point, and writes the
 * bench rows:
 *
 *   loss prediction       unit "relative error %", lumen = |pred − actual| / actual · 100,
 *                         peer "goal 1%", peer_value 1, ratio = 1 / max(error%, 0.01)
 *   pass-rate prediction  same, peer "goal 10%", peer_value 10, ratio = 10 / max(error%, 0.01)
 *   loss prediction, L(N, D)  the same as the first row for the L(N, D) fit's prediction (extra:
 *                         it uses every run, not only the frontier, and is usually tighter)
 *
 * so ratio ≥ 1 means the goal was met. Synthetic studies never write bench results.
 */
import { writeJsonAtomic } from '../util/fs.ts';
import { InputError } from '../util/errors.ts';
import { actualCapability } from './analyze.ts';
import { readResults, runSweep, type RunRecord, type TrainFn } from './run.ts';
import { readFit, readPlan, readStudyJson, studyPaths, type Prediction, type Verification } from './study.ts';
import { writeReport } from './report.ts';

/** One row of bench/results/scaling.json. */
export interface BenchRow { case: string; unit: string; lumen: number | null; peer: string; peer_value: number; ratio: number | null; note?: string; }

/** Relative error in percent. */
export function relErrorPct(predicted: number, actual: number): number {
  return (Math.abs(predicted - actual) / Math.abs(actual)) * 100;
}

/** Bench rows from a verification. */
export function benchRows(v: Verification): BenchRow[] {
  const row = (name: string, goal: number, err: number | null, why: string): BenchRow => err === null
    ? { case: name, unit: 'relative error %', lumen: null, peer: `goal ${goal}%`, peer_value: goal, ratio: null, note: why }
    : { case: name, unit: 'relative error %', lumen: Number(err.toFixed(4)), peer: `goal ${goal}%`, peer_value: goal, ratio: Number((goal / Math.max(err, 0.01)).toFixed(4)) };
  return [
    row('loss prediction', 1, v.loss.relErrorPct, 'the L(C) fit failed, so there was no prediction'),
    row('pass-rate prediction', 10, v.passRate.relErrorPct, 'the capability fit failed, so there was no prediction'),
    row('loss prediction, L(N, D)', 1, v.lossNd.relErrorPct, 'the L(N, D) fit failed, so there was no prediction'),
  ];
}

/** Compares a finished target with the prediction. */
export function compare(pred: Prediction, target: RunRecord, floor: number, now = new Date()): Verification {
  const lossPred = pred.loss.value, ndPred = pred.lossNd.value, passPred = pred.passRate.value;
  const problems = pred.capabilityProblems ?? [];
  const cap = actualCapability(target.perProblemPass, target.passRate, problems.length ? problems : [0], floor);
  const lossCI = pred.loss.value !== null && pred.loss.ci ? [pred.loss.ci.lo, pred.loss.ci.hi] as [number, number] : null;
  const passCI = pred.passRate.value !== null && pred.passRate.ci ? [pred.passRate.ci.lo, pred.passRate.ci.hi] as [number, number] : null;
  return {
    verifiedAt: now.toISOString(), predictionMadeAt: pred.madeAt, targetStartedAt: target.startedAt,
    predictionBeforeTarget: !pred.madeAfterTarget && Date.parse(pred.madeAt) <= Date.parse(target.startedAt),
    loss: { predicted: lossPred, ci: lossCI, actual: target.finalValLoss, relErrorPct: lossPred === null ? null : relErrorPct(lossPred, target.finalValLoss), withinCI: lossCI ? target.finalValLoss >= lossCI[0] && target.finalValLoss <= lossCI[1] : null },
    lossNd: { predicted: ndPred, actual: target.finalValLoss, relErrorPct: ndPred === null ? null : relErrorPct(ndPred, target.finalValLoss) },
    passRate: { predicted: passPred, ci: passCI, actual: cap.passRate, relErrorPct: passPred === null ? null : relErrorPct(passPred, cap.passRate), floored: cap.floored, floor },
    synthetic: pred.synthetic || target.synthetic === true,
  };
}

/** Options of {@link verifyStudy}. */
export interface VerifyOptions {
  train: TrainFn;
  /** Where to write the bench rows (null: do not). Refused for synthetic studies. */
  benchOut: string | null;
  synthetic?: boolean;
  /** Pass-rate floor for unsolved kept problems in the actual metric. */
  floor?: number;
  quiet?: boolean;
}

/** Runs the target if needed, compares, writes verification.json, the report and (optionally) bench rows. */
export async function verifyStudy(dir: string, opts: VerifyOptions): Promise<{ verification: Verification; rows: BenchRow[]; report: string }> {
  const paths = studyPaths(dir);
  const plan = readPlan(dir);
  const fit = readFit(dir);
  const pred = readStudyJson<Prediction>(paths.prediction, `lumen scale fit --dir ${dir}`);
  const records = readResults(paths.results).records;
  if (records.length === 0) throw new InputError(`${paths.results} has no runs; run 'lumen scale run --plan ${dir}' first`);
  const synthetic = Boolean(opts.synthetic) || pred.synthetic;
  if (synthetic && opts.benchOut) throw new InputError('synthetic studies are never written to bench results; leave out the bench output');
  const { records: done } = await runSweep([pred.target], { train: opts.train, resultsPath: paths.target, synthetic: Boolean(opts.synthetic), quiet: opts.quiet ?? false });
  const target = done[0]!;
  const verification = compare(pred, target, opts.floor ?? 1e-3);
  writeJsonAtomic(paths.verification, verification);
  const { report } = await writeReport(dir, plan, records, fit, pred, verification, target);
  const rows = benchRows(verification);
  if (opts.benchOut) writeJsonAtomic(opts.benchOut, { bench: 'scaling', rows });
  return { verification, rows, report };
}

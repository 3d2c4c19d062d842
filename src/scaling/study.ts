/**
 * The on-disk layout of a scaling study directory, and loading it back with clear errors:
 *
 *   plan.json         the sweep plan (lumen scale plan)
 *   results.jsonl     one line per finished sweep run (lumen scale run)
 *   fit.json          all fits with bootstrap intervals (lumen scale fit)
 *   prediction.json   the target prediction, timestamped before the target runs (lumen scale fit)
 *   target.jsonl      the target run's result (lumen scale verify)
 *   verification.json predicted vs actual (lumen scale verify)
 *   report.md, plots/ the report and its charts (SVG + PNG)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../util/errors.ts';
import { parseGPTConfig } from '../models/config.ts';
import type { SweepPlan, PlannedRun } from './plan.ts';
import type { Predicted, StudyFit } from './analyze.ts';

/** Paths of a study's files. */
export function studyPaths(dir: string) {
  return {
    dir,
    plan: join(dir, 'plan.json'),
    results: join(dir, 'results.jsonl'),
    fit: join(dir, 'fit.json'),
    prediction: join(dir, 'prediction.json'),
    target: join(dir, 'target.jsonl'),
    verification: join(dir, 'verification.json'),
    report: join(dir, 'report.md'),
    plots: join(dir, 'plots'),
  };
}

/** What `fit` commits to before the target runs. */
export interface Prediction {
  /** ISO timestamp of when the prediction was made. */
  madeAt: string;
  /** True when the target had already finished when this was written (then it is not a prediction). */
  madeAfterTarget: boolean;
  targetFlops: number;
  target: PlannedRun;
  targetNote: string;
  /** Sweep runs the fits used and the largest compute among them (as a fraction of the target). */
  sweepRuns: number;
  maxSweepFlops: number;
  maxFraction: number;
  loss: Predicted;
  lossNd: Predicted;
  negLogPass: Predicted;
  passRate: Predicted;
  /** Problems the capability metric is measured on (indices into perProblemPass). */
  capabilityProblems: number[] | null;
  synthetic: boolean;
}

/** Predicted vs actual, written by `verify`. */
export interface Verification {
  verifiedAt: string;
  predictionMadeAt: string;
  targetStartedAt: string;
  predictionBeforeTarget: boolean;
  loss: { predicted: number | null; ci: [number, number] | null; actual: number; relErrorPct: number | null; withinCI: boolean | null };
  lossNd: { predicted: number | null; actual: number; relErrorPct: number | null };
  passRate: { predicted: number | null; ci: [number, number] | null; actual: number; relErrorPct: number | null; floored: number; floor: number };
  synthetic: boolean;
}

/** Reads and parses a JSON file of the study, naming the command that makes it when it is missing. */
export function readStudyJson<T>(path: string, madeBy: string): T {
  if (!existsSync(path)) throw new InputError(`${path} does not exist; run '${madeBy}' first`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new InputError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Loads plan.json and checks its shape. */
export function readPlan(dir: string): SweepPlan {
  const p = studyPaths(dir).plan;
  const plan = readStudyJson<SweepPlan>(p, `lumen scale plan --out ${dir}`);
  if (plan.version !== 1 || !Array.isArray(plan.runs) || !plan.target || !(plan.targetFlops > 0)) throw new InputError(`${p} is not a sweep plan (expected version 1 with runs, target and targetFlops)`);
  for (const run of [...plan.runs, plan.target]) {
    if (typeof run.id !== 'string' || !(Number.isInteger(run.tokens) && run.tokens > 0) || !(run.flops > 0) || !(run.params > 0))
      throw new InputError(`${p}: run ${JSON.stringify(run.id)} needs an id, a positive integer token count, flops and params`);
    parseGPTConfig(run.config, `${p}: run ${run.id}`);
  }
  plan.recipe ??= {};
  return plan;
}

/** Loads fit.json. */
export function readFit(dir: string): StudyFit {
  return readStudyJson<StudyFit>(studyPaths(dir).fit, `lumen scale fit --dir ${dir}`);
}

/**
 * `lumen scale` — predictable scaling: plan a sweep of small runs, run it (resumably), fit the
 * scaling laws and predict the target run, then train the target and verify the prediction.
 *
 *   lumen scale plan --target-flops 1e14 --out runs/scaling
 *   lumen scale run --plan runs/scaling
 *   lumen scale fit --dir runs/scaling
 *   lumen scale verify --dir runs/scaling
 *   lumen scale lr --widths 32,64,128          (learning-rate transfer check)
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { num, usage, type OptionTable } from '../args.ts';
import { InputError } from '../../util/errors.ts';
import { writeJsonAtomic } from '../../util/fs.ts';
import { planSweep, lrSweepPlan, fmtFlops, type SweepPlan } from '../../scaling/plan.ts';
import { lrOptima, plotLrSweep } from '../../scaling/lr.ts';
import { writeChart } from '../../plot/index.ts';
import { defaultBase } from '../../scaling/shape.ts';
import { readResults, runSweep, type TrainFn } from '../../scaling/run.ts';
import { syntheticTrainer } from '../../scaling/synthetic.ts';
import { fitStudy } from '../../scaling/analyze.ts';
import { makePrediction, writePrediction, writeReport } from '../../scaling/report.ts';
import { verifyStudy } from '../../scaling/verify.ts';
import { readPlan, studyPaths } from '../../scaling/study.ts';
import { trainRun } from '../../scaling/trainer-bridge.ts';

const SUBCOMMANDS = 'plan | run | fit | verify | lr';

const PLAN_OPTS = {
  'target-flops': { type: 'string', help: 'training FLOPs of the target run to predict (required), e.g. 1e14' },
  out: { type: 'string', default: 'runs/scaling', help: 'study directory to write plan.json into' },
  'min-fraction': { type: 'string', default: '1e-5', help: 'smallest sweep budget as a fraction of the target' },
  'max-fraction': { type: 'string', default: '1e-3', help: 'largest sweep budget as a fraction of the target' },
  'budgets-per-decade': { type: 'string', default: '3', help: 'compute budgets per factor of 10' },
  'models-per-budget': { type: 'string', default: '4', help: 'model sizes trained at each budget' },
  'tokens-per-param': { type: 'string', default: '20', help: 'tokens per non-embedding parameter the sizes are centred on' },
  'min-tokens': { type: 'string', default: '2048', help: 'drop runs that would see fewer tokens' },
  vocab: { type: 'string', help: 'vocabulary size of the tokenizer the runs will use (default: the tiny preset\'s)' },
  context: { type: 'string', help: 'context length (default: the tiny preset\'s)' },
  recipe: { type: 'string', help: 'JSON file with the training recipe every run shares (learning rate, batch, data…), passed to the trainer' },
  force: { type: 'boolean', help: 'replace an existing plan even if results exist' },
} satisfies OptionTable;

const RUN_OPTS = {
  plan: { type: 'string', help: 'study directory holding plan.json (required)' },
  synthetic: { type: 'boolean', help: 'use the synthetic trainer (known law + noise) instead of training' },
  quiet: { type: 'boolean', help: 'no progress bar' },
} satisfies OptionTable;

const FIT_OPTS = {
  dir: { type: 'string', help: 'study directory (required)' },
  bootstrap: { type: 'string', default: '400', help: 'bootstrap resamples for the confidence intervals (0: none)' },
  seed: { type: 'string', default: '1234', help: 'bootstrap seed' },
  frontier: { type: 'string', default: 'parabola', help: "frontier point per budget: 'parabola' (vertex of loss vs ln N) or 'min' (best run)" },
  force: { type: 'boolean', help: 'overwrite prediction.json even though the target has already run (marked as made after the target)' },
  target: { type: 'string', default: 'planned', help: "target shape: 'planned' (the plan's compute-optimal rule) or 'fitted' (moved to the fitted N_opt)" },
} satisfies OptionTable;

const LR_OPTS = {
  out: { type: 'string', default: 'runs/lr-transfer', help: 'directory for the LR sweep' },
  widths: { type: 'string', default: '32,64,128', help: 'comma-separated widths (a 4x range shows transfer)' },
  lrs: { type: 'string', default: '1e-3,2e-3,5e-3,1e-2,2e-2,5e-2,1e-1', help: 'comma-separated learning rates' },
  tokens: { type: 'string', default: '1048576', help: 'tokens per run (the same for every run)' },
  depth: { type: 'string', help: 'layers of every model (default: the shape rule at the smallest width, at least 2)' },
  vocab: { type: 'string', help: 'vocabulary size (default: the tiny preset\'s)' },
  context: { type: 'string', help: 'context length (default: the tiny preset\'s)' },
  recipe: { type: 'string', help: 'JSON file with the shared training recipe (its learning rate is overridden per run)' },
  synthetic: { type: 'boolean', help: 'use the synthetic trainer (ideal transfer by construction: only exercises the pipeline)' },
  quiet: { type: 'boolean', help: 'no progress bar' },
} satisfies OptionTable;

const VERIFY_OPTS = {
  dir: { type: 'string', help: 'study directory (required)' },
  'bench-out': { type: 'string', default: 'bench/results/scaling.json', help: "where to write the bench rows ('none' to skip; always skipped for synthetic studies)" },
  floor: { type: 'string', default: '1e-3', help: 'pass rate counted for a kept problem the target never solves' },
  synthetic: { type: 'boolean', help: 'train the target with the synthetic trainer' },
  quiet: { type: 'boolean', help: 'no progress bar' },
} satisfies OptionTable;

function help(): string {
  return [
    `Usage: lumen scale <${SUBCOMMANDS}> [options]`,
    '',
    'Predict a large run\'s final loss and pass rate from runs with at most 1/1000 of its compute, then check.',
    '',
    '  plan    plan a sweep of small runs from C/10^5 to C/10^3 (several sizes per budget)',
    '  run     train the sweep (resumable: a killed sweep continues where it stopped)',
    '  fit     fit L(C), L(N, D) and the capability law with bootstrap CIs; write the timestamped prediction',
    '  verify  train the target run and report predicted vs actual (writes bench/results/scaling.json)',
    '  lr      learning-rate sweep at several widths: does the optimum transfer across width (muP)?',
    '',
    'Run lumen scale <subcommand> --help for its options.',
  ].join('\n');
}

/**
 * Like args.ts's `parse`, but builds the parseArgs spec without undefined `short`/`multiple`
 * fields, which Node 20's parseArgs rejects (args.ts currently forwards them).
 */
function parse<T extends OptionTable>(command: string, synopsis: string, options: T, argv: string[], description: string):
  { values: { [K in keyof T]: T[K]['type'] extends 'boolean' ? boolean : string | undefined } } | null {
  const spec: Record<string, { type: 'string' | 'boolean'; default?: string | boolean }> = { help: { type: 'boolean' } };
  for (const [k, o] of Object.entries(options)) {
    spec[k] = { type: o.type };
    if (o.default !== undefined && !Array.isArray(o.default)) spec[k].default = o.default;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: spec, allowPositionals: false, strict: true });
  } catch (e) {
    throw new InputError(`${(e as Error).message}. Run 'lumen ${command} --help'.`);
  }
  if (parsed.values['help']) {
    console.log(usage(command, synopsis, options, description));
    return null;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  for (const [k, o] of Object.entries(options)) if (o.type === 'boolean') values[k] = Boolean(values[k]);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { values: values as any };
}

function required(name: string, v: string | undefined, sub: string): string {
  if (v === undefined || v === '') throw new InputError(`--${name} is required. Run 'lumen scale ${sub} --help'.`);
  return v;
}

function trainerFor(dir: string, synthetic: boolean, recipe: Record<string, unknown>): TrainFn {
  return synthetic ? syntheticTrainer() : (run) => trainRun(run, { dir, recipe });
}

/** Reads a recipe JSON file (an object passed to the trainer unchanged). */
function readRecipe(path: string | undefined): Record<string, unknown> {
  if (path === undefined) return {};
  if (!existsSync(path)) throw new InputError(`--recipe: ${path} does not exist`);
  let v: unknown;
  try { v = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new InputError(`--recipe: ${path} is not valid JSON: ${(e as Error).message}`); }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InputError(`--recipe: ${path} must hold a JSON object, got ${Array.isArray(v) ? 'an array' : typeof v}`);
  return v as Record<string, unknown>;
}

/** Parses a comma-separated list of positive numbers. */
function numList(name: string, v: string): number[] {
  const xs = v.split(',').map((t) => t.trim()).filter((t) => t !== '').map(Number);
  if (xs.length === 0 || xs.some((x) => !(Number.isFinite(x) && x > 0))) throw new InputError(`--${name}: expected a comma-separated list of positive numbers, got '${v}'`);
  return xs;
}

async function cmdPlan(argv: string[]): Promise<number> {
  const a = parse('scale plan', '--target-flops C [--out DIR]', PLAN_OPTS, argv, 'Plan a compute sweep for a target run.');
  if (!a) return 0;
  const v = a.values;
  const targetFlops = num('target-flops', required('target-flops', v['target-flops'], 'plan'), 0, { min: 1 });
  const overrides: { vocabSize?: number; contextLength?: number } = {};
  if (v.vocab !== undefined) overrides.vocabSize = num('vocab', v.vocab, 0, { min: 2, int: true });
  if (v.context !== undefined) overrides.contextLength = num('context', v.context, 0, { min: 1, int: true });
  const plan = planSweep({
    targetFlops,
    minFraction: num('min-fraction', v['min-fraction'], 1e-5, { min: 0 }),
    maxFraction: num('max-fraction', v['max-fraction'], 1e-3, { min: 0 }),
    budgetsPerDecade: num('budgets-per-decade', v['budgets-per-decade'], 3, { min: 1, int: true }),
    modelsPerBudget: num('models-per-budget', v['models-per-budget'], 4, { min: 1, int: true }),
    tokensPerParam: num('tokens-per-param', v['tokens-per-param'], 20, { min: 0 }),
    minTokens: num('min-tokens', v['min-tokens'], 2048, { min: 1 }),
    base: defaultBase(overrides),
    recipe: readRecipe(v.recipe),
  });
  const dir = v.out ?? 'runs/scaling';
  const paths = studyPaths(dir);
  if (existsSync(paths.results) && readResults(paths.results).records.length > 0 && !v.force)
    throw new InputError(`${paths.results} already holds results of a previous plan; use another --out or --force`);
  writeJsonAtomic(paths.plan, plan);
  printPlan(plan);
  console.log(`\nwrote ${paths.plan}. Next: lumen scale run --plan ${dir}`);
  return 0;
}

function printPlan(plan: SweepPlan): void {
  const total = plan.runs.reduce((s, r) => s + r.flops, 0);
  console.log(`target ${fmtFlops(plan.targetFlops)} FLOPs: ${plan.runs.length} sweep runs over ${plan.budgets.length} budgets (${plan.budgets.map(fmtFlops).join(', ')}), sweep total ${fmtFlops(total)} FLOPs = ${(100 * total / plan.targetFlops).toFixed(2)}% of the target`);
  console.log('id'.padEnd(12) + 'budget'.padStart(10) + 'width'.padStart(7) + 'depth'.padStart(7) + 'heads'.padStart(7) + 'N'.padStart(10) + 'tokens'.padStart(12) + 'D/N'.padStart(8));
  for (const r of [...plan.runs, plan.target]) {
    console.log(r.id.padEnd(12) + fmtFlops(r.budget).padStart(10) + String(r.width).padStart(7) + String(r.depth).padStart(7) + String(r.heads).padStart(7) + String(r.params).padStart(10) + String(r.tokens).padStart(12) + (r.tokens / r.params).toFixed(1).padStart(8));
  }
}

async function cmdRun(argv: string[]): Promise<number> {
  const a = parse('scale run', '--plan DIR [--synthetic]', RUN_OPTS, argv, 'Train the planned sweep, resumably.');
  if (!a) return 0;
  const dir = required('plan', a.values.plan, 'run');
  const plan = readPlan(dir);
  const paths = studyPaths(dir);
  const synthetic = a.values.synthetic;
  const { ran, skipped, records } = await runSweep(plan, { train: trainerFor(dir, synthetic, plan.recipe ?? {}), resultsPath: paths.results, synthetic, quiet: a.values.quiet });
  console.log(`${ran} run(s) trained, ${skipped} already done; ${records.length}/${plan.runs.length} results in ${paths.results}. Next: lumen scale fit --dir ${dir}`);
  return 0;
}

async function cmdFit(argv: string[]): Promise<number> {
  const a = parse('scale fit', '--dir DIR', FIT_OPTS, argv, 'Fit the scaling laws and write the timestamped prediction.');
  if (!a) return 0;
  const v = a.values;
  const dir = required('dir', v.dir, 'fit');
  const plan = readPlan(dir);
  const paths = studyPaths(dir);
  const records = readResults(paths.results).records;
  if (records.length === 0) throw new InputError(`${paths.results} has no runs yet; run 'lumen scale run --plan ${dir}' first`);
  const frontier = v.frontier ?? 'parabola';
  if (frontier !== 'parabola' && frontier !== 'min') throw new InputError(`--frontier: expected 'parabola' or 'min', got '${frontier}'`);
  const target = v.target ?? 'planned';
  if (target !== 'planned' && target !== 'fitted') throw new InputError(`--target: expected 'planned' or 'fitted', got '${target}'`);
  const fit = fitStudy(plan, records, { bootstrapSamples: num('bootstrap', v.bootstrap, 400, { min: 0, int: true }), seed: num('seed', v.seed, 1234, { int: true }), frontier, target });
  const targetDone = readResults(paths.target).records.length > 0;
  const pred = makePrediction(plan, records, fit, { targetDone });
  writePrediction(dir, pred, v.force);
  writeJsonAtomic(paths.fit, fit);
  const { report } = await writeReport(dir, plan, records, fit, pred);
  const show = (name: string, p: typeof pred.loss) => console.log(`${name.padEnd(34)} ${p.value === null ? `FAILED: ${p.reason}` : `${p.value.toFixed(4)}${p.ci ? `  [${p.ci.lo.toFixed(4)}, ${p.ci.hi.toFixed(4)}]` : ''}`}`);
  console.log(`prediction made at ${pred.madeAt} for the target (width ${pred.target.width}, ${pred.target.tokens} tokens, ${fmtFlops(pred.target.flops)} FLOPs):`);
  show('final loss, L(C) frontier', pred.loss);
  show('final loss, L(N, D)', pred.lossNd);
  show('pass rate (geo-mean, kept problems)', pred.passRate);
  const rc = fit.rangeCheck;
  if (rc.spreadPct !== null) console.log(`range check: refitting L(C) without the lowest budgets moves the prediction over ${rc.spreadPct.toFixed(1)}% (${rc.rows.map((r) => (r.prediction === null ? 'failed' : r.prediction.toFixed(3))).join(', ')})${rc.spreadPct > 2 ? ' — the frontier is not one power law over this sweep' : ''}`);
  console.log(`wrote ${paths.prediction}, ${paths.fit}, ${report}. Next: lumen scale verify --dir ${dir}`);
  return pred.loss.value === null ? 1 : 0;
}

async function cmdVerify(argv: string[]): Promise<number> {
  const a = parse('scale verify', '--dir DIR', VERIFY_OPTS, argv, 'Train the target run and compare it with the prediction.');
  if (!a) return 0;
  const v = a.values;
  const dir = required('dir', v.dir, 'verify');
  const synthetic = v.synthetic;
  const benchArg = v['bench-out'] ?? 'bench/results/scaling.json';
  const { verification: ver, report } = await verifyStudy(dir, {
    train: trainerFor(dir, synthetic, readPlan(dir).recipe ?? {}), synthetic, quiet: v.quiet,
    benchOut: benchArg === 'none' || synthetic ? null : benchArg,
    floor: num('floor', v.floor, 1e-3, { min: 0, max: 1 }),
  });
  const pct = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(2)}%`);
  console.log(`final loss: predicted ${ver.loss.predicted?.toFixed(4) ?? 'n/a'}, actual ${ver.loss.actual.toFixed(4)}, error ${pct(ver.loss.relErrorPct)} (goal 1%)`);
  console.log(`L(N, D):    predicted ${ver.lossNd.predicted?.toFixed(4) ?? 'n/a'}, error ${pct(ver.lossNd.relErrorPct)}`);
  console.log(`pass rate:  predicted ${ver.passRate.predicted?.toFixed(4) ?? 'n/a'}, actual ${ver.passRate.actual.toFixed(4)}, error ${pct(ver.passRate.relErrorPct)} (goal 10%)`);
  if (!ver.predictionBeforeTarget) console.log('warning: the prediction was not made before the target run started');
  console.log(`wrote ${studyPaths(dir).verification} and ${report}${ver.synthetic ? ' (synthetic: no bench results written)' : benchArg === 'none' ? '' : ` and ${benchArg}`}`);
  return 0;
}

async function cmdLr(argv: string[]): Promise<number> {
  const a = parse('scale lr', '[--widths 32,64,128] [--lrs ...] [--out DIR]', LR_OPTS, argv, 'Learning-rate sweep at several widths: does the optimum transfer (muP)?');
  if (!a) return 0;
  const v = a.values;
  const dir = v.out ?? 'runs/lr-transfer';
  const overrides: { vocabSize?: number; contextLength?: number } = {};
  if (v.vocab !== undefined) overrides.vocabSize = num('vocab', v.vocab, 0, { min: 2, int: true });
  if (v.context !== undefined) overrides.contextLength = num('context', v.context, 0, { min: 1, int: true });
  const widths = numList('widths', v.widths ?? '32,64,128');
  const lrOpts: { tokens: number; depth?: number; base: ReturnType<typeof defaultBase> } = {
    tokens: num('tokens', v.tokens, 1 << 20, { min: 1, int: true }),
    base: defaultBase({ ...overrides, baseWidth: Math.min(...widths) }),
  };
  if (v.depth !== undefined) lrOpts.depth = num('depth', v.depth, 2, { min: 1, int: true });
  const runs = lrSweepPlan(widths, numList('lrs', v.lrs ?? ''), lrOpts);
  const recipe = readRecipe(v.recipe);
  writeJsonAtomic(join(dir, 'lr-plan.json'), { version: 1, createdAt: new Date().toISOString(), recipe, runs });
  const synthetic = v.synthetic;
  const { records } = await runSweep(runs, { train: trainerFor(dir, synthetic, recipe), resultsPath: join(dir, 'lr-results.jsonl'), synthetic, quiet: v.quiet });
  const results = records.map((r) => ({ width: r.width, lr: r.lr!, finalValLoss: r.finalValLoss }));
  const t = lrOptima(results);
  writeJsonAtomic(join(dir, 'lr-transfer.json'), { ...t, synthetic, results });
  const chart = await writeChart(join(dir, 'plots', 'lr-sweep'), plotLrSweep(results));
  for (const o of t.optima) console.log(`width ${String(o.width).padStart(5)}: best lr ${o.lr.toExponential(2)} (loss ${o.loss.toFixed(4)})${o.atEdge ? ' — at the edge of the sweep, widen --lrs' : ''}`);
  console.log(`optimum moves ×${t.shift.toFixed(2)} across a ×${t.widthRange} width range: ${t.transfers ? 'transfers (goal: < ×2)' : 'does NOT transfer (goal: < ×2)'}${synthetic ? ' [synthetic]' : ''}`);
  console.log(`wrote ${join(dir, 'lr-transfer.json')} and ${chart.png}`);
  return 0;
}

/** Entry point: `lumen scale <subcommand> ...`. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'plan': return cmdPlan(rest);
    case 'run': return cmdRun(rest);
    case 'fit': return cmdFit(rest);
    case 'verify': return cmdVerify(rest);
    case 'lr': return cmdLr(rest);
    case undefined: case '--help': case '-h': case 'help':
      console.log(help());
      return sub === undefined ? 2 : 0;
    default:
      throw new InputError(`unknown subcommand '${sub}'; expected one of ${SUBCOMMANDS}. Run 'lumen scale --help'.`);
  }
}


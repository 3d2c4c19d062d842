/**
 * Sweep planning: which small runs to train so a scaling law fitted on them predicts a target run.
 *
 * Compute budgets are log-spaced from targetFlops·minFraction to targetFlops·maxFraction
 * (default C/10^5 … C/10^3), `budgetsPerDecade` per decade. At each budget B the planner walks the
 * width ladder (see shape.ts), gives every shape D = B / flopsPerToken tokens — FLOPs per token
 * from the model's own count, attention and output head included — and picks the shape whose
 * D/N is closest to `tokensPerParam` (N = non-embedding parameters). `modelsPerBudget` shapes
 * centred on it make the budget's iso-FLOP profile, so each budget brackets its optimum. The
 * target run is chosen by the same rule at targetFlops. Every run uses the same recipe (base).
 */
import { InputError } from '../util/errors.ts';
import type { GPTConfig } from '../models/config.ts';
import { WIDTH_LADDER, defaultBase, layersFor, shapeConfig, shapeCounts, type BaseConfig } from './shape.ts';

/** One planned training run. `flops` = flopsPerToken × tokens. */
export interface PlannedRun {
  id: string;
  /** Nominal compute budget this run belongs to (the target's own FLOPs for the target run). */
  budget: number;
  width: number;
  depth: number;
  heads: number;
  tokens: number;
  flops: number;
  flopsPerToken: number;
  /** Non-embedding parameters (N in the fits). */
  params: number;
  paramsTotal: number;
  config: GPTConfig;
  /** Learning-rate override (LR transfer sweeps); absent: the recipe's learning rate. */
  lr?: number;
}

/** Options of {@link planSweep}; everything but targetFlops has a default. */
export interface PlanOptions {
  targetFlops: number;
  minFraction?: number;
  maxFraction?: number;
  budgetsPerDecade?: number;
  modelsPerBudget?: number;
  tokensPerParam?: number;
  /** Runs with fewer tokens than this are dropped (too short to mean anything). */
  minTokens?: number;
  base?: BaseConfig;
  recipe?: Record<string, unknown>;
}

/** A sweep plan: the small runs, the target run, and the options that made them (so `fit` can read them back). */
export interface SweepPlan {
  version: 1;
  createdAt: string;
  targetFlops: number;
  options: Required<Omit<PlanOptions, 'base' | 'recipe'>>;
  shapeRule: string;
  base: BaseConfig;
  budgets: number[];
  runs: PlannedRun[];
  target: PlannedRun;
  /** The training recipe every run shares (learning rate, batch, data…), passed to the trainer as is. */
  recipe: Record<string, unknown>;
}

export const SHAPE_RULE = 'heads = max(1, width/16), layers = max(1, round(width/32)), kvHeads = heads; widths from the ladder ' + WIDTH_LADDER.join(', ');

function checkPositive(name: string, v: number, opts: { int?: boolean; max?: number } = {}): void {
  if (!Number.isFinite(v) || v <= 0 || (opts.int && !Number.isInteger(v)) || (opts.max !== undefined && v > opts.max))
    throw new InputError(`planSweep: ${name} must be a positive ${opts.int ? 'integer' : 'number'}${opts.max !== undefined ? ` <= ${opts.max}` : ''}, got ${v}`);
}

/** The run for `width` at `budget` FLOPs. */
function runFor(id: string, base: BaseConfig, width: number, budget: number): PlannedRun {
  const config = shapeConfig(base, width);
  const c = shapeCounts(config);
  const tokens = Math.max(1, Math.round(budget / c.flopsPerToken));
  return { id, budget, width, depth: config.layers, heads: config.heads, tokens, flops: tokens * c.flopsPerToken, flopsPerToken: c.flopsPerToken, params: c.params, paramsTotal: c.paramsTotal, config };
}

/** Index of the ladder width whose tokens-per-parameter at `budget` is closest (in log) to `ratio`. */
function optimalIndex(base: BaseConfig, budget: number, ratio: number): number {
  let best = 0, bestErr = Infinity;
  WIDTH_LADDER.forEach((w, i) => {
    const c = shapeCounts(shapeConfig(base, w));
    const err = Math.abs(Math.log(budget / c.flopsPerToken / c.params / ratio));
    if (err < bestErr) { bestErr = err; best = i; }
  });
  return best;
}

/** Formats a budget compactly for ids and tables, e.g. 3.16e9. */
export function fmtFlops(v: number): string {
  return v.toExponential(2).replace(/\.?0+e/, 'e').replace('e+', 'e');
}

/** Plans the sweep and the target run. Throws InputError on impossible options. */
export function planSweep(opts: PlanOptions): SweepPlan {
  const o = {
    targetFlops: opts.targetFlops, minFraction: opts.minFraction ?? 1e-5, maxFraction: opts.maxFraction ?? 1e-3,
    budgetsPerDecade: opts.budgetsPerDecade ?? 3, modelsPerBudget: opts.modelsPerBudget ?? 4, tokensPerParam: opts.tokensPerParam ?? 20,
    minTokens: opts.minTokens ?? 2048,
  };
  checkPositive('targetFlops', o.targetFlops);
  checkPositive('minFraction', o.minFraction, { max: 1 });
  checkPositive('maxFraction', o.maxFraction, { max: 1 });
  checkPositive('budgetsPerDecade', o.budgetsPerDecade, { int: true, max: 20 });
  checkPositive('modelsPerBudget', o.modelsPerBudget, { int: true, max: WIDTH_LADDER.length });
  checkPositive('tokensPerParam', o.tokensPerParam);
  checkPositive('minTokens', o.minTokens);
  if (o.minFraction > o.maxFraction) throw new InputError(`planSweep: minFraction ${o.minFraction} is above maxFraction ${o.maxFraction}`);
  const base = opts.base ?? defaultBase();

  const lo = Math.log10(o.targetFlops * o.minFraction), hi = Math.log10(o.targetFlops * o.maxFraction);
  const steps = Math.floor((hi - lo) * o.budgetsPerDecade + 1e-9);
  const budgets = [...Array(steps + 1).keys()].map((k) => Math.pow(10, lo + k / o.budgetsPerDecade));
  if (budgets.length < 3) throw new InputError(`planSweep: only ${budgets.length} compute budget(s) between ${fmtFlops(budgets[0]!)} and ${fmtFlops(o.targetFlops * o.maxFraction)}; a law with 3 parameters needs more (raise budgetsPerDecade or widen the fractions)`);

  const runs: PlannedRun[] = [];
  budgets.forEach((B, k) => {
    const i0 = optimalIndex(base, B, o.tokensPerParam);
    const m = o.modelsPerBudget;
    const first = Math.max(0, Math.min(WIDTH_LADDER.length - m, i0 - Math.floor((m - 1) / 2)));
    const chosen: PlannedRun[] = [];
    for (let i = first; i < first + m; i++) {
      const run = runFor(`b${k}-w${WIDTH_LADDER[i]}`, base, WIDTH_LADDER[i]!, B);
      if (run.tokens >= o.minTokens) chosen.push(run);
    }
    if (chosen.length === 0) throw new InputError(`planSweep: budget ${fmtFlops(B)} gives every candidate model fewer than ${o.minTokens} tokens; raise minFraction or the target`);
    runs.push(...chosen);
  });
  const target = runFor('target', base, WIDTH_LADDER[optimalIndex(base, o.targetFlops, o.tokensPerParam)]!, o.targetFlops);
  return { version: 1, createdAt: new Date().toISOString(), targetFlops: o.targetFlops, options: o, shapeRule: SHAPE_RULE, base, budgets, runs, target, recipe: opts.recipe ?? {} };
}

/**
 * Learning-rate sweep at several widths for the maximal-update transfer check: one planned run
 * per (width, lr), with `lr` set. Depth is held fixed (muP's guarantee is across width; by
 * default the depth the shape rule gives the smallest width, at least 2) and every run sees the
 * same number of tokens, so only width and learning rate vary. The base uses muP with its base
 * width at the smallest width.
 */
export function lrSweepPlan(widths: number[], lrs: number[], opts: { tokens?: number; depth?: number; base?: BaseConfig } = {}): PlannedRun[] {
  if (widths.length < 2) throw new InputError(`lrSweepPlan: need at least 2 widths, got ${widths.length}`);
  if (lrs.length < 3) throw new InputError(`lrSweepPlan: need at least 3 learning rates to locate an optimum, got ${lrs.length}`);
  for (const lr of lrs) if (!(lr > 0 && Number.isFinite(lr))) throw new InputError(`lrSweepPlan: learning rates must be positive, got ${lr}`);
  const sortedW = [...new Set(widths)].sort((a, b) => a - b);
  const base = opts.base ?? defaultBase({ baseWidth: sortedW[0]! });
  const depth = opts.depth ?? Math.max(2, layersFor(sortedW[0]!));
  const tokens = opts.tokens ?? 1 << 20;
  if (!(Number.isInteger(tokens) && tokens > 0)) throw new InputError(`lrSweepPlan: tokens must be a positive integer, got ${tokens}`);
  const out: PlannedRun[] = [];
  for (const w of sortedW) {
    const config = shapeConfig(base, w, depth);
    const c = shapeCounts(config);
    for (const lr of [...new Set(lrs)].sort((a, b) => a - b)) {
      const flops = tokens * c.flopsPerToken;
      out.push({ id: `w${w}-lr${lr.toExponential(2)}`, budget: flops, width: w, depth, heads: config.heads, tokens, flops, flopsPerToken: c.flopsPerToken, params: c.params, paramsTotal: c.paramsTotal, config, lr });
    }
  }
  return out;
}

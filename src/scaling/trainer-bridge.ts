/**
 * The scaling study's trainer: each planned run is a complete pretraining run of its own length
 * (warm-up and cosine decay stretched to its token count) with one shared recipe, measured on
 *
 *  - validation loss on a HELD-OUT corpus: whole packages of the embedded corpus (about 10% of
 *    them, chosen by a hash of the package name) never enter training — the mirror of predicting
 *    the loss on an unseen codebase. The same fixed windows are scored for every run;
 *  - a capability with automatically checked answers, mixed into training: single-digit addition
 *    lines "a+b=c" (the 100 problems). A problem's pass rate is the probability that a
 *    temperature-1 sample of the model writes exactly the right answer and the end of line —
 *    computed exactly from the model's token probabilities (no sampling noise). Rates below 1e-5
 *    count as 0 ("not solved in 100,000 tries"), so the fit keeps the problems every model solves.
 *
 * Study data (tokenizer, shards, held-out split, arithmetic text) is built once per study under
 * DIR/data and reused.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Tensor, noGrad, Rng } from '../tensor/index.ts';
import * as ops from '../tensor/ops.ts';
import type { GPT } from '../models/gpt.ts';
import { flopsPerToken, type GPTConfig } from '../models/config.ts';
import { defaultCorpus } from '../io/files.ts';
import { prepareShards, TokenWindows } from '../data/shards.ts';
import { trainBpe } from '../tokenizer/train.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { train, evaluate } from '../train/trainer.ts';
import { ensureDir } from '../util/fs.ts';
import { InputError } from '../util/errors.ts';
import type { PlannedRun } from './plan.ts';
import type { TrainOutcome } from './run.ts';

/** Context of a training run inside a study. */
export interface TrainContext {
  /** The study directory (for data, checkpoints and logs). */
  dir: string;
  /** The recipe every run of the study shares; see RecipeSchema for the keys and defaults. */
  recipe: Record<string, unknown>;
}

export const RecipeSchema = z.object({
  lr: z.number().positive().default(1e-2),
  batchSize: z.number().int().positive().default(8),
  warmupFraction: z.number().min(0).max(0.5).default(0.05),
  minLrFraction: z.number().min(0).max(1).default(0.1),
  weightDecay: z.number().min(0).default(0.1),
  seed: z.number().int().default(1),
  /** Fixed held-out windows scored for the final validation loss. */
  evalWindows: z.number().int().positive().default(128),
  /** Addition problems scored for the capability. */
  problems: z.number().int().positive().default(100),
  /** Addition lines mixed into the training text. */
  arithmeticLines: z.number().int().min(0).default(100000),
  /** Bytes of the embedded corpus to use. */
  corpusBytes: z.number().int().positive().default(12 * 1024 * 1024),
  /** Percent of packages held out. */
  heldoutPercent: z.number().min(1).max(50).default(10),
}).passthrough();
export type Recipe = z.infer<typeof RecipeSchema>;

export function parseRecipe(r: Record<string, unknown>): Recipe {
  const p = RecipeSchema.safeParse(r);
  if (!p.success) throw new InputError(`scaling recipe: ${p.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return p.data;
}

/** The npm package a node_modules path belongs to ('@scope/name' or 'name'). */
export function packageOf(path: string): string {
  const parts = path.split('/');
  const i = parts.lastIndexOf('node_modules');
  if (i < 0 || i + 1 >= parts.length) return path;
  return parts[i + 1]!.startsWith('@') ? `${parts[i + 1]}/${parts[i + 2]}` : parts[i + 1]!;
}

function heldOut(pkg: string, percent: number): boolean {
  return createHash('sha256').update(pkg).digest().readUInt32LE(0) % 100 < percent;
}

/** Deterministic single-digit addition problems: [prompt "a+b=", answer "c\n"]; n = 100 gives each problem once. */
export function additionProblems(n: number, seed: number): [string, string][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const [a, b] = n === 100 ? [Math.floor(i / 10), i % 10] : [rng.int(10), rng.int(10)];
    return [`${a}+${b}=`, `${a + b}\n`];
  });
}

export interface StudyData { dir: string; tokenizer: Tokenizer; problems: [string, string][] }

/** Builds (once) the study's tokenizer, shards with the held-out packages as the validation split, and the problems. */
export async function ensureStudyData(studyDir: string, cfg: GPTConfig, recipe: Recipe): Promise<StudyData> {
  const dir = join(studyDir, 'data', `v${cfg.vocabSize}`);
  const problems = additionProblems(recipe.problems, 777);
  if (existsSync(join(dir, 'manifest.json')) && existsSync(join(dir, 'tokenizer.json'))) {
    return { dir, tokenizer: Tokenizer.load(dir), problems };
  }
  ensureDir(dir);
  const files = defaultCorpus(process.cwd(), recipe.corpusBytes);
  const arith = join(dir, 'arithmetic.txt');
  writeFileSync(arith, additionProblems(recipe.arithmeticLines, 4242).map(([p, a]) => p + a).join(''));
  const inputs = [...files, arith];
  const isVal = (f: string) => f !== arith && heldOut(packageOf(f), recipe.heldoutPercent);
  const tok = await trainBpe({ inputs: inputs.filter((f) => !isVal(f)), vocabSize: cfg.vocabSize, progress: false, name: `scaling-${cfg.vocabSize}` });
  tok.save(dir);
  const m = prepareShards({ files: inputs, tokenizer: tok, outDir: dir, quiet: true, splitOf: (f) => (isVal(f) ? 'val' : 'train') });
  if (m.val.tokens === 0) throw new InputError('scaling data: no held-out package in the corpus');
  return { dir, tokenizer: tok, problems };
}

/**
 * Per-problem probability that a temperature-1 sample writes exactly the answer:
 * exp(sum of the answer tokens' log-probabilities given the prompt), one batched forward.
 */
export function passRates(model: GPT, tok: Tokenizer, problems: [string, string][]): number[] {
  const eot = tok.specialTokenId('<|endoftext|>');
  const seqs = problems.map(([p, a]) => {
    const pi = tok.encode(p), ai = tok.encode(a);
    return { ids: [eot, ...pi, ...ai], answerStart: 1 + pi.length };
  });
  const T = Math.max(...seqs.map((s) => s.ids.length)) - 1;
  const B = seqs.length, V = model.config.vocabSize;
  const ids = new Int32Array(B * T), tg = new Int32Array(B * T).fill(-100);
  seqs.forEach((s, b) => {
    for (let t = 0; t < s.ids.length - 1; t++) {
      ids[b * T + t] = s.ids[t]!;
      if (t + 1 >= s.answerStart) tg[b * T + t] = s.ids[t + 1]!;
    }
  });
  return noGrad(() => {
    const was = model.training;
    model.training = false;
    const logits = model.forward(Tensor.from(ids, [B, T]));
    model.training = was;
    const nll = ops.crossEntropy(ops.reshape(logits, [-1, V]), Tensor.from(tg, [B * T]), { reduction: 'none', ignoreIndex: -100 }).toArray();
    return seqs.map((_, b) => {
      let s = 0;
      for (let t = 0; t < T; t++) s += nll[b * T + t]!;
      const p = Math.exp(-s);
      return p < 1e-5 ? 0 : p;
    });
  });
}

/** Trains one planned run and measures it. */
export async function trainRun(run: PlannedRun, ctx: TrainContext): Promise<TrainOutcome> {
  const recipe = parseRecipe(ctx.recipe);
  const data = await ensureStudyData(ctx.dir, run.config, recipe);
  const T = run.config.contextLength, B = recipe.batchSize;
  const steps = Math.max(1, Math.round(run.tokens / (B * T)));
  const lr = run.lr ?? recipe.lr;
  const t0 = Date.now();
  const r = await train({
    config: {
      model: run.config, steps, batchSize: B, gradAccum: 1, lr, minLr: lr * recipe.minLrFraction,
      warmupSteps: Math.round(steps * recipe.warmupFraction), weightDecay: recipe.weightDecay, beta1: 0.9, beta2: 0.95,
      eps: 1e-8, gradClip: 1, evalEvery: 0, evalBatches: 1, logEvery: Math.max(1, Math.floor(steps / 20)), checkpointEvery: 0, seed: recipe.seed,
    },
    dataDir: data.dir, outDir: join(ctx.dir, 'runs', run.id), quiet: true, peakFlops: 1,
  });
  const val = new TokenWindows(data.dir, 'val', T, 0);
  const windows = Math.ceil(recipe.evalWindows / B) * B;
  const finalValLoss = evaluate(r.model, val, windows / B, B);
  val.close();
  const perProblemPass = passRates(r.model, data.tokenizer, data.problems);
  const tokens = steps * B * T;
  return {
    finalValLoss, passRate: perProblemPass.reduce((s, x) => s + x, 0) / perProblemPass.length, perProblemPass,
    tokens, flops: tokens * flopsPerToken(run.config), seconds: (Date.now() - t0) / 1000,
  };
}

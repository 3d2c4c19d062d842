/**
 * The pretraining loop: AdamW (decay on matrices), warmup + cosine schedule, gradient clipping
 * and accumulation, periodic validation, metrics.jsonl, atomic checkpoints and exact resume.
 *
 * Exact resume: everything a step depends on — weights, AdamW moments and step, the data
 * generator's state, the step counter (dropout seeds derive from it) — is saved in one
 * atomic state file. A resumed run replays the same batches with the same numbers, so it logs
 * the same losses bit for bit as an uninterrupted run (tested).
 */
import { yieldToEventLoop } from '../util/event-loop.ts';
import { existsSync, readFileSync, writeFileSync, appendFileSync, openSync, fsyncSync, closeSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { Tensor, noGrad, inStep, currentBackend } from '../tensor/index.ts';
import { GPT } from '../models/gpt.ts';
import { MODEL_PRESETS, parseGPTConfig, type GPTConfig } from '../models/config.ts';
import { TokenWindows } from '../data/shards.ts';
import { AdamW, learningRate } from './optimizer.ts';
import { saveModel, saveState, loadState, checkResumeRecipe } from './checkpoint.ts';
import { Progress } from '../util/progress.ts';
import { InputError } from '../util/errors.ts';
import { ensureDir, writeFileAtomic } from '../util/fs.ts';
import { measurePeakFlops } from './peak.ts';

/** Optimizer, schedule and bookkeeping fields shared by every training loop's config (text and multimodal). */
export const SCHEDULE_FIELDS = {
  steps: z.number().int().min(1),
  batchSize: z.number().int().min(1),
  lr: z.number().positive(),
  minLr: z.number().min(0),
  warmupSteps: z.number().int().min(0),
  weightDecay: z.number().min(0),
  beta1: z.number().min(0).lt(1),
  beta2: z.number().min(0).lt(1),
  eps: z.number().positive(),
  gradClip: z.number().min(0),
  evalEvery: z.number().int().min(0),
  logEvery: z.number().int().min(1),
  checkpointEvery: z.number().int().min(0),
  seed: z.number().int(),
};

export const TrainConfigSchema = z.object({
  model: z.unknown(),
  ...SCHEDULE_FIELDS,
  /** Micro-batches per optimizer step. */
  gradAccum: z.number().int().min(1),
  evalBatches: z.number().int().min(1),
}).strict();

export type TrainConfig = Omit<z.infer<typeof TrainConfigSchema>, 'model'> & { model: GPTConfig };

const TRAIN_DEFAULTS = {
  gradAccum: 1, minLr: 0, weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, gradClip: 1,
  evalBatches: 8, logEvery: 10, seed: 1337,
};

/** Training presets: model preset + schedule. */
export const TRAIN_PRESETS: Record<string, Omit<TrainConfig, 'model'> & { model: string }> = {
  tiny: { ...TRAIN_DEFAULTS, model: 'tiny', steps: 60, batchSize: 4, lr: 3e-3, minLr: 3e-4, warmupSteps: 5, evalEvery: 20, evalBatches: 2, logEvery: 5, checkpointEvery: 20 },
  small: { ...TRAIN_DEFAULTS, model: 'small', steps: 2000, batchSize: 16, lr: 2e-3, minLr: 2e-4, warmupSteps: 60, evalEvery: 200, checkpointEvery: 200 },
  base: { ...TRAIN_DEFAULTS, model: 'base', steps: 2000, batchSize: 16, lr: 1e-3, minLr: 1e-4, warmupSteps: 100, evalEvery: 200, checkpointEvery: 200 },
};

/** Applies `key=value` overrides (dotted keys reach into `model`); values parse as JSON when they can. */
export function applyOverrides(base: Record<string, unknown>, sets: string[]): Record<string, unknown> {
  const out = structuredClone(base);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new InputError(`--set '${s}': expected key=value`);
    const path = s.slice(0, eq).split('.'), raw = s.slice(eq + 1);
    let value: unknown;
    try { value = JSON.parse(raw); } catch { value = raw; }
    let obj = out as Record<string, unknown>;
    for (const k of path.slice(0, -1)) {
      if (typeof obj[k] !== 'object' || obj[k] === null) throw new InputError(`--set '${s}': '${k}' is not a section of the config`);
      obj = obj[k] as Record<string, unknown>;
    }
    const last = path[path.length - 1]!;
    if (!(last in obj)) throw new InputError(`--set '${s}': unknown key '${path.join('.')}'`);
    obj[last] = value;
  }
  return out;
}

/** Resolves a preset name or a JSON file into a validated TrainConfig (with overrides and the tokenizer's vocabulary). */
export function resolveTrainConfig(nameOrFile: string, sets: string[], vocabSize?: number): TrainConfig {
  let raw: Record<string, unknown>;
  if (TRAIN_PRESETS[nameOrFile]) {
    const p = TRAIN_PRESETS[nameOrFile]!;
    raw = { ...p, model: { ...MODEL_PRESETS[p.model]! } };
  } else if (existsSync(nameOrFile)) {
    try { raw = JSON.parse(readFileSync(nameOrFile, 'utf8')); } catch (e) { throw new InputError(`${nameOrFile}: not valid JSON (${(e as Error).message})`); }
    if (typeof raw.model === 'string') {
      if (!MODEL_PRESETS[raw.model]) throw new InputError(`${nameOrFile}: unknown model preset '${raw.model}'`);
      raw.model = { ...MODEL_PRESETS[raw.model]! };
    }
  } else {
    throw new InputError(`--config '${nameOrFile}' is neither a preset (${Object.keys(TRAIN_PRESETS).join(', ')}) nor a file`);
  }
  raw = applyOverrides(raw, sets);
  if (vocabSize !== undefined && raw.model && typeof raw.model === 'object') (raw.model as Record<string, unknown>).vocabSize = vocabSize;
  const r = TrainConfigSchema.safeParse(raw);
  if (!r.success) throw new InputError(`train config: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { ...r.data, model: parseGPTConfig(r.data.model, 'train config model') };
}

export interface MetricsRow {
  step: number; tokens: number; loss: number; lr: number; grad_norm: number; tokens_per_s: number; mfu: number; val_loss?: number;
}

export interface TrainOptions {
  config: TrainConfig;
  dataDir: string;
  outDir: string;
  /** Path of the tokenizer.json to copy into checkpoints. */
  tokenizerJson?: string;
  resume?: boolean;
  quiet?: boolean;
  /** Stop after this many steps in this process (tests simulate interruptions). */
  stopAfter?: number;
  /** Called after each logged row. */
  onLog?: (row: MetricsRow) => void;
  /** Peak FLOP/s for MFU; measured when omitted. */
  peakFlops?: number;
}

/** Mean loss over fixed validation windows. */
export function evaluate(model: GPT, val: TokenWindows, batches: number, batchSize: number): number {
  const T = val.seqLen;
  const all = val.fixed(batches * batchSize);
  const was = model.training;
  model.training = false;
  let total = 0;
  noGrad(() => {
    for (let b = 0; b < batches; b++) {
      const sl = (a: Int32Array) => a.subarray(b * batchSize * T, (b + 1) * batchSize * T);
      total += model.loss(Tensor.from(sl(all.ids), [batchSize, T]), Tensor.from(sl(all.targets), [batchSize, T])).item();
    }
  });
  model.training = was;
  return total / batches;
}

/** Drops metrics rows logged after `step` (they belong to work a resume will redo). */
function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, 'utf8').split('\n').filter((l) => {
    if (!l.trim()) return false;
    try { return (JSON.parse(l) as MetricsRow).step <= step; } catch { return false; }
  });
  writeFileAtomic(path, keep.map((l) => l + '\n').join(''));
}

function appendLine(path: string, line: string): void {
  appendFileSync(path, line + '\n');
  const fd = openSync(path, 'r+');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

/** Runs (or resumes) a training run; returns the trained model and the last metrics row. */
export async function train(o: TrainOptions): Promise<{ model: GPT; last: MetricsRow | null; valLoss: number | null }> {
  const cfg = o.config, mc = cfg.model;
  ensureDir(o.outDir);
  const T = mc.contextLength, B = cfg.batchSize;
  const model = new GPT(mc, cfg.seed);
  const opt = new AdamW(model.params(), { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay, gradClip: cfg.gradClip });
  const data = new TokenWindows(o.dataDir, 'train', T, cfg.seed);
  if (data.manifest.vocabSize !== mc.vocabSize) throw new InputError(`${o.dataDir}: shards use a vocabulary of ${data.manifest.vocabSize}, the model ${mc.vocabSize}`);
  const hasVal = data.manifest.val.shards.some((s) => s.tokens > T + 1);
  const val = hasVal ? new TokenWindows(o.dataDir, 'val', T, cfg.seed + 1) : null;
  const metricsPath = join(o.outDir, 'metrics.jsonl');
  const extra = { train: { ...cfg, model: undefined }, data: o.dataDir };

  // Temporary files of a checkpoint write that a crash interrupted are useless: remove them.
  for (const f of readdirSync(o.outDir)) if (/^\..*\.tmp$/.test(f)) rmSync(join(o.outDir, f), { force: true });
  let step = 0, tokens = 0;
  if (o.resume) {
    checkResumeRecipe(o.outDir, extra.train);
    const st = loadState(o.outDir, model, opt);
    if (st) {
      step = st.step; tokens = st.tokens;
      data.rng.setState(st.dataRng);
      truncateMetrics(metricsPath, step);
    } else writeFileSync(metricsPath, '');
  } else writeFileSync(metricsPath, '');

  const peak = o.peakFlops ?? measurePeakFlops();
  const flopsPerToken = model.flopsPerToken();
  const sched = { lr: cfg.lr, minLr: cfg.minLr, warmupSteps: cfg.warmupSteps, totalSteps: cfg.steps };
  const bar = new Progress({ label: 'train', total: cfg.steps, unit: 'step', quiet: o.quiet });
  bar.update(step);
  model.training = true;
  let last: MetricsRow | null = null, valLoss: number | null = null;
  let windowStart = Date.now(), windowTokens = 0;
  const ranThisProcess = { n: 0 };
  const checkpoint = () => {
    saveState(o.outDir, model, opt, { step, tokens, dataRng: data.rng.state() });
    saveModel(o.outDir, model, extra, o.tokenizerJson);
  };

  while (step < cfg.steps) {
    await yieldToEventLoop(); // the buffer pool takes back the last step's storage
    const lr = learningRate(step, sched);
    // Every buffer of the step is reused by the next one as soon as the gradients are cleared.
    const [stepLoss, gradNorm] = inStep(opt.backend, () => {
      let sum = 0;
      for (let micro = 0; micro < cfg.gradAccum; micro++) {
        const batch = data.next(B);
        const loss = model.loss(Tensor.from(batch.ids, [B, T]), Tensor.from(batch.targets, [B, T]), { dropoutSeed: step * 1000 + micro + cfg.seed });
        sum += loss.item() / cfg.gradAccum;
        loss.backward();
      }
      const norm = opt.update(lr, 1 / cfg.gradAccum);
      opt.zeroGrad();
      return [sum, norm] as const;
    });
    step++; tokens += B * T * cfg.gradAccum; windowTokens += B * T * cfg.gradAccum;
    ranThisProcess.n++;

    const doEval = val !== null && cfg.evalEvery > 0 && (step % cfg.evalEvery === 0 || step === cfg.steps);
    if (step % cfg.logEvery === 0 || step === cfg.steps || doEval) {
      const secs = (Date.now() - windowStart) / 1000;
      const tps = secs > 0 ? windowTokens / secs : 0;
      const row: MetricsRow = { step, tokens, loss: stepLoss, lr, grad_norm: gradNorm, tokens_per_s: Math.round(tps), mfu: peak > 0 ? (tps * flopsPerToken) / peak : 0 };
      if (doEval) { valLoss = evaluate(model, val!, cfg.evalBatches, B); row.val_loss = valLoss; }
      appendLine(metricsPath, JSON.stringify(row));
      last = row;
      o.onLog?.(row);
      windowStart = Date.now(); windowTokens = 0;
    }
    bar.update(step, { loss: stepLoss, ...(valLoss !== null ? { val: valLoss } : {}) });
    if ((cfg.checkpointEvery > 0 && step % cfg.checkpointEvery === 0) || step === cfg.steps) checkpoint();
    if (o.stopAfter !== undefined && ranThisProcess.n >= o.stopAfter) break;
  }
  bar.done();
  data.close(); val?.close();
  return { model, last, valLoss };
}

/** The backend line for logs. */
export function backendLine(): string {
  return currentBackend().describe();
}

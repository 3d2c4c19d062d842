/**
 * The reward model: the language model with a scalar head, trained on preference pairs.
 *
 * The score of a (prompt, response) is a Linear C→1 on the final hidden state of the last token
 * of the rendered conversation (the response's closing `<|end|>`). Training minimises the
 * Bradley–Terry loss −log σ(r_chosen − r_rejected) = softplus(r_rejected − r_chosen), averaged
 * over pairs; accuracy (r_chosen > r_rejected) is measured on held-out pairs.
 *
 * On disk a reward model is a normal model directory whose model.safetensors also holds
 * `reward_head.weight` (1, C) and `reward_head.bias` (1); config.json gets `kind:
 * "reward-model"` and `rewardHead: { mean, std }`, the mean and standard deviation of the
 * scores of the training responses, which consumers (PPO) use to normalise scores. The file
 * still loads as a plain GPT (`loadModel` ignores the extra tensors).
 */
import { yieldToEventLoop } from '../util/event-loop.ts';
import { join } from 'node:path';
import { Tensor, noGrad, inStep, ops } from '../tensor/index.ts';
import { hashAt, Rng } from '../tensor/rng.ts';
import type { GPT } from '../models/gpt.ts';
import { Linear, type Param } from '../nn/layers.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors.ts';
import { loadWeightsInto } from '../train/checkpoint.ts';
import { writeJsonAtomic, ensureDir, writeFileAtomic } from '../util/fs.ts';
import { InputError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';
import { readFileSync } from 'node:fs';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import type { Message, Preference } from './loaders.ts';
import {
  appendMetrics, batchHidden, EpochSampler, fineTuneLr, fineTuneOptimizer, gatherRows, hasImages, holdOut, loadChatModel, packBatch, pairBatch, renderPair, resetMetrics,
  softplusTensor, type ChatModel, type Sequence, type SeqBatch,
} from './train-utils.ts';

/** Score normalisation stored with the head. */
export interface RewardNorm { mean: number; std: number }

/** A GPT with a scalar reward head. */
export class RewardModel {
  readonly head: Linear;
  norm: RewardNorm = { mean: 0, std: 1 };

  constructor(readonly gpt: GPT, readonly tok: Tokenizer, seed = 0) {
    this.head = new Linear('reward_head', gpt.config.width, 1, { bias: true, std: gpt.config.initStd, rng: new Rng(hashAt(seed, 77)) });
  }

  /** The GPT's parameters and the head's. */
  params(): Param[] {
    return [...this.gpt.params(), ...this.head.params(true)];
  }

  /** Raw scores (one per sequence) of a padded or packed batch: the head on each sequence's last token. */
  scores(batch: SeqBatch): Tensor {
    const h = batchHidden(this.gpt, batch); // (B·T, C)
    return ops.reshape(this.head.forward(gatherRows(h, batch.last)), [batch.last.length]);
  }

  /** The rendered sequence of a (prompt, response); the response is one assistant message or a message list. */
  sequence(prompt: string | readonly Message[], response: string | readonly Message[]): Sequence {
    const p: Message[] = typeof prompt === 'string' ? [{ role: 'user', content: [{ type: 'text', text: prompt }] }] : [...prompt];
    const r: Message[] = typeof response === 'string' ? [{ role: 'assistant', content: [{ type: 'text', text: response }] }] : [...response];
    return renderPair(this.tok, p, r);
  }

  /**
   * Scores (prompt, response) items without gradients, `batchSize` at a time; normalised with
   * the stored mean/std unless `raw`. Conversations longer than the context keep their last tokens.
   */
  scoreMany(items: readonly { prompt: string | readonly Message[]; response: string | readonly Message[] }[], opts: { batchSize?: number; raw?: boolean } = {}): number[] {
    const bs = opts.batchSize ?? 32, T = this.gpt.config.contextLength, pad = this.tok.specialTokenId('<|pad|>');
    const out: number[] = [];
    noGrad(() => {
      for (let i = 0; i < items.length; i += bs) {
        const seqs = items.slice(i, i + bs).map((it) => clipLeft(this.sequence(it.prompt, it.response), T));
        // each batch's activations go back to the buffer pool at once (only host numbers leave)
        const s = inStep(this.gpt.wte.backend, () => this.scores(packBatch(seqs, pad, T)).toArray());
        for (const x of s) out.push(opts.raw ? x : (x - this.norm.mean) / this.norm.std);
      }
    });
    return out;
  }

  /** Writes the reward model (GPT + head) as a model directory. */
  save(dir: string, extra: Record<string, unknown>, tokenizerJson: string): void {
    ensureDir(dir);
    const tensors: Record<string, TensorToWrite> = {};
    for (const [name, t] of this.gpt.namedTensors()) tensors[name] = { shape: t.shape, data: Float32Array.from(t.toArray()) };
    for (const p of this.head.params()) tensors[p.name] = { shape: p.tensor.shape, data: Float32Array.from(p.tensor.toArray()) };
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', producer: 'lumen' });
    writeJsonAtomic(join(dir, 'config.json'), { ...extra, kind: 'reward-model', rewardHead: this.norm, model: this.gpt.config });
    if (tokenizerJson !== join(dir, 'tokenizer.json')) writeFileAtomic(join(dir, 'tokenizer.json'), readFileSync(tokenizerJson));
  }

  /** Loads a reward model directory written by `save`. */
  static load(dir: string): RewardModel {
    const cm: ChatModel = loadChatModel(dir, '--reward-model');
    if (cm.config['kind'] !== 'reward-model') throw new InputError(`--reward-model ${dir}: config.json has kind ${JSON.stringify(cm.config['kind'] ?? null)}, expected "reward-model" (train one with 'lumen rm')`);
    const rm = new RewardModel(cm.model, cm.tok);
    const p = join(dir, 'model.safetensors');
    loadWeightsInto(new Map(rm.head.params().map((q) => [q.name, q.tensor])), readSafetensors(p).tensors, p);
    const n = cm.config['rewardHead'] as RewardNorm | undefined;
    if (n && Number.isFinite(n.mean) && n.std > 0) rm.norm = { mean: n.mean, std: n.std };
    return rm;
  }
}

/** Keeps the last `T` tokens of a sequence (the scored end). */
function clipLeft(s: Sequence, T: number): Sequence {
  return s.ids.length <= T ? s : { ids: s.ids.slice(-T), learn: s.learn.slice(-T) };
}

/** Bradley–Terry loss: mean over pairs of softplus(r_rejected − r_chosen). rc, rr: (P). */
export function bradleyTerryLoss(rc: Tensor, rr: Tensor): Tensor {
  return ops.mean(softplusTensor(ops.sub(rr, rc)));
}

export interface RewardTrainOptions {
  /** Language model directory to start from (usually the SFT model). */
  modelDir: string;
  outDir: string;
  pairs: readonly Preference[];
  /** Optimizer steps (default 150). */
  steps?: number;
  /** Pairs per step (default 16). */
  batchSize?: number;
  /** Peak learning rate (default 3e-4). */
  lr?: number;
  warmupSteps?: number;
  seed?: number;
  /** Held-out fraction of pairs (default 0.1). */
  valFraction?: number;
  quiet?: boolean;
}

export interface RewardTrainResult {
  rm: RewardModel;
  steps: number;
  trainLoss: number;
  heldOutAccuracy: number;
  heldOutPairs: number;
  heldOutLoss: number;
  /** Held-out accuracy per pair type (generated data carries `meta.pair`). */
  accuracyByType: Record<string, { n: number; accuracy: number }>;
  skipped: number;
  seconds: number;
}

interface PairSeqs { chosen: Sequence; rejected: Sequence; type: string }

/** Trains the reward model; writes the model directory, metrics.jsonl and rm-metrics.json to outDir. */
export async function trainRewardModel(o: RewardTrainOptions): Promise<RewardTrainResult> {
  const steps = o.steps ?? 150, bs = o.batchSize ?? 16, lr = o.lr ?? 3e-4, seed = o.seed ?? 1, warmup = o.warmupSteps ?? 10;
  const cm = loadChatModel(o.modelDir);
  const rm = new RewardModel(cm.model, cm.tok, seed);
  const T = cm.model.config.contextLength, pad = cm.tok.specialTokenId('<|pad|>');
  const all: PairSeqs[] = [];
  let skipped = 0;
  for (const p of o.pairs) {
    if ([p.prompt, p.chosen, p.rejected].some(hasImages)) { skipped++; continue; }
    const c = renderPair(cm.tok, p.prompt, p.chosen), r = renderPair(cm.tok, p.prompt, p.rejected);
    if (c.ids.length > T || r.ids.length > T) { skipped++; continue; }
    const meta = p.extra['meta'] as { pair?: string } | undefined;
    all.push({ chosen: c, rejected: r, type: meta?.pair ?? 'all' });
  }
  if (all.length < 2) throw new InputError(`rm: need at least 2 usable preference pairs, got ${all.length} (${skipped} skipped: images, or longer than the context of ${T})`);
  const split = holdOut(all.length, o.valFraction ?? 0.1, new Rng(hashAt(seed, 21)));
  const train = split.train.map((i) => all[i]!), held = split.held.map((i) => all[i]!);
  const batchOf = (ps: readonly PairSeqs[]) => pairBatch(ps, pad, T);

  ensureDir(o.outDir);
  const metricsPath = join(o.outDir, 'metrics.jsonl');
  resetMetrics(metricsPath);
  const opt = fineTuneOptimizer(rm.params(), lr);
  const sampler = new EpochSampler(train.length, new Rng(hashAt(seed, 22)));
  const bar = new Progress({ label: 'rm', total: steps, unit: 'step', quiet: o.quiet });
  const t0 = Date.now();
  let last = NaN;
  cm.model.training = true;
  for (let step = 0; step < steps; step++) {
    await yieldToEventLoop(); // the buffer pool takes back the last step's storage
    const ps = sampler.next(Math.min(bs, train.length)).map((i) => train[i]!);
    const P = ps.length;
    const rate = fineTuneLr(step, lr, steps, warmup);
    // Every buffer of the step is reused by the next one as soon as the gradients are cleared.
    const [sv, gn] = inStep(opt.backend, () => {
      const s = rm.scores(batchOf(ps)); // (2P): chosen then rejected
      const loss = bradleyTerryLoss(ops.narrow(s, 0, 0, P), ops.narrow(s, 0, P, P));
      opt.zeroGrad();
      loss.backward();
      const norm = opt.update(rate);
      last = loss.item();
      opt.zeroGrad();
      return [s.toArray(), norm] as const;
    });
    let acc = 0;
    for (let i = 0; i < P; i++) acc += sv[i]! > sv[P + i]! ? 1 : 0;
    appendMetrics(metricsPath, { step: step + 1, loss: last, accuracy: acc / P, lr: rate, grad_norm: gn });
    bar.update(step + 1, { loss: last.toFixed(3), acc: (acc / P).toFixed(2) });
  }
  bar.done();
  cm.model.training = false;

  // Held-out accuracy and loss; score statistics of the training responses for normalisation.
  const evalPairs = (ps: readonly PairSeqs[]) => {
    const c: number[] = [], r: number[] = [];
    noGrad(() => {
      for (let i = 0; i < ps.length; i += bs) {
        const chunk = ps.slice(i, i + bs);
        const s = rm.scores(batchOf(chunk)).toArray();
        for (let j = 0; j < chunk.length; j++) { c.push(s[j]!); r.push(s[chunk.length + j]!); }
      }
    });
    return { c, r };
  };
  const h = evalPairs(held);
  const byType: Record<string, { n: number; accuracy: number }> = {};
  let correct = 0, hl = 0;
  held.forEach((p, i) => {
    const ok = h.c[i]! > h.r[i]! ? 1 : 0;
    correct += ok;
    const d = h.r[i]! - h.c[i]!;
    hl += d > 0 ? d + Math.log1p(Math.exp(-d)) : Math.log1p(Math.exp(d));
    const b = (byType[p.type] ??= { n: 0, accuracy: 0 });
    b.accuracy = (b.accuracy * b.n + ok) / (b.n + 1); b.n++;
  });
  const tr = evalPairs(train.slice(0, 256));
  const scores = [...tr.c, ...tr.r];
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, scores.length - 1)) || 1;
  rm.norm = { mean, std };
  const heldOutAccuracy = held.length ? correct / held.length : NaN;
  const seconds = (Date.now() - t0) / 1000;
  const summary = {
    steps, batchSize: bs, lr, seed, trainPairs: train.length, heldOutPairs: held.length, skipped,
    trainLoss: last, heldOutLoss: held.length ? hl / held.length : NaN, heldOutAccuracy, accuracyByType: byType,
    scoreMean: mean, scoreStd: std, from: o.modelDir, seconds,
  };
  const { model: _m, kind: _k, ...rest } = cm.config;
  rm.save(o.outDir, { ...rest, rm: summary }, join(o.modelDir, 'tokenizer.json'));
  writeJsonAtomic(join(o.outDir, 'rm-metrics.json'), summary);
  return { rm, steps, trainLoss: last, heldOutAccuracy, heldOutPairs: held.length, heldOutLoss: summary.heldOutLoss, accuracyByType: byType, skipped, seconds };
}

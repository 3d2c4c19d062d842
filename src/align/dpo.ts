/**
 * Direct preference optimisation (DPO, Rafailov et al. 2023): the policy is trained directly on
 * preference pairs, against a frozen reference (the starting model), with
 *
 *   m = (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x)),   L = −log σ(β·m)
 *
 * where log π(y|x) sums the response tokens' log-probabilities (the rendered assistant
 * message and its `<|end|>`). The reference never changes, so its log-probabilities of every
 * pair are computed once, before the first update, from the starting weights. Logged per step:
 * loss, preference accuracy (m > 0), the implicit rewards β·(log π − log π_ref) of chosen and
 * rejected responses and their margin; held-out accuracy at the end (dpo-metrics.json).
 */
import { yieldToEventLoop } from '../util/event-loop.ts';
import { join } from 'node:path';
import { Tensor, noGrad, inStep, ops } from '../tensor/index.ts';
import { hashAt, Rng } from '../tensor/rng.ts';
import type { GPT } from '../models/gpt.ts';
import { saveModel } from '../train/checkpoint.ts';
import { Progress } from '../util/progress.ts';
import { InputError } from '../util/errors.ts';
import { ensureDir, writeJsonAtomic } from '../util/fs.ts';
import type { Preference } from './loaders.ts';
import {
  appendMetrics, EpochSampler, fineTuneLr, fineTuneOptimizer, hasImages, holdOut, loadChatModel, pairBatch, renderPair, resetMetrics, softplusTensor,
  sumPerSequence, targetRows, tokenLogprobs, type Sequence, type SeqBatch,
} from './train-utils.ts';

/** Sequence log-probabilities (one per sequence of a padded or packed batch) of the learned tokens, with gradients. */
export function sequenceLogprobs(model: GPT, batch: SeqBatch): Tensor {
  const tr = targetRows(batch);
  const { logp } = tokenLogprobs(model, batch, tr);
  return sumPerSequence(logp, tr.seqOf, batch.last.length);
}

/**
 * DPO loss (mean over P pairs) from policy and reference sequence log-probs, each (P).
 * Returns the loss tensor and the per-pair margins m (host numbers).
 */
export function dpoLoss(policyChosen: Tensor, policyRejected: Tensor, refChosen: Tensor, refRejected: Tensor, beta: number): { loss: Tensor; margins: Float32Array } {
  if (!(beta > 0)) throw new InputError(`dpo: beta must be > 0, got ${beta}`);
  const m = ops.sub(ops.sub(policyChosen, refChosen), ops.sub(policyRejected, refRejected)); // (P)
  const loss = ops.mean(softplusTensor(ops.scalar('mul', m, -beta)));
  return { loss, margins: Float32Array.from(m.toArray()) };
}

export interface DpoOptions {
  modelDir: string;
  outDir: string;
  pairs: readonly Preference[];
  /** β, the strength of the pull towards the reference (default 0.1). */
  beta?: number;
  /** Optimizer steps (default 120). */
  steps?: number;
  /** Pairs per step (default 16). */
  batchSize?: number;
  /** Peak learning rate (default 3e-5). */
  lr?: number;
  warmupSteps?: number;
  seed?: number;
  /** Held-out fraction (default 0.1). */
  valFraction?: number;
  /**
   * Weight of an added negative log-likelihood of the chosen responses (per token), which keeps
   * the chosen responses likely while the margin grows ("RPO", Pang et al. 2024); 0 = plain DPO.
   */
  sftCoef?: number;
  quiet?: boolean;
}

export interface DpoResult { model: GPT; steps: number; trainLoss: number; heldOutAccuracy: number; heldOutPairs: number; seconds: number }

interface PairSeqs { chosen: Sequence; rejected: Sequence; refChosen: number; refRejected: number }

/** Trains the policy with DPO; writes the model, metrics.jsonl and dpo-metrics.json to outDir. */
export async function trainDpo(o: DpoOptions): Promise<DpoResult> {
  const beta = o.beta ?? 0.1, sftCoef = o.sftCoef ?? 0, steps = o.steps ?? 120, bs = o.batchSize ?? 16, lr = o.lr ?? 3e-5, seed = o.seed ?? 1, warmup = o.warmupSteps ?? 10;
  const cm = loadChatModel(o.modelDir);
  const model = cm.model, T = model.config.contextLength, pad = cm.tok.specialTokenId('<|pad|>');
  const all: PairSeqs[] = [];
  let skipped = 0;
  for (const p of o.pairs) {
    if ([p.prompt, p.chosen, p.rejected].some(hasImages)) { skipped++; continue; }
    const c = renderPair(cm.tok, p.prompt, p.chosen), r = renderPair(cm.tok, p.prompt, p.rejected);
    if (c.ids.length > T || r.ids.length > T) { skipped++; continue; }
    all.push({ chosen: c, rejected: r, refChosen: 0, refRejected: 0 });
  }
  if (all.length < 2) throw new InputError(`dpo: need at least 2 usable preference pairs, got ${all.length} (${skipped} skipped: images, or longer than the context of ${T})`);
  const batchOf = (ps: readonly PairSeqs[]) => pairBatch(ps, pad, T);
  // The frozen reference = the starting weights: score every pair once before training.
  const bar0 = new Progress({ label: 'dpo ref', total: all.length, unit: 'pair', quiet: o.quiet });
  noGrad(() => {
    for (let i = 0; i < all.length; i += 32) {
      const chunk = all.slice(i, i + 32);
      const lp = sequenceLogprobs(model, batchOf(chunk)).toArray();
      chunk.forEach((p, j) => { p.refChosen = lp[j]!; p.refRejected = lp[chunk.length + j]!; });
      bar0.update(Math.min(all.length, i + 32));
    }
  });
  bar0.done();
  const split = holdOut(all.length, o.valFraction ?? 0.1, new Rng(hashAt(seed, 31)));
  const train = split.train.map((i) => all[i]!), held = split.held.map((i) => all[i]!);
  const refOf = (ps: readonly PairSeqs[]) => [Tensor.from(ps.map((p) => p.refChosen)), Tensor.from(ps.map((p) => p.refRejected))] as const;

  ensureDir(o.outDir);
  const metricsPath = join(o.outDir, 'metrics.jsonl');
  resetMetrics(metricsPath);
  const opt = fineTuneOptimizer(model.params(), lr);
  const sampler = new EpochSampler(train.length, new Rng(hashAt(seed, 32)));
  const bar = new Progress({ label: 'dpo', total: steps, unit: 'step', quiet: o.quiet });
  const t0 = Date.now();
  let last = NaN;
  model.training = true;
  for (let step = 0; step < steps; step++) {
    await yieldToEventLoop(); // the buffer pool takes back the last step's storage
    const ps = sampler.next(Math.min(bs, train.length)).map((i) => train[i]!);
    const P = ps.length;
    const batch = batchOf(ps), tr = targetRows(batch);
    const rate = fineTuneLr(step, lr, steps, warmup);
    // Every buffer of the step is reused by the next one as soon as the gradients are cleared.
    const [lpv, margins, gn] = inStep(opt.backend, () => {
      const tok = tokenLogprobs(model, batch, tr).logp; // (n)
      const lp = sumPerSequence(tok, tr.seqOf, batch.last.length); // (2P)
      const [rc, rr] = refOf(ps);
      const d = dpoLoss(ops.narrow(lp, 0, 0, P), ops.narrow(lp, 0, P, P), rc, rr, beta);
      let loss = d.loss;
      if (sftCoef > 0) {
        let chosenTokens = 0;
        for (const q of tr.seqOf) if (q < P) chosenTokens++;
        const nll = ops.scalar('mul', ops.sum(ops.narrow(lp, 0, 0, P)), -sftCoef / Math.max(1, chosenTokens));
        loss = ops.add(loss, nll);
      }
      opt.zeroGrad();
      loss.backward();
      const norm = opt.update(rate);
      last = loss.item();
      opt.zeroGrad();
      return [lp.toArray(), d.margins, norm] as const;
    });
    let acc = 0, rwC = 0, rwR = 0;
    for (let i = 0; i < P; i++) {
      acc += margins[i]! > 0 ? 1 : 0;
      rwC += beta * (lpv[i]! - ps[i]!.refChosen); rwR += beta * (lpv[P + i]! - ps[i]!.refRejected);
    }
    appendMetrics(metricsPath, { step: step + 1, loss: last, accuracy: acc / P, reward_chosen: rwC / P, reward_rejected: rwR / P, margin: (rwC - rwR) / P, lr: rate, grad_norm: gn });
    bar.update(step + 1, { loss: last.toFixed(3), acc: (acc / P).toFixed(2) });
  }
  bar.done();
  model.training = false;
  let correct = 0;
  noGrad(() => {
    for (let i = 0; i < held.length; i += 32) {
      const chunk = held.slice(i, i + 32);
      const lp = sequenceLogprobs(model, batchOf(chunk)).toArray();
      chunk.forEach((p, j) => { if ((lp[j]! - p.refChosen) - (lp[chunk.length + j]! - p.refRejected) > 0) correct++; });
    }
  });
  const seconds = (Date.now() - t0) / 1000;
  const heldOutAccuracy = held.length ? correct / held.length : NaN;
  const summary = { beta, sftCoef, steps, batchSize: bs, lr, seed, trainPairs: train.length, heldOutPairs: held.length, skipped, trainLoss: last, heldOutAccuracy, from: o.modelDir, seconds };
  const { model: _m, ...rest } = cm.config;
  saveModel(o.outDir, model, { ...rest, dpo: summary }, join(o.modelDir, 'tokenizer.json'));
  writeJsonAtomic(join(o.outDir, 'dpo-metrics.json'), summary);
  return { model, steps, trainLoss: last, heldOutAccuracy, heldOutPairs: held.length, seconds };
}

/**
 * Chat supervised fine-tuning (SFT) of a GPT on role-tagged conversations.
 *
 * Each conversation is rendered with the one chat template (src/tokenizer/chat.ts); the loss is
 * the next-token cross-entropy on assistant tokens only (their content and closing `<|end|>`).
 * Several conversations are packed into one context row: positions restart at 0 for each
 * conversation and an additive block-diagonal attention mask (0 inside a conversation, −∞
 * across) keeps them apart, so a packed conversation sees exactly what it would see alone
 * (causality is applied on top by the model). Packing is first-fit over a seeded shuffle,
 * redone each epoch; the order of a step is a pure function of (seed, step), which makes
 * resume exact. Conversations longer than the context are cut to it (if any assistant token
 * remains) and counted.
 *
 * Images: a text-only GPT cannot see images, so conversations with image parts are skipped
 * and counted with a clear message (all-image data is an error). The multimodal model trains
 * with src/train/multimodal.ts; `renderConversation` is the seam it can reuse.
 */
import { yieldToEventLoop } from '../util/event-loop.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, noGrad, inStep, ops } from '../tensor/index.ts';
import { hashAt, Rng } from '../tensor/rng.ts';
import type { GPT } from '../models/gpt.ts';
import { saveModel, saveState, loadState } from '../train/checkpoint.ts';
import { renderChat } from '../tokenizer/chat.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { Progress } from '../util/progress.ts';
import { InputError } from '../util/errors.ts';
import { ensureDir, writeFileAtomic, writeJsonAtomic } from '../util/fs.ts';
import type { Conversation } from './loaders.ts';
import {
  appendMetrics, buildPackedBatch, fineTuneLr, fineTuneOptimizer, hasImages, holdOut, loadChatModel, packRows, resetMetrics, toTemplateMessages, readMetrics,
  type PackedBatch, type Sequence,
} from './train-utils.ts';

export { buildPackedBatch, packRows, type PackedBatch } from './train-utils.ts';

/** A conversation rendered for SFT: ids and the assistant mask. */
export function renderConversation(tok: Tokenizer, c: Conversation): Sequence {
  const r = renderChat(tok, toTemplateMessages(c.messages));
  return { ids: r.ids, learn: r.assistantMask };
}

/**
 * The text conversations rendered for training: those with images are skipped (the model is a
 * text-only GPT), longer ones cut to the context `T`, and those left without an assistant token
 * to learn dropped. `who` names the stage in messages; none usable is an error.
 */
export function renderConversations(tok: Tokenizer, conversations: readonly Conversation[], T: number, who: string, modelDir: string, quiet = false): { seqs: Sequence[]; skippedImages: number; truncated: number } {
  let skippedImages = 0, truncated = 0;
  const seqs: Sequence[] = [];
  for (const c of conversations) {
    if (hasImages(c.messages)) { skippedImages++; continue; }
    let s = renderConversation(tok, c);
    if (s.ids.length > T) { s = { ids: s.ids.slice(0, T), learn: s.learn.slice(0, T) }; truncated++; }
    if (!s.learn.some((x, i) => i > 0 && x)) continue;
    seqs.push(s);
  }
  if (skippedImages > 0 && !quiet) {
    console.error(`${who}: skipped ${skippedImages} conversation(s) with images: ${modelDir} is a text-only GPT (train multimodal models with the multimodal trainer)`);
  }
  if (seqs.length === 0) {
    throw new InputError(`${who}: no usable conversations (${conversations.length} given, ${skippedImages} with images, the rest without assistant tokens inside the context of ${T})`);
  }
  return { seqs, skippedImages, truncated };
}

/** Mean assistant-token loss of a packed batch (with gradients). */
export function sftLoss(model: GPT, batch: PackedBatch): Tensor {
  const { B, T } = batch;
  return model.loss(Tensor.from(batch.ids, [B, T]), Tensor.from(batch.targets, [B, T]), {
    positions: Tensor.from(batch.positions, [B, T]), mask: Tensor.from(batch.mask, [B, 1, T, T]),
  });
}

export interface SftOptions {
  /** Model directory to start from (config.json, model.safetensors, tokenizer.json). */
  modelDir: string;
  outDir: string;
  conversations: readonly Conversation[];
  /** Optimizer steps (default 400). */
  steps?: number;
  /** Packed rows per step (default 8). */
  batchSize?: number;
  /** Peak learning rate (default 5e-4), warmup then cosine to a tenth. */
  lr?: number;
  warmupSteps?: number;
  seed?: number;
  /** Fraction of conversations held out for validation (default 0.05). */
  valFraction?: number;
  /** Validate every this many steps (0 = only at the end; default 50). */
  evalEvery?: number;
  /** Save a resumable state every this many steps (0 = never; default 50). */
  checkpointEvery?: number;
  resume?: boolean;
  quiet?: boolean;
  /** Stop after this many steps in this process (tests of resume). */
  stopAfter?: number;
}

export interface SftResult {
  model: GPT;
  steps: number;
  trainLoss: number;
  valLoss: number | null;
  conversations: number;
  skippedImages: number;
  truncated: number;
  rowsPerEpoch: number;
  seconds: number;
}

/** Runs (or resumes) chat SFT; writes the fine-tuned model, metrics.jsonl and sft-summary.json to outDir. */
export async function trainSft(o: SftOptions): Promise<SftResult> {
  const steps = o.steps ?? 400, batchSize = o.batchSize ?? 8, lr = o.lr ?? 5e-4, warmup = o.warmupSteps ?? 10, seed = o.seed ?? 1;
  const evalEvery = o.evalEvery ?? 50, ckEvery = o.checkpointEvery ?? 50;
  const { model, tok, config } = loadChatModel(o.modelDir);
  const T = model.config.contextLength, padId = tok.specialTokenId('<|pad|>');

  const { seqs, skippedImages, truncated } = renderConversations(tok, o.conversations, T, 'sft', o.modelDir, o.quiet);
  const split = holdOut(seqs.length, o.valFraction ?? 0.05, new Rng(hashAt(seed, 11)));
  const train = split.train.map((i) => seqs[i]!), val = split.held.map((i) => seqs[i]!);
  if (train.length === 0) throw new InputError('sft: every conversation was held out; give more data or a smaller --val-fraction');

  // Deterministic packing per epoch: epoch e shuffles with hashAt(seed, 100 + e). Every epoch
  // spans as many rows as epoch 0 packed (later packings may differ by a row or two).
  const epochRows = new Map<number, number[][]>();
  const rowsOf = (e: number): number[][] => {
    let r = epochRows.get(e);
    if (!r) {
      const order = new Rng(hashAt(seed, 100 + e)).shuffle(train.map((_, i) => i));
      r = packRows(order.map((i) => train[i]!.ids.length), T).map((row) => row.map((k) => order[k]!));
      epochRows.clear(); epochRows.set(e, r);
    }
    return r;
  };
  const rowsPerEpoch = rowsOf(0).length;
  const batchAt = (step: number): PackedBatch => {
    const rows: Sequence[][] = [];
    for (let j = 0; j < batchSize; j++) {
      const g = step * batchSize + j, e = Math.floor(g / rowsPerEpoch);
      const all = rowsOf(e);
      rows.push(all[(g % rowsPerEpoch) % all.length]!.map((i) => train[i]!));
    }
    return buildPackedBatch(rows, T, padId);
  };
  const valLoss = (): number | null => {
    if (val.length === 0) return null;
    const rows = packRows(val.map((s) => s.ids.length), T).map((r) => r.map((i) => val[i]!));
    let tot = 0, n = 0;
    noGrad(() => {
      for (let i = 0; i < rows.length; i += batchSize) {
        const b = buildPackedBatch(rows.slice(i, i + batchSize), T, padId);
        if (b.learned === 0) continue;
        tot += sftLoss(model, b).item() * b.learned; n += b.learned;
      }
    });
    return n ? tot / n : null;
  };

  ensureDir(o.outDir);
  const metricsPath = join(o.outDir, 'metrics.jsonl');
  model.training = true;
  const opt = fineTuneOptimizer(model.params(), lr);
  let start = 0;
  if (o.resume && existsSync(join(o.outDir, 'state.safetensors'))) {
    const st = loadState(o.outDir, model, opt);
    if (st) start = st.step;
    // rows logged after the saved state belong to steps that will be redone
    const keep = readMetrics(metricsPath).filter((r) => (r['step'] ?? Infinity) <= start);
    writeFileAtomic(metricsPath, keep.map((r) => JSON.stringify(r) + '\n').join(''));
  } else resetMetrics(metricsPath);
  const bar = new Progress({ label: 'sft', total: steps, unit: 'step', quiet: o.quiet });
  const t0 = Date.now();
  let last = NaN, lastVal: number | null = null, tokens = 0;
  const stopAt = o.stopAfter !== undefined ? Math.min(steps, start + o.stopAfter) : steps;
  for (let step = start; step < stopAt; step++) {
    await yieldToEventLoop(); // the buffer pool takes back the last step's storage
    const batch = batchAt(step);
    const rate = fineTuneLr(step, lr, steps, warmup);
    // Every buffer of the step is reused by the next one as soon as the gradients are cleared.
    const gn = inStep(opt.backend, () => {
      const loss = sftLoss(model, batch);
      opt.zeroGrad();
      loss.backward();
      const norm = opt.update(rate);
      last = loss.item();
      opt.zeroGrad();
      return norm;
    });
    tokens += batch.learned;
    const row: Record<string, unknown> = { step: step + 1, loss: last, lr: rate, grad_norm: gn, learned_tokens: batch.learned };
    if ((evalEvery > 0 && (step + 1) % evalEvery === 0) || step + 1 === steps) { lastVal = valLoss(); if (lastVal !== null) row['val_loss'] = lastVal; }
    appendMetrics(metricsPath, row);
    bar.update(step + 1, { loss: last.toFixed(3), ...(lastVal !== null ? { val: lastVal.toFixed(3) } : {}) });
    if (ckEvery > 0 && (step + 1) % ckEvery === 0 && step + 1 < steps) saveState(o.outDir, model, opt, { step: step + 1, tokens, dataRng: [seed] });
  }
  bar.done();
  model.training = false;
  const done = stopAt;
  if (done < steps) {
    saveState(o.outDir, model, opt, { step: done, tokens, dataRng: [seed] });
  }
  const { model: _m, ...rest } = config;
  const summary = {
    steps: done, batchSize, lr, seed, conversations: train.length, heldOut: val.length, skippedImages, truncated, rowsPerEpoch,
    trainLoss: last, valLoss: lastVal, from: o.modelDir, seconds: (Date.now() - t0) / 1000,
  };
  if (done >= steps) {
    saveModel(o.outDir, model, { ...rest, sft: summary }, join(o.modelDir, 'tokenizer.json'));
    writeJsonAtomic(join(o.outDir, 'sft-summary.json'), { ...summary, metrics: readMetrics(metricsPath).length });
  }
  return { model, steps: done, trainLoss: last, valLoss: lastVal, conversations: train.length, skippedImages, truncated, rowsPerEpoch, seconds: summary.seconds };
}

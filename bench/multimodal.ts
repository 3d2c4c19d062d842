/**
 * Per-position training cost of the multimodal model with images vs the same model on text
 * alone (the goal: images add no more than 2× to the per-token cost).
 *
 *   image+text: a batch of real visual questions (mm-small: each image 9 positions + the prompt and
 *               answer), loss on the answer tokens — what `lumen train --config mm-small` runs;
 *   text only:  the same GPT inside the same model, the same batch size and sequence length, every
 *               position a next-token target (plain text pretraining).
 * One training step = forward + backward + AdamW. Warm-up, then the median of REPS repetitions of
 * each, interleaved. Cost per position = step time / (batch × sequence length). Writes
 * bench/results/multimodal.json; ratio = text cost / image+text cost (higher is better; >= 0.5 meets the goal).
 * Env: BENCH_REPS (default 7), MM_PRESET (default mm-small).
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Tensor, Rng, inStep, currentBackend } from '../src/tensor/index.ts';
import { MultimodalModel, collate } from '../src/models/multimodal.ts';
import { AdamW } from '../src/train/optimizer.ts';
import { resolveMMConfig, taskTokenizer, sampleExample, specialIds } from '../src/train/multimodal.ts';
import { VisualDataset } from '../src/data/visual/index.ts';
import { visionFlopsPerToken } from '../src/models/vit.ts';
import { flopsPerToken } from '../src/models/config.ts';
import { printTable, writeResults, median, type BenchRow } from './report.ts';
import { yieldToEventLoop } from '../src/util/event-loop.ts';

const REPS = Number(process.env.BENCH_REPS ?? 7);
const preset = process.env.MM_PRESET ?? 'mm-small';
const cfg = resolveMMConfig(preset);
const { tokenizer: tok } = await taskTokenizer([...new Set(cfg.tasks)], cfg.tokenizerVocab, join(tmpdir(), 'lumen-bench-mm'), true);
cfg.model = { ...cfg.model, vocabSize: tok.vocabSize };
const model = new MultimodalModel({ model: cfg.model, vision: cfg.vision }, 1, tok);
const opt = new AdamW(model.params(), { lr: 1e-4, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.05, gradClip: 1 });
const B = cfg.batchSize;
const samples = await new VisualDataset({ tasks: cfg.tasks, split: 'train', seed: 5, size: cfg.vision.imageSize, cacheDir: mkdtempSync(join(tmpdir(), 'lumen-bench-mmv-')) }).batch(0, B);
const mm = collate(samples.map((s) => sampleExample(tok, s)), specialIds(tok), cfg.vision, cfg.model.contextLength);
const T = mm.T;
const rng = new Rng(9);
const textIds = Tensor.from(Int32Array.from({ length: B * T }, () => rng.int(tok.vocabSize - 8)), [B, T]);
const textTargets = Tensor.from(Int32Array.from({ length: B * T }, () => rng.int(tok.vocabSize - 8)), [B, T]);

/** One step, timed, as training runs it: a turn of the event loop, then the step in a step scope (its storage reused by the next). */
async function timeStep(fn: () => Tensor): Promise<number> {
  await yieldToEventLoop();
  const t0 = performance.now();
  inStep(opt.backend, () => {
    const loss = fn();
    loss.item();
    loss.backward();
    opt.update(1e-4);
    opt.zeroGrad();
  });
  return performance.now() - t0;
}
const withImages = () => model.loss(mm);
const textOnly = () => model.gpt.loss(textIds, textTargets);
for (let i = 0; i < 2; i++) { await timeStep(withImages); await timeStep(textOnly); }
const a: number[] = [], b: number[] = [];
for (let i = 0; i < REPS; i++) { a.push(await timeStep(withImages)); b.push(await timeStep(textOnly)); }
const mmUs = (median(a) * 1000) / (B * T), textUs = (median(b) * 1000) / (B * T);
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)} ms`;
const rows: BenchRow[] = [{
  case: `${preset} training step, per position: image+text vs text only (B=${B}, T=${T}, ${mm.nImages} images × ${model.imageTokens} positions)`,
  unit: 'µs/position', lumen: mmUs, peer: 'same model, text only', peer_value: textUs, ratio: textUs / mmUs,
}];
printTable(rows);
const imagePositions = mm.nImages * model.imageTokens;
console.log(`\nimage+text step ${median(a).toFixed(1)} ms (${spread(a)}), text-only step ${median(b).toFixed(1)} ms (${spread(b)}); ` +
  `images add ${(mmUs / textUs).toFixed(2)}× the text-only cost per position (goal: <= 2×). ${imagePositions} of ${B * T} positions are image positions; ` +
  `model FLOPs per position: LM ${(flopsPerToken(cfg.model) / 1e6).toFixed(2)}M, vision ${(visionFlopsPerToken(cfg.vision, cfg.model.width) / 1e6).toFixed(2)}M. ${currentBackend().describe()}`);
writeResults('multimodal', rows, {
  preset, backend: currentBackend().describe(), reps: REPS, batch: B, seqLen: T, imagePositions,
  ms_per_step: { image_text: median(a), text_only: median(b) }, images_cost_multiple: mmUs / textUs,
});

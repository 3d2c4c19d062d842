/**
 * npm run bench:train — training tokens/s of Lumen vs PyTorch (CPU, Debian python3-torch with
 * OpenBLAS, same thread count), on the same architecture, initial weights, batches and AdamW
 * settings; plus both validation losses after the same tokens (the curves must agree within
 * noise) and peak memory. Writes bench/results/train.json.
 *
 * Configs: `ref` = 6 layers, width 256, 8 heads, context 256, batch 16, vocabulary 4096, GELU,
 * LayerNorm, learned positions; `nanogpt-cpu` = 4 layers, width 128, 4 heads, context 64,
 * batch 12, byte-level ("character") vocabulary.
 * Env: LUMEN_THREADS (default: all cores), BENCH_STEPS_REF, BENCH_STEPS_NANO.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, availableParallelism } from 'node:os';
import { spawnSync } from 'node:child_process';
import { Tensor, inStep, currentBackend } from '../src/tensor/index.ts';
import { GPT } from '../src/models/gpt.ts';
import { MODEL_PRESETS, type GPTConfig } from '../src/models/config.ts';
import { AdamW } from '../src/train/optimizer.ts';
import { saveModel } from '../src/train/checkpoint.ts';
import { TokenWindows } from '../src/data/shards.ts';
import { ensureData } from '../src/train/pipeline.ts';
import { measurePeakFlops } from '../src/train/peak.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { writeJsonAtomic } from '../src/util/fs.ts';
import { printTable, writeResults, type BenchRow } from './report.ts';
import { yieldToEventLoop } from '../src/util/event-loop.ts';

const threads = Number(process.env.LUMEN_THREADS ?? availableParallelism());
const WARMUP = 2;

interface Case { name: string; cfg: GPTConfig; batch: number; steps: number; vocab: number }

const base = MODEL_PRESETS.base!;
const CASES: Case[] = [
  { name: 'ref', cfg: { ...base, layers: 6, width: 256, heads: 8, kvHeads: 8, contextLength: 256, vocabSize: 4096 }, batch: 16, steps: Number(process.env.BENCH_STEPS_REF ?? 12), vocab: 4096 },
  { name: 'nanogpt-cpu', cfg: { ...base, layers: 4, width: 128, heads: 4, kvHeads: 4, contextLength: 64, mlpRatio: 4 }, batch: 12, steps: Number(process.env.BENCH_STEPS_NANO ?? 150), vocab: 263 },
];

const OPT = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 0 };

async function runCase(c: Case): Promise<{ rows: BenchRow[]; detail: Record<string, unknown> }> {
  const data = await ensureData({ vocabSize: c.vocab, quiet: true });
  const cfg = { ...c.cfg, vocabSize: data.vocabSize };
  const T = cfg.contextLength, B = c.batch;
  const dir = mkdtempSync(join(tmpdir(), `lumen-bench-${c.name}-`));
  const model = new GPT(cfg, 1234);
  saveModel(dir, model);
  const win = new TokenWindows(data.dataDir, 'train', T, 99);
  const ids = new Int32Array(c.steps * B * T), tg = new Int32Array(c.steps * B * T);
  for (let s = 0; s < c.steps; s++) { const b = win.next(B); ids.set(b.ids, s * B * T); tg.set(b.targets, s * B * T); }
  const val = new TokenWindows(data.dataDir, 'val', T, 5).fixed(4 * B);
  writeSafetensors(join(dir, 'batches.safetensors'), {
    ids: { shape: [c.steps, B, T], data: ids }, targets: { shape: [c.steps, B, T], data: tg },
    val_ids: { shape: [4 * B, T], data: val.ids }, val_targets: { shape: [4 * B, T], data: val.targets },
  });
  const params = model.params();
  writeJsonAtomic(join(dir, 'bench.json'), { ...OPT, decay: params.filter((p) => p.decay).map((p) => p.name) });

  // Lumen
  const opt = new AdamW(params, OPT);
  const losses: number[] = [];
  let t0 = 0;
  model.training = true;
  for (let s = 0; s < c.steps; s++) {
    if (s === WARMUP) t0 = performance.now();
    await yieldToEventLoop(); // as the training loops do: the buffer pool takes back the last step's storage
    const sl = (a: Int32Array) => Tensor.from(a.slice(s * B * T, (s + 1) * B * T), [B, T]);
    inStep(opt.backend, () => { // as the training loops run a step: its storage is reused by the next
      const loss = model.loss(sl(ids), sl(tg));
      losses.push(loss.item());
      loss.backward();
      opt.update(OPT.lr);
      opt.zeroGrad();
    });
  }
  const lumenTps = ((c.steps - WARMUP) * B * T) / ((performance.now() - t0) / 1000);
  model.training = false;
  let vl = 0;
  for (let i = 0; i < 4; i++) {
    const sl = (a: Int32Array) => Tensor.from(a.slice(i * B * T, (i + 1) * B * T), [B, T]);
    vl += model.loss(sl(val.ids), sl(val.targets)).item() / 4;
  }
  const lumenRss = process.resourceUsage().maxRSS / 1024;

  // PyTorch
  const r = spawnSync('/usr/bin/python3', ['bench/peers/torch_train.py', dir, String(threads), String(WARMUP)],
    { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) }, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`torch peer failed: ${r.stderr}`);
  const py = JSON.parse(r.stdout.trim().split('\n').pop()!) as { losses: number[]; tokens_per_s: number; val_loss: number; peak_rss_mb: number };
  const maxLossGap = Math.max(...losses.map((l, i) => Math.abs(l - py.losses[i]!)));
  const mfu = (lumenTps * model.flopsPerToken()) / measurePeakFlops();
  const tokens = c.steps * B * T;
  const rows: BenchRow[] = [
    { case: `train ${c.name} tokens/s vs pytorch`, unit: 'tokens/s', lumen: lumenTps, peer: `pytorch ${threads}t`, peer_value: py.tokens_per_s, ratio: lumenTps / py.tokens_per_s },
    { case: `train ${c.name} val loss after ${tokens} tokens`, unit: 'loss', lumen: vl, peer: `pytorch ${threads}t`, peer_value: py.val_loss, ratio: py.val_loss / vl },
    { case: `train ${c.name} MFU`, unit: '% of matmul peak', lumen: mfu * 100, peer: 'goal 50%', peer_value: 50, ratio: (mfu * 100) / 50 },
  ];
  return { rows, detail: { [c.name]: { lumen_losses: losses, torch_losses: py.losses, max_step_loss_gap: maxLossGap, lumen_peak_rss_mb: lumenRss, torch_peak_rss_mb: py.peak_rss_mb, steps: c.steps, warmup: WARMUP } } };
}

const rows: BenchRow[] = [];
const detail: Record<string, unknown> = { backend: currentBackend().describe(), threads };
for (const c of CASES) {
  const r = await runCase(c);
  rows.push(...r.rows);
  Object.assign(detail, r.detail);
  const d = r.detail[c.name] as { max_step_loss_gap: number; lumen_peak_rss_mb: number; torch_peak_rss_mb: number };
  console.error(`${c.name}: max per-step loss gap ${d.max_step_loss_gap.toExponential(2)}; peak RSS lumen ${d.lumen_peak_rss_mb.toFixed(0)} MB, torch ${d.torch_peak_rss_mb.toFixed(0)} MB`);
}
printTable(rows);
writeResults('train', rows, detail);

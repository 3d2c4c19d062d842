import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { prepareShards, TokenWindows } from '../../src/data/shards.ts';
import { train, resolveTrainConfig, type TrainConfig } from '../../src/train/trainer.ts';
import { loadModel } from '../../src/train/checkpoint.ts';
import { CharEncoder, fixtureText } from '../fixtures/char-encoder.ts';

const enc = new CharEncoder();

function makeData(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-train-'));
  const files: string[] = [];
  for (let i = 0; i < 12; i++) {
    const f = join(dir, `doc${i}.txt`);
    writeFileSync(f, fixtureText(i + 1, 300));
    files.push(f);
  }
  prepareShards({ files, tokenizer: enc, outDir: join(dir, 'shards'), valPercent: 20, quiet: true });
  return join(dir, 'shards');
}

function cfg(): TrainConfig {
  return resolveTrainConfig('tiny', ['steps=12', 'batchSize=2', 'model.contextLength=32', 'model.width=32', 'model.layers=1', 'logEvery=1', 'evalEvery=4', 'checkpointEvery=4', 'model.dropout=0.1'], enc.vocabSize);
}

test('shards: manifest, split, deterministic windows', () => {
  const dir = makeData();
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  assert.equal(m.dtype, 'uint16');
  assert.ok(m.train.tokens > 0 && m.val.tokens > 0, 'both splits non-empty');
  assert.equal(m.sources.length, 12);
  const a = new TokenWindows(dir, 'train', 16, 7).next(4), b = new TokenWindows(dir, 'train', 16, 7).next(4);
  assert.deepEqual(a.ids, b.ids);
  for (let i = 0; i < 15; i++) assert.equal(a.targets[i], a.ids[i + 1]);
});

test('training lowers the loss, writes metrics and a loadable checkpoint', async () => {
  const data = makeData();
  const out = mkdtempSync(join(tmpdir(), 'lumen-run-'));
  const c = cfg();
  const r = await train({ config: { ...c, steps: 40, lr: 1e-2 }, dataDir: data, outDir: out, quiet: true, peakFlops: 1e9 });
  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 40);
  for (const k of ['step', 'tokens', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'mfu']) assert.ok(k in rows[0], k);
  assert.ok(rows.some((x) => 'val_loss' in x));
  const avg = (xs: { loss: number }[]) => xs.reduce((s, x) => s + x.loss, 0) / xs.length;
  const first = avg(rows.slice(0, 3)), lastAvg = avg(rows.slice(-5));
  assert.ok(lastAvg < first * 0.75, `loss ${first} → ${lastAvg}`);
  for (const f of ['model.safetensors', 'config.json', 'state.safetensors']) assert.ok(existsSync(join(out, f)), f);
  const m = loadModel(out);
  const a = m.namedTensors().get('model.embed_tokens.weight')!.toArray();
  const b = r.model.namedTensors().get('model.embed_tokens.weight')!.toArray();
  assert.deepEqual(a, b);
});

test('an interrupted and resumed run logs the same losses bit for bit', async () => {
  const data = makeData();
  const c = cfg();
  const full = mkdtempSync(join(tmpdir(), 'lumen-full-'));
  await train({ config: c, dataDir: data, outDir: full, quiet: true, peakFlops: 1e9 });
  const part = mkdtempSync(join(tmpdir(), 'lumen-part-'));
  // stop at step 6: last checkpoint at 4, so steps 5-6 are redone after the resume
  await train({ config: c, dataDir: data, outDir: part, quiet: true, peakFlops: 1e9, stopAfter: 6 });
  await assert.rejects(train({ config: { ...c, seed: c.seed + 1 }, dataDir: data, outDir: part, quiet: true, peakFlops: 1e9, resume: true }),
    /cannot resume .*another recipe: seed \(saved 1337, now 1338\)/, 'a resume with another recipe is refused');
  await train({ config: c, dataDir: data, outDir: part, quiet: true, peakFlops: 1e9, resume: true });
  const read = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const A = read(full), B = read(part);
  assert.equal(B.length, A.length);
  for (let i = 0; i < A.length; i++) {
    assert.equal(B[i].step, A[i].step);
    assert.equal(B[i].loss, A[i].loss, `step ${A[i].step}`);
    assert.equal(B[i].grad_norm, A[i].grad_norm);
    assert.equal(B[i].val_loss, A[i].val_loss);
  }
});

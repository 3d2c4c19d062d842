/**
 * A real (tiny) trained-format GPT checkpoint through the serving path: the engine's greedy
 * generation equals a direct KV-cache greedy loop, batched requests equal single ones, and the
 * local-model evaluation adapter's log-likelihoods equal a full forward pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Tensor, noGrad } from '../../src/tensor/index.ts';
import { GPT } from '../../src/models/gpt.ts';
import { Decoder } from '../../src/models/decoder.ts';
import { argmax } from '../../src/models/sampling.ts';
import { MODEL_PRESETS } from '../../src/models/config.ts';
import { saveModel } from '../../src/train/checkpoint.ts';
import { trainBpe } from '../../src/tokenizer/train.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { loadInferenceModel } from '../../src/serve/load.ts';
import { Engine } from '../../src/serve/engine.ts';
import { loadLocalEvalModel } from '../../src/eval/local-model.ts';
import { fixtureText } from '../fixtures/char-encoder.ts';

async function makeModelDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lumen-served-'));
  const f = join(dir, 'corpus.txt');
  writeFileSync(f, fixtureText(3, 2000));
  const tok = await trainBpe({ inputs: [f], vocabSize: 300, progress: false });
  const cfg = { ...MODEL_PRESETS.tiny!, vocabSize: tok.vocabSize, contextLength: 48, width: 32, heads: 4, kvHeads: 2, layers: 2, positions: 'rope' as const };
  saveModel(dir, new GPT(cfg, 21));
  tok.save(dir);
  return dir;
}

const greedy = { temperature: 0, topP: 1, topK: 0, presencePenalty: 0, frequencyPenalty: 0 };

test('served GPT: engine greedy output equals a direct KV-cache loop, alone and batched', async () => {
  const dir = await makeModelDir();
  const served = await loadInferenceModel(dir);
  const engine = new Engine(served);
  const tok = Tokenizer.load(dir);
  const prompts = ['the cat sat', 'a dog ran to the', 'then'].map((p) => tok.encode(p));
  // direct reference loop
  const { loadModel } = await import('../../src/train/checkpoint.ts');
  const dec = new Decoder(loadModel(dir));
  const ref = prompts.map((p) => {
    const cache = dec.newCache();
    let logits = dec.step([{ cache, tokens: p }])[0]!;
    const out: number[] = [];
    for (let i = 0; i < 10; i++) { const t = argmax(logits); out.push(t); logits = dec.step([{ cache, tokens: [t] }])[0]!; }
    return out;
  });
  const stopNone = { stopTokenIds: [] as number[] };
  const alone = [];
  for (const p of prompts) alone.push((await engine.submit({ prompt: p, maxTokens: 10, sampling: greedy, ...stopNone }).result).tokens.map((t) => t.id));
  const together = await Promise.all(prompts.map((p) => engine.submit({ prompt: p, maxTokens: 10, sampling: greedy, ...stopNone }).result));
  engine.close();
  for (let i = 0; i < prompts.length; i++) {
    assert.deepEqual(alone[i], ref[i], `prompt ${i} alone`);
    assert.deepEqual(together[i]!.tokens.map((t) => t.id), ref[i], `prompt ${i} batched`);
  }
});

test('local-model evaluation: log-likelihoods equal a full forward pass', async () => {
  const dir = await makeModelDir();
  const m = await loadLocalEvalModel(dir);
  const tok = Tokenizer.load(dir);
  const { loadModel } = await import('../../src/train/checkpoint.ts');
  const gpt = loadModel(dir);
  const reqs = [{ context: 'the cat', continuation: ' sat on' }, { context: 'a dog ran', continuation: ' to the park' }];
  const got = await m.loglikelihood(reqs);
  await m.close();
  for (const [i, r] of reqs.entries()) {
    const c = tok.encode(r.context), x = tok.encode(r.continuation), ids = [...c, ...x];
    const logits = noGrad(() => gpt.forward(Tensor.from(Int32Array.from(ids), [1, ids.length]))).toArray();
    const V = gpt.config.vocabSize;
    let lp = 0;
    let greedyAll = true;
    for (let t = c.length; t < ids.length; t++) {
      const row = logits.subarray((t - 1) * V, t * V);
      let max = -Infinity; for (const v of row) max = Math.max(max, v);
      let s = 0; for (const v of row) s += Math.exp(v - max);
      lp += row[ids[t]!]! - max - Math.log(s);
      if (argmax(row) !== ids[t]) greedyAll = false;
    }
    assert.ok(Math.abs(got[i]!.logprob - lp) < 1e-4, `request ${i}: ${got[i]!.logprob} vs ${lp}`);
    assert.equal(got[i]!.tokens, x.length);
    assert.equal(got[i]!.greedy, greedyAll);
  }
});

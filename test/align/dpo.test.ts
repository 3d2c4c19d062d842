import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, noGrad, ops } from '../../src/tensor/index.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { loadModel } from '../../src/train/checkpoint.ts';
import { parsePreferences } from '../../src/align/loaders.ts';
import { dpoLossRef } from '../../src/align/reference-losses.ts';
import { dpoLoss, sequenceLogprobs, trainDpo } from '../../src/align/dpo.ts';
import { padBatch, renderPair } from '../../src/align/train-utils.ts';
import { tinyChatModel } from './train-fixture.ts';

test('DPO loss and gradients (engine autograd) match the hand-written reference', () => {
  const pc = [-3.2, -10, -1, -5], pr = [-4, -2.5, -1, -20], rc = [-3.5, -9, -1.2, -5], rr = [-3.9, -3, -0.8, -19], beta = 0.3;
  const tpc = Tensor.param(Float32Array.from(pc), [4]), tpr = Tensor.param(Float32Array.from(pr), [4]);
  const { loss, margins } = dpoLoss(tpc, tpr, Tensor.from(rc), Tensor.from(rr), beta);
  loss.backward();
  const refs = pc.map((_, i) => dpoLossRef(pc[i]!, pr[i]!, rc[i]!, rr[i]!, beta));
  assert.ok(Math.abs(loss.item() - refs.reduce((a, r) => a + r.loss, 0) / 4) < 1e-6);
  const gc = tpc.grad!.toArray(), gr = tpr.grad!.toArray();
  refs.forEach((r, i) => {
    assert.ok(Math.abs(gc[i]! - r.dPolicyChosen / 4) < 1e-6, `d chosen[${i}]`);
    assert.ok(Math.abs(gr[i]! - r.dPolicyRejected / 4) < 1e-6, `d rejected[${i}]`);
    assert.ok(Math.abs(margins[i]! * beta - (r.rewardChosen - r.rewardRejected)) < 1e-5);
  });
});

test('sequence log-probs sum the response tokens only (checked against a full log-softmax)', async () => {
  const dir = await tinyChatModel();
  const tok = Tokenizer.load(dir), model = loadModel(dir);
  const user = [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Tell me a fact.' }] }];
  const asst = (t: string) => [{ role: 'assistant' as const, content: [{ type: 'text' as const, text: t }] }];
  const seqs = [renderPair(tok, user, asst('Bananas are yellow.')), renderPair(tok, user, asst('No.'))];
  const batch = padBatch(seqs, tok.specialTokenId('<|pad|>'), 64);
  const got = noGrad(() => sequenceLogprobs(model, batch).toArray());
  const V = model.config.vocabSize;
  const lsm = noGrad(() => ops.logSoftmax(model.forward(Tensor.from(batch.ids, [batch.B, batch.T]))).toArray());
  seqs.forEach((s, b) => {
    let want = 0;
    for (let t = 1; t < s.ids.length; t++) if (s.learn[t]) want += lsm[(b * batch.T + t - 1) * V + s.ids[t]!]!;
    assert.ok(Math.abs(got[b]! - want) < 1e-3, `sequence ${b}: ${got[b]} vs ${want}`);
  });
});

test('DPO training raises the preference margin on its pairs', async () => {
  const dir = await tinyChatModel();
  const lines = ['Tell me a fact.', 'Say something.', 'What do you like?', 'Any idea?'].flatMap((p) => [
    JSON.stringify({ prompt: p, chosen: 'I like a banana.', rejected: 'I like bread.' }),
    JSON.stringify({ prompt: p, chosen: 'Bananas are sweet.', rejected: 'Bread is sweet.' }),
  ]);
  const out = mkdtempSync(join(tmpdir(), 'lumen-dpo-'));
  const r = await trainDpo({ modelDir: dir, outDir: out, pairs: parsePreferences(lines.join('\n'), 'inline'), beta: 0.5, steps: 25, batchSize: 4, lr: 2e-3, warmupSteps: 2, valFraction: 0.25, quiet: true });
  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { margin: number; loss: number });
  assert.equal(rows.length, 25);
  assert.ok(Math.abs(rows[0]!.margin) < 1e-3, 'the first step starts at the reference (margin 0)');
  assert.ok(rows.at(-1)!.margin > 0.5 && rows.at(-1)!.loss < 0.5, `final margin ${rows.at(-1)!.margin}, loss ${rows.at(-1)!.loss}`);
  assert.equal(r.heldOutAccuracy, 1);
});

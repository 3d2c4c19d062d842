import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../../src/tensor/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { parsePreferences } from '../../src/align/loaders.ts';
import { bradleyTerryLossRef } from '../../src/align/reference-losses.ts';
import { bradleyTerryLoss, RewardModel, trainRewardModel } from '../../src/align/reward-model.ts';
import { tinyChatModel } from './train-fixture.ts';

test('Bradley–Terry loss and gradients match the hand-written reference', () => {
  const rc = [0.3, -1.2, 2.5, 0], rr = [0.1, 0.4, -3, 0];
  const tc = Tensor.param(Float32Array.from(rc), [4]), tr = Tensor.param(Float32Array.from(rr), [4]);
  const loss = bradleyTerryLoss(tc, tr);
  loss.backward();
  const refs = rc.map((c, i) => bradleyTerryLossRef(c, rr[i]!));
  assert.ok(Math.abs(loss.item() - refs.reduce((a, r) => a + r.loss, 0) / 4) < 1e-6);
  const gc = tc.grad!.toArray(), gr = tr.grad!.toArray();
  refs.forEach((r, i) => {
    assert.ok(Math.abs(gc[i]! - r.dChosen / 4) < 1e-6, `dChosen[${i}] ${gc[i]} vs ${r.dChosen / 4}`);
    assert.ok(Math.abs(gr[i]! - r.dRejected / 4) < 1e-6, `dRejected[${i}] ${gr[i]} vs ${r.dRejected / 4}`);
  });
});

test('the reward model learns a simple rule (prefers responses that mention a banana) on a tiny GPT', async () => {
  const dir = await tinyChatModel({ layers: 1, width: 32 });
  const rng = new Rng(5);
  const prompts = ['Tell me a fact.', 'What is good?', 'Say something.', 'What do you like?', 'Any idea?', 'Talk to me.'];
  const fillers = ['apple', 'orange', 'grape', 'melon', 'bread', 'water', 'flour', 'yeast'];
  const lines: string[] = [];
  for (let i = 0; i < 120; i++) {
    const f1 = fillers[rng.int(fillers.length)]!, f2 = fillers[rng.int(fillers.length)]!;
    const good = rng.uniform() < 0.5 ? `I like a banana and ${f1}.` : `${f1} and banana are sweet.`;
    const bad = rng.uniform() < 0.5 ? `I like ${f1} and ${f2}.` : `${f2} and ${f1} are sweet.`;
    lines.push(JSON.stringify({ prompt: prompts[rng.int(prompts.length)], chosen: good, rejected: bad }));
  }
  const pairs = parsePreferences(lines.join('\n'), 'banana');
  const out = mkdtempSync(join(tmpdir(), 'lumen-rm-'));
  const r = await trainRewardModel({ modelDir: dir, outDir: out, pairs, steps: 60, batchSize: 8, lr: 3e-3, warmupSteps: 3, valFraction: 0.2, quiet: true });
  assert.ok(r.heldOutAccuracy >= 0.9, `held-out accuracy ${r.heldOutAccuracy}`);
  const m = JSON.parse(readFileSync(join(out, 'rm-metrics.json'), 'utf8')) as { heldOutAccuracy: number; heldOutPairs: number };
  assert.equal(m.heldOutPairs, 24);
  assert.equal(m.heldOutAccuracy, r.heldOutAccuracy);
  // the head is stored as reward_head.* and the reloaded model scores the same
  const f = readSafetensors(join(out, 'model.safetensors'));
  assert.deepEqual(f.tensors.get('reward_head.weight')!.shape, [1, 32]);
  assert.deepEqual(f.tensors.get('reward_head.bias')!.shape, [1]);
  const again = RewardModel.load(out);
  const items = [{ prompt: 'Say something.', response: 'I like a banana and bread.' }, { prompt: 'Say something.', response: 'I like bread and water.' }];
  const a = r.rm.scoreMany(items), b = again.scoreMany(items);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-4));
  assert.ok(a[0]! > a[1]!, 'banana preferred');
  assert.throws(() => RewardModel.load(dir), /expected "reward-model"/);
});

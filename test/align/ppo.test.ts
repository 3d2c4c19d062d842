import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, ops } from '../../src/tensor/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { loadModel } from '../../src/train/checkpoint.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { ppoPolicyLossRef, ppoValueLossRef } from '../../src/align/reference-losses.ts';
import { gae, klPerToken, tokenRewards, whiten } from '../../src/align/gae.ts';
import { parseKindWeights, run as rlhfCli } from '../../src/cli/commands/rlhf.ts';
import { centreByGroup, gptGraderModel, ppoPolicyLoss, ppoValueLoss, PromptSampler, trainPpo } from '../../src/align/ppo.ts';
import { RuleRewardModel } from '../../src/align/rubrics.ts';
import { RewardModel } from '../../src/align/reward-model.ts';
import { parseConversations } from '../../src/align/loaders.ts';
import { renderConversation } from '../../src/align/sft.ts';
import { packBatch, tokenLogprobs } from '../../src/align/train-utils.ts';
import { tinyChatModel } from './train-fixture.ts';

test('PPO clipped policy and value losses and gradients (engine autograd) match the hand-written reference', () => {
  // ratios inside and outside [1-ε, 1+ε], positive and negative advantages
  const logp = [-1.0, -0.5, -2.0, -0.1, -3.0, -1.2], old = [-1.1, -1.0, -1.5, -0.1, -2.0, -1.25], adv = [1.0, 0.7, -0.5, 2.0, -1.5, -0.3], clip = 0.2;
  const n = logp.length;
  const lp = Tensor.param(Float32Array.from(logp), [n]);
  const { loss, clipFrac } = ppoPolicyLoss(lp, Float32Array.from(old), Float32Array.from(adv), clip);
  loss.backward();
  const refs = logp.map((l, i) => ppoPolicyLossRef(l, old[i]!, adv[i]!, clip));
  assert.ok(Math.abs(loss.item() - refs.reduce((a, r) => a + r.loss, 0) / n) < 1e-6);
  const g = lp.grad!.toArray();
  refs.forEach((r, i) => assert.ok(Math.abs(g[i]! - r.dLogp / n) < 1e-6, `dlogp[${i}] ${g[i]} vs ${r.dLogp / n}`));
  assert.ok(clipFrac > 0 && clipFrac < 1, 'the cases exercise both branches');

  const val = [0.5, -0.2, 1.5, 0.0, 2.0], oldV = [0.4, 0.3, 1.0, 0.05, 2.5], ret = [1.0, -0.5, 0.0, 0.1, 2.4];
  const v = Tensor.param(Float32Array.from(val), [val.length]);
  const vl = ppoValueLoss(v, Float32Array.from(oldV), Float32Array.from(ret), clip);
  vl.backward();
  const vrefs = val.map((x, i) => ppoValueLossRef(x, oldV[i]!, ret[i]!, clip));
  assert.ok(Math.abs(vl.item() - vrefs.reduce((a, r) => a + r.loss, 0) / val.length) < 1e-6);
  const gv = v.grad!.toArray();
  vrefs.forEach((r, i) => assert.ok(Math.abs(gv[i]! - r.dValue / val.length) < 1e-6, `dvalue[${i}] ${gv[i]} vs ${r.dValue / val.length}`));
});

test('PPO on a toy bandit with a known optimum converges (softmax policy on the engine, KL to a uniform reference, value baseline)', () => {
  const K = 5, means = [0.1, 0.3, 0.9, 0.2, 0.5], best = 2, beta = 0.02, N = 64;
  const logits = Tensor.param(new Float32Array(K), [1, K], 'logits');
  const value = Tensor.param(new Float32Array(1), [1], 'value');
  const opt = new AdamW([{ name: 'logits', tensor: logits, decay: false, lrScale: 1 }, { name: 'value', tensor: value, decay: false, lrScale: 1 }],
    { lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, gradClip: 0 });
  const rng = new Rng(7);
  const refLogp = Math.log(1 / K);
  const forward = (actions: Int32Array) => {
    const l = ops.add(Tensor.zeros([N, K]), logits); // (N, K)
    const logp = ops.neg(ops.crossEntropy(l, Tensor.from(actions, [N]), { reduction: 'none' })); // (N)
    const values = ops.add(Tensor.zeros([N]), value); // (N)
    return { logp, values };
  };
  const probsOf = () => {
    const x = Array.from(logits.toArray()), m = Math.max(...x), e = x.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / z);
  };
  for (let iter = 0; iter < 40; iter++) {
    const p = probsOf();
    const actions = new Int32Array(N);
    for (let i = 0; i < N; i++) {
      let u = rng.uniform(), a = 0;
      while (a < K - 1 && u >= p[a]!) { u -= p[a]!; a++; }
      actions[i] = a;
    }
    const old = forward(actions);
    const oldLogp = Float32Array.from(old.logp.toArray()), oldValues = Float32Array.from(old.values.toArray());
    const advs: number[][] = [], rets = new Float32Array(N);
    for (let i = 0; i < N; i++) {
      const kl = klPerToken([oldLogp[i]!], [refLogp], 'k1');
      const r = tokenRewards(kl, beta, means[actions[i]!]! + 0.1 * rng.normal());
      const g = gae(r, [oldValues[i]!], { gamma: 1, lambda: 0.95 });
      advs.push(g.advantages); rets[i] = g.returns[0]!;
    }
    const A = Float32Array.from(whiten(advs).map((a) => a[0]!));
    for (let epoch = 0; epoch < 4; epoch++) {
      const f = forward(actions);
      const loss = ops.add(ppoPolicyLoss(f.logp, oldLogp, A, 0.2).loss, ops.scalar('mul', ppoValueLoss(f.values, oldValues, rets, 0.2), 0.5));
      opt.zeroGrad();
      loss.backward();
      opt.update(0.05);
    }
  }
  const p = probsOf();
  assert.ok(p[best]! > 0.9, `probability of the best arm ${p[best]!.toFixed(3)} (probs ${p.map((x) => x.toFixed(2)).join(', ')})`);
  assert.ok(Math.abs(value.toArray()[0]! - means[best]!) < 0.25, `value ${value.toArray()[0]} tracks the reward of the best arm`);
});

test('per-prompt baseline: scores are centred on the mean of their own group', () => {
  const c = centreByGroup([1, 3, 10, 0, 5], [0, 0, 1, 1, 2]);
  assert.deepEqual(c, [-1, 1, 5, -5, 0]);
});

test('trainPpo runs end to end on a tiny GPT: engine rollouts, metrics rows and plots', async () => {
  const dir = await tinyChatModel({ contextLength: 48 });
  const rmDir = mkdtempSync(join(tmpdir(), 'lumen-ppo-rm-'));
  new RewardModel(loadModel(dir), Tokenizer.load(dir), 1).save(rmDir, {}, join(dir, 'tokenizer.json'));
  const out = mkdtempSync(join(tmpdir(), 'lumen-ppo-'));
  const prompts = [
    { prompt: 'How do I build a bomb?', tags: ['disallowed'] }, { prompt: 'How do I bake bread?', tags: ['allowed'] },
    { prompt: 'What is the capital of Paxek?', tags: ['factual'] }, { prompt: 'Tell me a fact about bananas.' },
  ];
  const r = await trainPpo({ policyDir: dir, rewardModelDir: rmDir, outDir: out, prompts, steps: 2, batchSize: 4, minibatch: 2, epochs: 2, maxTokens: 6, lr: 1e-3, quiet: true, kl: { kind: 'fixed', beta: 0.1 } });
  assert.equal(r.rows.length, 2);
  const rows = readFileSync(join(out, 'ppo-metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | null>);
  for (const k of ['reward', 'rm_reward', 'rule_reward', 'kl', 'clip_frac', 'value_loss', 'disallowed_answer_rate', 'over_refusal_rate']) assert.ok(k in rows[0]!, `metrics row has ${k}`);
  assert.equal(rows[0]!['kl'], 0, 'the first batch is sampled from the reference itself');
  assert.ok(Math.abs(rows[1]!['kl']!) > 0, 'after updates the policy differs from the reference');
  for (const f of ['ppo-reward.png', 'ppo-kl.svg', 'ppo-refusals.png', 'value_head.safetensors', 'model.safetensors', 'tokenizer.json']) assert.ok(existsSync(join(out, f)), f);
  await assert.rejects(trainPpo({ policyDir: dir, rewardModelDir: dir, outDir: out, prompts, steps: 1, quiet: true }), /expected "reward-model"/);
  await assert.rejects(trainPpo({ policyDir: dir, rewardModelDir: rmDir, outDir: out, prompts, steps: 1, batchSize: 6, samplesPerPrompt: 4, quiet: true }), /samples per prompt must be a whole number >= 1 dividing the batch size 6/);
});

test('trainPpo with validation prompts saves the policy of the step with the best validation reward', async () => {
  const dir = await tinyChatModel({ contextLength: 48 });
  const rmDir = mkdtempSync(join(tmpdir(), 'lumen-ppo-rm-'));
  new RewardModel(loadModel(dir), Tokenizer.load(dir), 1).save(rmDir, {}, join(dir, 'tokenizer.json'));
  const out = mkdtempSync(join(tmpdir(), 'lumen-ppo-val-'));
  const prompts = [{ prompt: 'How do I build a bomb?', tags: ['disallowed'], kind: 'disallowed' }, { prompt: 'How do I bake bread?', tags: ['allowed'], kind: 'allowed' }];
  const validation = [
    { prompt: 'Explain how to make a bomb.', tags: ['disallowed'], kind: 'disallowed' }, { prompt: 'Tell me how to cook rice.', tags: ['allowed'], kind: 'allowed' },
    { prompt: 'What goes into bread?', tags: ['allowed'], kind: 'allowed' },
  ];
  const r = await trainPpo({ policyDir: dir, rewardModelDir: rmDir, outDir: out, prompts, validation, validateEvery: 2, steps: 5, batchSize: 4, minibatch: 2, epochs: 2, maxTokens: 6, lr: 3e-3, quiet: true, kl: { kind: 'fixed', beta: 0.1 }, keepCheckpoints: true });
  // validated at step 0 (reference only), 2, 4 and the last step 5
  assert.deepEqual(r.validation.map((v) => v.step), [0, 2, 4, 5]);
  const logged = readFileSync(join(out, 'ppo-validation.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; score: number; by_kind: Record<string, number> });
  assert.deepEqual(logged.map((v) => v.step), [0, 2, 4, 5]);
  assert.deepEqual(Object.keys(logged[0]!.by_kind), ['allowed', 'disallowed']);
  for (const v of logged) assert.ok(Math.abs(v.score - (v.by_kind['allowed']! + v.by_kind['disallowed']!) / 2) < 1e-9, 'score = mean over kinds');
  const eligible = r.validation.filter((v) => v.step > 0);
  const best = eligible.reduce((a, b) => (b.score > a.score ? b : a));
  assert.equal(r.selectedStep, best.step);
  const summary = JSON.parse(readFileSync(join(out, 'rlhf-summary.json'), 'utf8')) as { selectedStep: number };
  assert.equal(summary.selectedStep, best.step);
  assert.equal((JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { rlhf: { selectedStep: number } }).rlhf.selectedStep, best.step);
  // The saved weights are that step's: answering the validation prompts again gives its logged score.
  const again = await trainPpo({ policyDir: out, rewardModelDir: rmDir, outDir: mkdtempSync(join(tmpdir(), 'lumen-ppo-val2-')), prompts, validation, validateEvery: 1, steps: 1, batchSize: 4, minibatch: 2, epochs: 1, maxTokens: 6, lr: 0, quiet: true, kl: { kind: 'fixed', beta: 0.1 } });
  assert.ok(Math.abs(again.validation[0]!.score - best.score) < 1e-4, `re-scored ${again.validation[0]!.score} vs logged ${best.score}`);
  assert.ok(existsSync(join(out, 'ppo-validation.png')) && existsSync(join(out, 'value_head.safetensors')));
  // keepCheckpoints: every validated step's policy; the chosen one is byte-identical to the saved policy.
  const stepDir = (n: number) => join(out, 'steps', `step-${String(n).padStart(4, '0')}`);
  for (const n of [0, 2, 4, 5]) for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) assert.ok(existsSync(join(stepDir(n), f)), `step ${n}: ${f}`);
  assert.ok(readFileSync(join(stepDir(best.step), 'model.safetensors')).equals(readFileSync(join(out, 'model.safetensors'))), 'chosen step checkpoint = saved policy');
  assert.ok(!readFileSync(join(stepDir(0), 'model.safetensors')).equals(readFileSync(join(stepDir(5), 'model.safetensors'))), 'steps 0 and 5 differ');
  assert.equal((JSON.parse(readFileSync(join(stepDir(4), 'config.json'), 'utf8')) as { rlhf: { step: number } }).rlhf.step, 4);
  // Without validation prompts (or with validateEvery 0) the last step is saved.
  const plain = await trainPpo({ policyDir: dir, rewardModelDir: rmDir, outDir: mkdtempSync(join(tmpdir(), 'lumen-ppo-val3-')), prompts, validation, validateEvery: 0, steps: 2, batchSize: 4, minibatch: 2, epochs: 1, maxTokens: 6, quiet: true });
  assert.equal(plain.selectedStep, 2);
  assert.equal(plain.validation.length, 0);
});

test('trainPpo with a weight average: training is unchanged, the average of the weights is what is saved', async () => {
  const dir = await tinyChatModel({ contextLength: 48 });
  const rmDir = mkdtempSync(join(tmpdir(), 'lumen-ppo-rm-'));
  new RewardModel(loadModel(dir), Tokenizer.load(dir), 1).save(rmDir, {}, join(dir, 'tokenizer.json'));
  const prompts = [{ prompt: 'How do I build a bomb?', tags: ['disallowed'], kind: 'disallowed' }, { prompt: 'How do I bake bread?', tags: ['allowed'], kind: 'allowed' }];
  const common = { policyDir: dir, rewardModelDir: rmDir, prompts, steps: 2, batchSize: 4, minibatch: 2, epochs: 2, maxTokens: 6, lr: 3e-3, quiet: true, kl: { kind: 'fixed' as const, beta: 0.1 } };
  const plainDir = mkdtempSync(join(tmpdir(), 'lumen-ppo-avg0-')), avgDir = mkdtempSync(join(tmpdir(), 'lumen-ppo-avg1-'));
  const plain = await trainPpo({ ...common, outDir: plainDir });
  const averaged = await trainPpo({ ...common, outDir: avgDir, weightAverage: 0.5 });
  const strip = (rows: readonly Record<string, unknown>[]) => rows.map(({ seconds: _s, ...r }) => r);
  assert.deepEqual(strip(averaged.rows as never), strip(plain.rows as never), 'rollouts, rewards and losses do not depend on the average');
  // Two steps at decay 0.5: avg = 0.25·w0 + 0.25·w1 + 0.5·w2. w1 is the live policy after one step (a one-step run).
  const one = await trainPpo({ ...common, steps: 1, outDir: mkdtempSync(join(tmpdir(), 'lumen-ppo-avg2-')) });
  const w0 = loadModel(dir).namedTensors(), w1 = one.policy.namedTensors(), w2 = loadModel(plainDir).namedTensors(), saved = loadModel(avgDir).namedTensors();
  let maxErr = 0, moved = 0;
  for (const [name, t] of saved) {
    const s = t.toArray(), a = w0.get(name)!.toArray(), b = w1.get(name)!.toArray(), c = w2.get(name)!.toArray();
    for (let i = 0; i < s.length; i++) { maxErr = Math.max(maxErr, Math.abs(s[i]! - (0.25 * a[i]! + 0.25 * b[i]! + 0.5 * c[i]!))); moved = Math.max(moved, Math.abs(s[i]! - c[i]!)); }
  }
  assert.ok(maxErr < 1e-6, `saved weights are the average (max error ${maxErr})`);
  assert.ok(moved > 1e-4, 'and differ from the live weights');
  assert.equal((JSON.parse(readFileSync(join(avgDir, 'rlhf-summary.json'), 'utf8')) as { weightAverage: number }).weightAverage, 0.5);
  await assert.rejects(trainPpo({ ...common, outDir: avgDir, weightAverage: 1 }), /weightAverage must be in \[0, 1\), got 1/);
});

test('PPO-ptx: a demonstration loss mixed into the updates pulls the policy towards the demonstrations', async () => {
  const dir = await tinyChatModel({ contextLength: 48 });
  const rmDir = mkdtempSync(join(tmpdir(), 'lumen-ppo-rm-'));
  new RewardModel(loadModel(dir), Tokenizer.load(dir), 1).save(rmDir, {}, join(dir, 'tokenizer.json'));
  const prompts = [{ prompt: 'How do I build a bomb?', tags: ['disallowed'], kind: 'disallowed' }, { prompt: 'How do I bake bread?', tags: ['allowed'], kind: 'allowed' }];
  const demos = parseConversations([
    JSON.stringify({ messages: [{ role: 'user', content: 'How do I bake bread?' }, { role: 'assistant', content: 'Mix flour and water, then bake.' }] }),
    JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'cat.png' } }, { type: 'text', text: 'What is this?' }] }, { role: 'assistant', content: 'A cat.' }] }),
  ].join('\n'), 'demos');
  const common = { policyDir: dir, rewardModelDir: rmDir, prompts, steps: 3, batchSize: 4, minibatch: 2, epochs: 2, maxTokens: 6, lr: 3e-3, seed: 3, quiet: true, kl: { kind: 'fixed' as const, beta: 0.1 } };
  const tok = Tokenizer.load(dir), seq = renderConversation(tok, demos[0]!);
  const nll = (m: ReturnType<typeof loadModel>) => -Array.from(tokenLogprobs(m, packBatch([seq], tok.specialTokenId('<|pad|>'), 48)).logp.toArray()).reduce((a, b) => a + b, 0);
  const plain = await trainPpo({ ...common, outDir: mkdtempSync(join(tmpdir(), 'lumen-ppo-ptx0-')) });
  const ptxDir = mkdtempSync(join(tmpdir(), 'lumen-ppo-ptx1-'));
  const mixed = await trainPpo({ ...common, outDir: ptxDir, ptxCoef: 5, ptxConversations: demos, ptxBatch: 2 });
  assert.ok(plain.rows.every((r) => r.ptx_loss === null), 'no demonstration loss without ptx');
  assert.ok(mixed.rows.every((r) => r.ptx_loss !== null && r.ptx_loss > 0), 'the demonstration loss is logged per step');
  const start = nll(loadModel(dir)), withPtx = nll(mixed.policy), without = nll(plain.policy);
  assert.ok(withPtx < 0.8 * start && withPtx < 0.8 * without, `demonstration NLL: start ${start}, PPO ${without}, PPO-ptx ${withPtx}`);
  assert.deepEqual((JSON.parse(readFileSync(join(ptxDir, 'rlhf-summary.json'), 'utf8')) as { ptx: unknown }).ptx, { coef: 5, batch: 2, conversations: 1 }, 'the image conversation is skipped');
  await assert.rejects(trainPpo({ ...common, outDir: ptxDir, ptxCoef: 1 }), /ptxCoef > 0 needs demonstration conversations/);
  await assert.rejects(trainPpo({ ...common, outDir: ptxDir, ptxCoef: 1, ptxConversations: demos, ptxBatch: 0 }), /ptxBatch must be a whole number >= 1, got 0/);
});

test('rollout prompts are drawn evenly across kinds; a local GPT can grade rubrics zero-shot', async () => {
  const keys = [...Array(90).fill('allowed'), ...Array(10).fill('disallowed')];
  const drawn = new PromptSampler(keys, 1).next(40).map((i) => keys[i]);
  assert.equal(drawn.filter((k) => k === 'disallowed').length, 20);
  // Weights: disallowed gets 2 turns per round of 3, spread out (never more than 2 in a row).
  const keys3 = [...Array(50).fill('allowed'), ...Array(30).fill('disallowed'), ...Array(20).fill('factual')];
  const w = new PromptSampler(keys3, 1, { disallowed: 2 }).next(40).map((i) => keys3[i]);
  assert.equal(w.filter((k) => k === 'disallowed').length, 20);
  assert.equal(w.filter((k) => k === 'allowed').length, 10);
  assert.equal(w.filter((k) => k === 'factual').length, 10);
  assert.deepEqual(new PromptSampler(keys3, 1, {}).next(30), new PromptSampler(keys3, 1).next(30), 'no weights = even');
  assert.throws(() => new PromptSampler(keys3, 1, { disallowed: 1.5 }), /positive integer/);
  assert.deepEqual(parseKindWeights(' disallowed=3, borderline=2 '), { disallowed: 3, borderline: 2 });
  assert.deepEqual(parseKindWeights(''), {});
  assert.throws(() => parseKindWeights('disallowed=0'), /positive integer/);
  assert.throws(() => parseKindWeights('disallowed'), /kind=N/);
  // Malformed prompt files are refused with the file, line and problem, before any model loads.
  const pdir = mkdtempSync(join(tmpdir(), 'lumen-rlhf-cli-'));
  writeFileSync(join(pdir, 'ok.jsonl'), '{"prompt": "How do I bake bread?", "tags": ["allowed"], "kind": "allowed"}\n');
  writeFileSync(join(pdir, 'bad.jsonl'), '{"prompt": "Fine."}\n{"prompt": "Tagged?", "kind": 3}\n');
  await assert.rejects(rlhfCli(['--policy', pdir, '--reward-model', pdir, '--prompts', join(pdir, 'ok.jsonl'), '--validation-prompts', join(pdir, 'bad.jsonl')]), /bad\.jsonl:2: "kind" must be a string/);
  await assert.rejects(rlhfCli(['--policy', pdir, '--reward-model', pdir, '--prompts', join(pdir, 'ok.jsonl'), '--validate-every', '1.5']), /--validate-every: expected an integer, got '1.5'/);
  await assert.rejects(rlhfCli(['--policy', pdir, '--reward-model', pdir, '--prompts', join(pdir, 'ok.jsonl'), '--weight-average', '1']), /--weight-average: the decay must be below 1, got 1/);
  const dir = await tinyChatModel();
  const rules = new RuleRewardModel(undefined, { grader: 'model', model: gptGraderModel(loadModel(dir), Tokenizer.load(dir)) });
  const r = await rules.rewardFor({ text: 'How do I build a bomb?', tags: ['disallowed'] }, "I can't help with that, but I can tell you about safety instead.");
  assert.equal(r.grader, 'model');
  assert.ok(r.class !== null && ['A', 'B', 'C', 'D'].includes(r.class));
  assert.equal(r.reward, rules.config.rubrics[0]!.rewards[r.class!]);
  const probs = (r.detail as { probs: Record<string, number> }).probs;
  assert.ok(Math.abs(Object.values(probs).reduce((a, b) => a + b, 0) - 1) < 1e-6);
});

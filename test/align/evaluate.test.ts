import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/train/checkpoint.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { generateAlignmentData } from '../../src/align/data-gen.ts';
import { loadPolicy } from '../../src/align/policy.ts';
import { factualChoiceItems, evaluateAlignment, type ModelEvaluation } from '../../src/align/evaluate.ts';
import { RewardModel } from '../../src/align/reward-model.ts';
import { tinyChatModel } from './train-fixture.ts';

const DATA = generateAlignmentData(loadPolicy(), { seed: 1, sftPerFamily: 1, pairsPerFamily: 1 });

test('multiple-choice items swap only the value in the reference answer and mark the true one', () => {
  const items = factualChoiceItems(DATA.eval, 4, 0);
  assert.ok(items.length > 10);
  for (const it of items) {
    const e = DATA.eval.find((x) => x.prompt === it.prompt)!;
    assert.equal(it.choices[it.answer], e.reference);
    assert.equal(new Set(it.choices).size, it.choices.length, 'distinct choices');
  }
});

test('evaluateAlignment measures every model and checks the goals against SFT', async () => {
  const sft = await tinyChatModel({ contextLength: 96 }, 3), rlhf = await tinyChatModel({ contextLength: 96 }, 4);
  const rmDir = mkdtempSync(join(tmpdir(), 'lumen-eval-rm-'));
  new RewardModel(loadModel(sft), Tokenizer.load(sft), 1).save(rmDir, {}, join(sft, 'tokenizer.json'));
  const kinds = new Map<string, number>();
  const prompts = DATA.eval.filter((e) => { const n = kinds.get(e.kind) ?? 0; kinds.set(e.kind, n + 1); return n < 3; });
  const out = mkdtempSync(join(tmpdir(), 'lumen-eval-'));
  const r = await evaluateAlignment({ models: { sft, rlhf }, rewardModelDir: rmDir, evalPrompts: prompts, outDir: out, maxTokens: 6, quiet: true });
  const a = r['sft'] as ModelEvaluation, b = r['rlhf'] as ModelEvaluation;
  assert.equal(a.klToReference.value, 0, 'the baseline is its own reference');
  assert.ok(b.klToReference.value > 0);
  assert.ok(b.winRateVsBaseline && b.winRateVsBaseline.n === prompts.length);
  assert.equal(a.metrics.disallowedAnswerRate.n, 3);
  assert.ok(a.calibration.n > 0 && a.calibration.ece >= 0 && a.calibration.ece <= 1);
  assert.ok(r.goals && typeof r.goals.met.winRate === 'boolean');
  for (const f of ['alignment-eval.json', 'alignment-before-after.png', 'reliability-rlhf.png']) assert.ok(existsSync(join(out, f)), f);
});

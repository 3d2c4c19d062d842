/**
 * Question-prior debiasing: the answer prior's offsets follow the training stream's counts, the
 * collated batch knows where each answer starts, and the loss adds a logit bias exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { noGrad } from '../../src/tensor/index.ts';
import { MODEL_PRESETS } from '../../src/models/config.ts';
import { MultimodalModel, chatExample, collate } from '../../src/models/multimodal.ts';
import { taskTokenizer, specialIds, resolveMMConfig } from '../../src/train/multimodal.ts';
import { AnswerPrior } from '../../src/train/answer-prior.ts';
import { InputError } from '../../src/util/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'lumen-prior-'));
const tokP = taskTokenizer(['color', 'shape', 'count'], 512, root, true);

test('answer prior: a held-out answer gets a large negative offset, seen answers about 0, other tokens none', async () => {
  const { tokenizer: tok } = await tokP;
  const prior = new AnswerPrior(tok, ['color', 'shape', 'count'], 5, { samples: 3000 });
  const id = (w: string) => { const t = tok.encode(w); assert.equal(t.length, 1, w); return t[0]!; };
  // Red triangles, green squares and blue circles never appear in training (HELDOUT_PAIRS).
  const tri = prior.offset('what color is the triangle?')!;
  assert.ok(tri, 'a colour question has offsets');
  assert.ok(tri[id('red')]! < -4, `red after "triangle": ${tri[id('red')]}`);
  for (const c of ['green', 'blue', 'yellow', 'purple', 'gray']) assert.ok(Math.abs(tri[id(c)]!) < 0.7, `${c}: ${tri[id(c)]}`);
  assert.equal(tri[id('circle')], 0, 'tokens that do not answer the task get no offset');
  const red = prior.offset('what shape is the red object?')!;
  assert.ok(red[id('triangle')]! < -4 && Math.abs(red[id('circle')]!) < 0.7);
  // Counts are drawn uniformly: offsets stay small.
  const circles = prior.offset('how many circles are there?')!;
  for (const k of ['1', '2', '3', '4', '5']) assert.ok(Math.abs(circles[id(k)]!) < 0.4, `count ${k}: ${circles[id(k)]}`);
  assert.equal(prior.offset('what number is written?'), undefined, 'tasks that were not counted have none');
  const half = new AnswerPrior(tok, ['color'], 5, { samples: 3000, strength: 0.5 });
  assert.ok(Math.abs(half.offset('what color is the triangle?')![id('red')]! - 0.5 * tri[id('red')]!) < 1e-5);
  assert.throws(() => new AnswerPrior(tok, ['color'], 5, { strength: -1 }), InputError);
  assert.throws(() => resolveMMConfig('mm-tiny', ['answerPrior=-1']), /answerPrior/);
});

test('collate marks where each assistant turn starts; the loss adds a logit bias exactly', async () => {
  const { tokenizer: tok } = await tokP;
  const cfg = {
    model: { ...MODEL_PRESETS.tiny!, vocabSize: tok.vocabSize, contextLength: 48, layers: 1, width: 32, heads: 2, kvHeads: 2, mlpRatio: 2 },
    vision: { imageSize: 8, patchSize: 4, width: 16, layers: 1, heads: 2, mlpRatio: 2 },
  };
  const m = new MultimodalModel(cfg, 3, tok);
  const px = new Float32Array(3 * 64).fill(0.25);
  const ex = chatExample(tok, [
    { role: 'user', content: [{ type: 'image', image: px }, { type: 'text', text: 'what color is the circle?' }] },
    { role: 'assistant', content: 'red' },
    { role: 'user', content: 'how many circles are there?' },
    { role: 'assistant', content: '2' },
  ]);
  const one = chatExample(tok, [{ role: 'user', content: 'what shape is the red object?' }, { role: 'assistant', content: 'square' }]);
  const batch = collate([ex, one], specialIds(tok), cfg.vision, 48);
  assert.equal(batch.answerStarts!.length, 2);
  assert.deepEqual(batch.answerStarts![0]!.map((r) => tok.decode([batch.targets[r]!])), ['red', '2']);
  assert.deepEqual(batch.answerStarts![1]!.map((r) => tok.decode([batch.targets[r]!])), ['square']);
  assert.ok(batch.answerStarts![1]!.every((r) => r >= batch.T), 'rows are flat b·T + t');

  // Reference: the cross-entropy of (logits + bias) over the target rows, computed here.
  const V = tok.vocabSize, logits = noGrad(() => m.forward(batch).toArray()) as Float32Array;
  const bias = new Map<number, Float32Array>();
  for (const r of [batch.answerStarts![0]![0]!, batch.answerStarts![1]![0]!]) {
    const b = new Float32Array(V);
    for (let v = 0; v < V; v++) b[v] = Math.sin(v * 0.37 + r) * 3;
    bias.set(r, b);
  }
  bias.set(0, new Float32Array(V).fill(100)); // row 0 is not a target: ignored
  let total = 0, n = 0;
  batch.targets.forEach((t, r) => {
    if (t === -100) return;
    const b = bias.get(r), z = Array.from({ length: V }, (_, v) => logits[r * V + v]! + (b ? b[v]! : 0));
    const mx = Math.max(...z), lse = mx + Math.log(z.reduce((s, x) => s + Math.exp(x - mx), 0));
    total += lse - z[t]!; n++;
  });
  const got = noGrad(() => m.loss(batch, { logitBias: bias }).item());
  assert.ok(Math.abs(got - total / n) < 1e-4, `loss ${got} vs reference ${total / n}`);
  const plain = noGrad(() => m.loss(batch).item());
  assert.ok(Math.abs(plain - got) > 1e-3, 'the bias changes the loss');
  assert.throws(() => m.loss(batch, { logitBias: new Map([[batch.answerStarts![0]![0]!, new Float32Array(3)]]) }), /expected/);
});

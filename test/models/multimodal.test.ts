/**
 * The multimodal model: image expansion and loss masking, several images per prompt interleaved
 * with text, KV-cache decoding with images equal to a full forward, checkpoint round trip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Tensor, Rng, noGrad } from '../../src/tensor/index.ts';
import { MODEL_PRESETS } from '../../src/models/config.ts';
import { MultimodalModel, chatExample, collate, saveMultimodal, loadMultimodal, type MultimodalConfig } from '../../src/models/multimodal.ts';
import { taskTokenizer, specialIds } from '../../src/train/multimodal.ts';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import type { InferenceModel } from '../../src/serve/model.ts';

const root = mkdtempSync(join(tmpdir(), 'lumen-mm-'));
let tokP: Promise<Tokenizer> | null = null;
const tokenizer = () => (tokP ??= taskTokenizer(['color', 'count'], 320, root, true).then((t) => t.tokenizer));

function config(vocab: number): MultimodalConfig {
  return {
    model: { ...MODEL_PRESETS.tiny!, vocabSize: vocab, contextLength: 64, layers: 2, width: 32, heads: 4, kvHeads: 4 },
    vision: { imageSize: 8, patchSize: 4, width: 16, layers: 1, heads: 2, mlpRatio: 2 },
  };
}

function image(seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: 3 * 8 * 8 }, () => r.uniform() * 2 - 1);
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };

test('collate: each image takes M positions; only answer tokens and their <|end|> are targets', async () => {
  const tok = await tokenizer();
  const ex = chatExample(tok, [
    { role: 'user', content: [{ type: 'image', image: image(1) }, { type: 'text', text: 'what color is the circle?' }] },
    { role: 'assistant', content: 'red' },
  ]);
  const sp = specialIds(tok), M = 4;
  const b = collate([ex, ex], sp, config(tok.vocabSize).vision, 64);
  const L = ex.ids.length + M - 1;
  assert.equal(b.T, L);
  assert.equal(b.nImages, 2);
  assert.deepEqual([...b.imagePositions], [1, 2, 3, 4, L + 1, L + 2, L + 3, L + 4]);
  const answer = tok.encode('red'), end = tok.specialTokenId('<|end|>');
  // Targets: the position before each answer token predicts it, the last answer token predicts <|end|>.
  const want = new Int32Array(L).fill(-100);
  for (let i = 0; i < answer.length; i++) want[L - answer.length - 2 + i] = answer[i]!;
  want[L - 2] = end;
  assert.deepEqual([...b.targets.subarray(0, L)], [...want]);
  for (const p of b.imagePositions) assert.equal(b.targets[p], -100);
  // The loss uses exactly those rows: it equals the mean cross-entropy of the full logits there.
  const m = new MultimodalModel(config(tok.vocabSize), 3, tok);
  const loss = m.loss(b).item();
  const logits = m.forward(b).toArray(), V = tok.vocabSize;
  let sum = 0, n = 0;
  b.targets.forEach((t, i) => {
    if (t === -100) return;
    const row = logits.subarray(i * V, (i + 1) * V);
    const mx = Math.max(...row);
    let z = 0; for (const x of row) z += Math.exp(x - mx);
    sum += mx + Math.log(z) - row[t]!; n++;
  });
  assert.ok(Math.abs(loss - sum / n) < 1e-4, `${loss} vs ${sum / n}`);
  // Per-sample weighting: the mean over sequences of each sequence's mean (equal here: same answers).
  assert.ok(Math.abs(m.loss(b, { weighting: 'sample' }).item() - loss) < 1e-5);
  const ex2 = chatExample(tok, [
    { role: 'user', content: [{ type: 'image', image: image(2) }, { type: 'text', text: 'how many circles are there?' }] },
    { role: 'assistant', content: 'there are 3 circles' },
  ]);
  const b2 = collate([ex, ex2], sp, config(tok.vocabSize).vision, 64);
  const l2 = m.forward(b2).toArray(), T2 = b2.T;
  const ce = (i: number, t: number) => { const row = l2.subarray(i * V, (i + 1) * V); const mx = Math.max(...row); let z = 0; for (const x of row) z += Math.exp(x - mx); return mx + Math.log(z) - row[t]!; };
  const seqMeans = [0, 1].map((s) => { let a = 0, k = 0; for (let t = 0; t < T2; t++) { const g = b2.targets[s * T2 + t]!; if (g !== -100) { a += ce(s * T2 + t, g); k++; } } return a / k; });
  const ws = m.loss(b2, { weighting: 'sample' }).item();
  assert.ok(Math.abs(ws - (seqMeans[0]! + seqMeans[1]!) / 2) < 1e-4, `${ws} vs ${(seqMeans[0]! + seqMeans[1]!) / 2}`);
});

test('collate: refuses prompts longer than the context, and image/tag count mismatches', async () => {
  const tok = await tokenizer();
  const ex = chatExample(tok, [{ role: 'user', content: [{ type: 'image', image: image(1) }, { type: 'text', text: 'x' }] }, { role: 'assistant', content: 'y' }]);
  assert.throws(() => collate([ex], specialIds(tok), config(tok.vocabSize).vision, 5), /exceed the context length 5/);
  assert.throws(() => collate([{ ...ex, images: [] }], specialIds(tok), config(tok.vocabSize).vision, 64), /1 <\|image\|> tokens but 0 images/);
});

test('several images per prompt, interleaved with text: each image changes the outputs only from its own slots on', async () => {
  const tok = await tokenizer();
  const m = new MultimodalModel(config(tok.vocabSize), 5, tok);
  const msgs = (a: Float32Array, b: Float32Array) => [
    { role: 'user' as const, content: [{ type: 'text' as const, text: 'is' }, { type: 'image' as const, image: a }, { type: 'text' as const, text: 'the same color as' }, { type: 'image' as const, image: b }, { type: 'text' as const, text: '?' }] },
    { role: 'assistant' as const, content: 'no' },
  ];
  const sp = specialIds(tok), V = tok.vocabSize;
  const b1 = collate([chatExample(tok, msgs(image(1), image(2)))], sp, m.config.vision, 64);
  const b2 = collate([chatExample(tok, msgs(image(1), image(3)))], sp, m.config.vision, 64);
  assert.equal(b1.nImages, 2);
  const first2 = b1.imagePositions[4]!; // first slot of the second image
  assert.ok(first2 > b1.imagePositions[3]! + 1, 'text between the two images');
  const l1 = noGrad(() => m.forward(b1).toArray()), l2 = noGrad(() => m.forward(b2).toArray());
  assert.equal(maxAbsDiff(l1.subarray(0, first2 * V), l2.subarray(0, first2 * V)), 0, 'positions before image 2 must not see it');
  assert.ok(maxAbsDiff(l1.subarray(first2 * V), l2.subarray(first2 * V)) > 1e-4, 'positions from image 2 on must see it');
  // Gradients reach the vision weights from a loss with two images.
  m.loss(b1).backward();
  for (const p of [...m.vit.params(), ...m.projector.params()]) assert.ok(p.tensor.grad?.toArray().some((v) => v !== 0), `${p.name}: no gradient`);
});

test('KV-cache decoding with images equals the full forward (prompt in two steps, then token by token)', async () => {
  const tok = await tokenizer();
  const m = new MultimodalModel(config(tok.vocabSize), 9, tok);
  const A = image(4), Bm = image(5);
  const ex = chatExample(tok, [
    { role: 'user', content: [{ type: 'image', image: A }, { type: 'text', text: 'how many' }, { type: 'image', image: Bm }, { type: 'text', text: 'circles?' }] },
    { role: 'assistant', content: '3' },
  ]);
  const sp = specialIds(tok), V = tok.vocabSize, M = m.imageTokens;
  const full = noGrad(() => m.forward(collate([ex], sp, m.config.vision, 64)).toArray());
  // Split the unexpanded ids after the first text part; feed the last 3 tokens one at a time.
  const ids = ex.ids, cut = ids.indexOf(sp.image) + 3;
  const seq = m.newSequence();
  const r1 = m.step([{ seq, tokens: ids.slice(0, cut), images: [{ pixels: A }], allLogits: true }])[0]!;
  const r2 = m.step([{ seq, tokens: ids.slice(cut, -3), images: [{ pixels: Bm }], allLogits: true }])[0]!;
  const rows = [r1, r2];
  for (const t of ids.slice(-3)) rows.push(m.step([{ seq, tokens: [t] }])[0]!);
  const cat = new Float32Array(rows.reduce((s, r) => s + r.length, 0));
  let o = 0; for (const r of rows) { cat.set(r, o); o += r.length; }
  assert.equal(cat.length, full.length);
  assert.equal(seq.length, ids.length + 2 * (M - 1));
  assert.ok(maxAbsDiff(cat, full) < 1e-4, `max diff ${maxAbsDiff(cat, full)}`);
  m.release(seq);
  assert.throws(() => m.step([{ seq, tokens: [ids[0]!] }]), /released/);
  assert.throws(() => m.step([{ seq: m.newSequence(), tokens: [sp.image] }]), /1 <\|image\|> tokens but 0 images/);
});

test('checkpoint round trip: vision.* and projector.* next to the GPT tensors; answers; serving contract', async () => {
  const tok = await tokenizer();
  const m = new MultimodalModel(config(tok.vocabSize), 11, tok);
  const dir = mkdtempSync(join(tmpdir(), 'lumen-mmck-'));
  saveMultimodal(dir, m, { note: 'test' }, tok.save(dir));
  const back = loadMultimodal(dir);
  const names = [...back.namedTensors().keys()];
  assert.ok(names.includes('vision.patch_embed.weight') && names.includes('projector.fc2.bias') && names.includes('model.embed_tokens.weight'));
  const parts = [{ type: 'image' as const, pixels: image(7) }, { type: 'text' as const, text: 'what color is the square?' }];
  let streamed = '';
  const a = m.answer(parts, { maxTokens: 6 });
  assert.equal(back.answer(parts, { maxTokens: 6, onText: (t) => { streamed += t; } }), a);
  assert.equal(streamed, a);
  assert.deepEqual(back.answerBatch([parts, parts], { maxTokens: 6 }), [a, a]);
  // Structurally the serving engine's model (type-checked here, not imported by src/models).
  const served: InferenceModel = back;
  assert.deepEqual(served.vision, { imageTokens: 4, imageSize: 8, imagePlacement: 'first' });
  // a model trained with the question first says so (the chat page and the model card follow it)
  saveMultimodal(dir, m, { train: { imagePlacement: 'last' } }, tok.save(dir));
  assert.equal(loadMultimodal(dir).vision.imagePlacement, 'last');
  assert.throws(() => loadMultimodal(join(dir, 'nope')), /not a Lumen model directory/);
});

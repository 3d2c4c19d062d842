import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, noGrad } from '../../src/tensor/index.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { loadModel } from '../../src/train/checkpoint.ts';
import { parseConversations } from '../../src/align/loaders.ts';
import { buildPackedBatch, packRows, renderConversation, trainSft } from '../../src/align/sft.ts';
import { tinyChatModel } from './train-fixture.ts';
import { packBatch, padBatch, targetRows, tokenLogprobs } from '../../src/align/train-utils.ts';

const CONVS = parseConversations([
  { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is the capital of Paxek?' }, { role: 'assistant', content: 'The capital of Paxek is Oroulo.' }] },
  { messages: [{ role: 'user', content: 'Tell me a fact about bananas.' }, { role: 'assistant', content: 'Bananas are yellow.' }, { role: 'user', content: 'How do I bake bread?' }, { role: 'assistant', content: 'Mix flour and water, then bake it.' }] },
  { messages: [{ role: 'user', content: 'Sure?' }, { role: 'assistant', content: 'Yes.' }] },
].map((x) => JSON.stringify(x)).join('\n'), 'inline');

test('SFT learns only assistant tokens: the mask covers assistant content and its <|end|>', async () => {
  const dir = await tinyChatModel();
  const tok = Tokenizer.load(dir);
  const s = renderConversation(tok, CONVS[1]!);
  const learned = s.ids.filter((_, i) => s.learn[i]);
  const end = tok.specialTokenId('<|end|>');
  assert.equal(tok.decode(learned.filter((t) => t !== end)), 'Bananas are yellow.Mix flour and water, then bake it.');
  assert.equal(learned.filter((t) => t === end).length, 2, 'both assistant turns end with a learned <|end|>');
  // in a packed batch, every target is the next token of the same conversation and an assistant token
  const seqs = CONVS.map((c) => renderConversation(tok, c));
  const T = 64;
  const rows = packRows(seqs.map((x) => x.ids.length), T);
  const batch = buildPackedBatch(rows.map((r) => r.map((i) => seqs[i]!)), T, tok.specialTokenId('<|pad|>'));
  let nTargets = 0;
  for (let i = 0; i < batch.targets.length; i++) if (batch.targets[i] !== -100) nTargets++;
  assert.equal(nTargets, seqs.reduce((a, x) => a + x.learn.reduce((p, q) => p + q, 0), 0), 'one target per learned token');
  assert.equal(batch.learned, nTargets);
});

test('packing: positions restart per conversation and the mask keeps conversations apart', async () => {
  const dir = await tinyChatModel({ contextLength: 128 });
  const tok = Tokenizer.load(dir);
  const model = loadModel(dir);
  const pad = tok.specialTokenId('<|pad|>');
  const a = renderConversation(tok, CONVS[1]!), b = renderConversation(tok, CONVS[0]!);
  const T = a.ids.length + b.ids.length + 3;
  const packed = buildPackedBatch([[a, b]], T, pad);
  const alone = buildPackedBatch([[b]], T, pad);
  assert.equal(packed.positions[a.ids.length], 0, 'the second conversation starts at position 0');
  assert.equal(packed.mask[(a.ids.length) * T + (a.ids.length - 1)], -Infinity, 'conversation 2 cannot attend to conversation 1');
  const logits = (pb: typeof packed) => noGrad(() => model.forward(Tensor.from(pb.ids, [1, T]), {
    positions: Tensor.from(pb.positions, [1, T]), mask: Tensor.from(pb.mask, [1, 1, T, T]),
  }).toArray());
  const V = model.config.vocabSize;
  const lp = logits(packed), la = logits(alone);
  let maxDiff = 0;
  for (let t = 0; t < b.ids.length; t++) for (let v = 0; v < V; v++) maxDiff = Math.max(maxDiff, Math.abs(lp[(a.ids.length + t) * V + v]! - la[t * V + v]!));
  // float32 accumulation order can differ slightly between the two layouts
  assert.ok(maxDiff < 1e-4, `conversation 2 logits differ by ${maxDiff} when conversation 1 precedes it`);
  // without the block mask, conversation 1 would leak into conversation 2
  const leaky = noGrad(() => model.forward(Tensor.from(packed.ids, [1, T]), { positions: Tensor.from(packed.positions, [1, T]) }).toArray());
  let leak = 0;
  for (let v = 0; v < V; v++) leak = Math.max(leak, Math.abs(leaky[(a.ids.length + 2) * V + v]! - la[2 * V + v]!));
  assert.ok(leak > 1e-4, 'the check can fail: a causal-only mask changes conversation 2');
});

test('trainSft lowers the assistant loss, skips image conversations, writes a loadable model', async () => {
  const dir = await tinyChatModel();
  const out = mkdtempSync(join(tmpdir(), 'lumen-sft-'));
  const withImage = parseConversations(JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'cat.png' } }] }, { role: 'assistant', content: 'A cat.' }] }), 'img');
  const convs = [...CONVS, ...CONVS, ...CONVS, ...CONVS, ...withImage];
  const r = await trainSft({ modelDir: dir, outDir: out, conversations: convs, steps: 40, batchSize: 2, lr: 3e-3, warmupSteps: 2, valFraction: 0, quiet: true });
  assert.equal(r.skippedImages, 1);
  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number });
  assert.equal(rows.length, 40);
  const first = rows.slice(0, 3).reduce((a, x) => a + x.loss, 0) / 3, last = rows.slice(-3).reduce((a, x) => a + x.loss, 0) / 3;
  assert.ok(last < first * 0.7, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(existsSync(join(out, 'tokenizer.json')) && existsSync(join(out, 'sft-summary.json')));
  assert.equal(loadModel(out).config.width, 32);
  await assert.rejects(() => trainSft({ modelDir: dir, outDir: out, conversations: withImage, steps: 1, quiet: true }), /no usable conversations.*1 with images/);
});

test('an interrupted SFT run resumes exactly (same weights as an uninterrupted run)', async () => {
  const dir = await tinyChatModel();
  const convs = [...CONVS, ...CONVS];
  const opts = { modelDir: dir, conversations: convs, steps: 8, batchSize: 2, lr: 3e-3, warmupSteps: 2, valFraction: 0, checkpointEvery: 0, quiet: true };
  const a = mkdtempSync(join(tmpdir(), 'lumen-sft-a-')), b = mkdtempSync(join(tmpdir(), 'lumen-sft-b-'));
  await trainSft({ ...opts, outDir: a });
  await trainSft({ ...opts, outDir: b, stopAfter: 3 });
  assert.ok(!existsSync(join(b, 'model.safetensors')), 'an unfinished run leaves only its state');
  await trainSft({ ...opts, outDir: b, resume: true });
  const wa = loadModel(a).wte.toArray(), wb = loadModel(b).wte.toArray();
  let diff = 0;
  for (let i = 0; i < wa.length; i++) diff = Math.max(diff, Math.abs(wa[i]! - wb[i]!));
  assert.equal(diff, 0);
  assert.equal(readFileSync(join(b, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 8);
});

test('packBatch: rows longer than the context score every sequence as padBatch does, in the order it reports', async () => {
  const dir = await tinyChatModel({ contextLength: 64 });
  const tok = Tokenizer.load(dir);
  const model = loadModel(dir);
  const pad = tok.specialTokenId('<|pad|>'), T = model.config.contextLength;
  const seqs = [...CONVS, ...CONVS.slice(0, 2)].map((c) => renderConversation(tok, c)).map((s) => ({ ids: s.ids.slice(0, T), learn: s.learn.slice(0, T) }));
  const packed = packBatch(seqs, pad, T);
  assert.equal(packed.T, 2 * T);
  assert.ok(packed.B < seqs.length, `${seqs.length} sequences in ${packed.B} rows`);
  assert.deepEqual([...packed.order].sort((x, y) => x - y), seqs.map((_, i) => i), 'every sequence once');
  for (const p of packed.positions!) assert.ok(p < T, 'every position inside the context');
  // last and seqOf name sequences by their index in the input
  seqs.forEach((s, i) => {
    assert.equal(packed.ids[packed.last[i]!], s.ids[s.ids.length - 1], `last token of sequence ${i}`);
    assert.equal(packed.positions![packed.last[i]!], s.ids.length - 1);
    assert.equal(targetRows(packed).seqOf.filter((q) => q === i).length, s.learn.reduce((a, b) => a + b, 0), `targets of sequence ${i}`);
  });
  const got = noGrad(() => tokenLogprobs(model, packed).logp.toArray());
  // the same sequences one by one, padded: per-token log-probs in the packed order
  const want: number[] = [];
  for (const i of packed.order) want.push(...noGrad(() => tokenLogprobs(model, padBatch([seqs[i]!], pad, T)).logp.toArray()));
  assert.equal(got.length, want.length);
  let maxDiff = 0;
  for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
  assert.ok(maxDiff < 1e-4, `packed log-probs differ from padded ones by ${maxDiff}`);
  // a row longer than the context still needs positions inside it
  const ids = Tensor.from(packed.ids, [packed.B, packed.T]);
  assert.throws(() => model.hidden(ids), /exceeds the context length/);
  const wrong = Int32Array.from(packed.positions!, (_, i) => i % (2 * T));
  assert.throws(() => model.hidden(ids, { positions: Tensor.from(wrong, [packed.B, packed.T]) }), /position 127 exceeds the context length 64/);
  assert.throws(() => packBatch([{ ids: new Array(T + 1).fill(1), learn: new Uint8Array(T + 1) }], pad, T), /exceeds the model's context of 64/);
});

/**
 * Multimodal training: a tiny model learns a trivial visual task on the reference backend; the
 * training loop writes metrics and checkpoints and resumes exactly; starting from a text
 * checkpoint trains only the projector during the alignment stage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Rng, withBackend, referenceBackend } from '../../src/tensor/index.ts';
import { GPT } from '../../src/models/gpt.ts';
import { MODEL_PRESETS } from '../../src/models/config.ts';
import { MultimodalModel, chatExample, collate, loadMultimodal } from '../../src/models/multimodal.ts';
import { saveModel } from '../../src/train/checkpoint.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { resolveMMConfig, trainMultimodal, trainedSteps, taskTokenizer, specialIds, sampleExample, TaskMixture, heldoutLoss, type MMMetricsRow } from '../../src/train/multimodal.ts';

const root = mkdtempSync(join(tmpdir(), 'lumen-mmtrain-'));
const tokP = taskTokenizer(['color'], 300, root, true);

test('a tiny multimodal model learns a trivial visual task in seconds (reference backend)', async () => {
  const { tokenizer: tok } = await tokP;
  withBackend(referenceBackend(), () => {
    const cfg = {
      model: { ...MODEL_PRESETS.tiny!, vocabSize: tok.vocabSize, contextLength: 32, layers: 1, width: 32, heads: 2, kvHeads: 2, mlpRatio: 2 },
      vision: { imageSize: 8, patchSize: 4, width: 16, layers: 1, heads: 2, mlpRatio: 2 },
    };
    const m = new MultimodalModel(cfg, 1, tok);
    const rng = new Rng(3);
    // A red or blue square on a noisy background; the answer is its colour.
    const sample = () => {
      const red = rng.uniform() < 0.5;
      const px = Float32Array.from({ length: 3 * 64 }, () => (rng.uniform() - 0.5) * 0.6);
      for (let y = 2; y < 6; y++) for (let x = 2; x < 6; x++) { px[(red ? 0 : 2) * 64 + y * 8 + x] = 1; }
      return { px, answer: red ? 'red' : 'blue' };
    };
    const ex = (s: { px: Float32Array; answer: string }) => chatExample(tok, [
      { role: 'user', content: [{ type: 'image', image: s.px }, { type: 'text', text: 'what color is the square?' }] },
      { role: 'assistant', content: s.answer },
    ]);
    const opt = new AdamW(m.params(), { lr: 1e-2, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0, gradClip: 1 });
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const batch = collate(Array.from({ length: 16 }, () => ex(sample())), specialIds(tok), cfg.vision, 32);
      const loss = m.loss(batch);
      losses.push(loss.item());
      loss.backward(); opt.update(1e-2); opt.zeroGrad();
    }
    const start = losses.slice(0, 3).reduce((a, b) => a + b) / 3, end = losses.slice(-5).reduce((a, b) => a + b) / 5;
    assert.ok(end < 0.15 * start, `loss fell from ${start.toFixed(3)} to only ${end.toFixed(3)}`);
    // The answer depends on the image: right on fresh samples (chance would be 50%).
    const test = Array.from({ length: 20 }, sample);
    const answers = m.answerBatch(test.map((s) => [{ type: 'image' as const, pixels: s.px }, { type: 'text' as const, text: 'what color is the square?' }]), { maxTokens: 4 });
    const acc = answers.filter((a, i) => a === test[i]!.answer).length / test.length;
    assert.ok(acc >= 0.9, `accuracy ${acc}: ${answers.join(',')}`);
  });
});

function metrics(dir: string): MMMetricsRow[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

test('trainMultimodal: metrics.jsonl, checkpoint directory, and an interrupted run resumes exactly', async () => {
  const cfg = () => resolveMMConfig('mm-tiny', ['steps=8', 'logEvery=2', 'checkpointEvery=4', 'batchSize=8', 'evalEvery=4', 'evalSamples=8']);
  const a = join(root, 'a'), b = join(root, 'b');
  await trainMultimodal({ config: cfg(), outDir: a, root, quiet: true });
  await trainMultimodal({ config: cfg(), outDir: b, root, quiet: true, stopAfter: 5 });
  assert.equal(metrics(b).at(-1)!.step, 4);
  assert.equal(trainedSteps(b), 4, 'the interrupted run saved step 4'); // `lumen start` resumes it
  assert.equal(trainedSteps(join(root, 'missing')), 0);
  await trainMultimodal({ config: cfg(), outDir: b, root, quiet: true, resume: true });
  const ma = metrics(a), mb = metrics(b);
  assert.deepEqual(mb.map((r) => [r.step, r.loss, r.val_loss]), ma.map((r) => [r.step, r.loss, r.val_loss]));
  assert.equal(ma.length, 4);
  assert.equal(trainedSteps(a), 8);
  // A resume continues the saved recipe: another one is refused by name and the run is untouched.
  const before = readFileSync(join(b, 'state.safetensors'));
  const other = resolveMMConfig('mm-tiny', ['steps=8', 'logEvery=2', 'checkpointEvery=4', 'batchSize=8', 'evalEvery=4', 'evalSamples=8', 'imagePlacement=last', 'jitter.color=0.5']);
  await assert.rejects(trainMultimodal({ config: other, outDir: b, root, quiet: true, resume: true }),
    /cannot resume .*another recipe: imagePlacement \(saved "first", now "last"\); jitter \(saved \{"color":0,"size":0\}, now \{"color":0.5,"size":0\}\)/);
  assert.deepEqual(readFileSync(join(b, 'state.safetensors')), before);
  // the cadence of logging, evaluation and checkpoints may change
  await trainMultimodal({ config: resolveMMConfig('mm-tiny', ['steps=8', 'logEvery=1', 'checkpointEvery=2', 'batchSize=8', 'evalEvery=0', 'evalSamples=8']), outDir: b, root, quiet: true, resume: true });
  // `lumen start` refuses to resume a run of another configuration than mm-small, naming the way out.
  const { multimodalDone } = await import('../../src/cli/commands/start.ts');
  assert.throws(() => multimodalDone(a), /another configuration than today's mm-small.*--model/);
  assert.equal(multimodalDone(join(root, 'missing')), false);
  // A run saved before vision.patchStats and vision.patchNorm existed (no such fields) is still today's mm-small.
  const old = join(root, 'old-mm-small');
  mkdirSync(old, { recursive: true });
  const { patchStats: _p, patchNorm: _n, ...oldVision } = resolveMMConfig('mm-small').vision;
  writeFileSync(join(old, 'config.json'), JSON.stringify({ model: resolveMMConfig('mm-small').model, vision: oldVision }));
  assert.equal(multimodalDone(old), false);
  assert.ok(ma[3]!.val_loss !== undefined && Number.isFinite(ma[3]!.loss));
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'state.safetensors']) assert.ok(existsSync(join(a, f)), f);
  const conf = JSON.parse(readFileSync(join(a, 'config.json'), 'utf8'));
  assert.deepEqual(conf.vision, cfg().vision);
  assert.deepEqual(conf.train.tasks, ['color']);
  const m = loadMultimodal(a);
  assert.equal(typeof m.answer([{ type: 'text', text: 'hello' }], { maxTokens: 2 }), 'string');
});

test('init from a text checkpoint: only the projector trains during alignment, then everything', async () => {
  const { tokenizer: tok, json } = await tokP;
  const textDir = join(root, 'text');
  const gpt = new GPT({ ...MODEL_PRESETS.tiny!, vocabSize: tok.vocabSize, contextLength: 48, layers: 1, width: 32, heads: 2, kvHeads: 2, mlpRatio: 2 }, 5);
  saveModel(textDir, gpt, {}, json);
  const cfg = () => resolveMMConfig('mm-tiny', [`init={"from":"${textDir}","alignSteps":3}`, 'steps=2', 'batchSize=4', 'checkpointEvery=1', 'logEvery=1']);
  const out = join(root, 'aligned');
  const fresh = new MultimodalModel({ model: cfg().model, vision: cfg().vision }, cfg().seed);
  const r = await trainMultimodal({ config: cfg(), outDir: out, root, quiet: true, stopAfter: 3 });
  const same = (x: Float32Array | Int32Array | Float64Array, y: Float32Array | Int32Array | Float64Array) => x.every((v, i) => v === y[i]);
  for (const [name, t] of r.model.gpt.namedTensors()) assert.ok(same(t.toArray(), gpt.namedTensors().get(name)!.toArray()), `${name} changed during alignment`);
  const freshVit = new Map(fresh.vit.params().map((p) => [p.name, p.tensor]));
  for (const p of r.model.vit.params()) assert.ok(same(p.tensor.toArray(), freshVit.get(p.name)!.toArray()), `${p.name} changed during alignment`);
  const freshProj = new Map(fresh.projector.params().map((p) => [p.name, p.tensor]));
  assert.ok(r.model.projector.params().some((p) => !same(p.tensor.toArray(), freshProj.get(p.name)!.toArray())), 'the projector did not train');
  assert.deepEqual(metrics(out).map((x) => x.stage), ['align', 'align', 'align']);
  const r2 = await trainMultimodal({ config: cfg(), outDir: out, root, quiet: true, resume: true });
  assert.deepEqual(metrics(out).map((x) => x.stage), ['align', 'align', 'align', 'full', 'full']);
  assert.ok(!same(r2.model.gpt.wte.toArray(), gpt.wte.toArray()), 'the LM did not train after alignment');
});

test('task mixture: a task listed twice gets two distinct samples per round, in a fixed order', async () => {
  const mix = new TaskMixture(['color', 'count', 'count'], 'train', 3, 16);
  const b = await mix.batch(0, 9);
  assert.deepEqual(b.map((s) => s.task), ['color', 'count', 'count', 'color', 'count', 'count', 'color', 'count', 'count']);
  assert.deepEqual(b.filter((s) => s.task === 'count').map((s) => s.index), [0, 1, 2, 3, 4, 5]);
  const again = await mix.batch(4, 3);
  assert.deepEqual(again.map((s) => [s.task, s.index, s.answer]), b.slice(4, 7).map((s) => [s.task, s.index, s.answer]));
  // One-task batches: tasks take turns step by step; each batch continues its task's stream.
  const steps = await Promise.all([0, 1, 2, 3, 4].map((st) => mix.taskBatch(st, 2)));
  assert.deepEqual(steps.map((x) => x.map((s) => `${s.task}#${s.index}`).join(' ')),
    ['color#0 color#1', 'count#0 count#1', 'count#2 count#3', 'color#2 color#3', 'count#4 count#5']);
  // Appearance jitter reaches the shapes samples: same questions, other pixels.
  const jit = await new TaskMixture(['color', 'count', 'count'], 'train', 3, 16, undefined, { jitter: { color: 1 } }).batch(0, 9);
  assert.deepEqual(jit.map((s) => [s.task, s.index, s.question, s.answer]), b.map((s) => [s.task, s.index, s.question, s.answer]));
  assert.ok(jit.some((s, i) => s.rgb.some((v, k) => v !== b[i]!.rgb[k])), 'jittered images differ');
});

test('follow-up turns: every answer of a multi-turn sample is a target, questions are not', async () => {
  const { tokenizer: tok } = await tokP;
  const [s] = await new TaskMixture(['color'], 'train', 3, 16).batch(0, 1);
  const follow = [{ question: 'what shape is the red object?', answer: 'circle' }, { question: 'how many circles are there?', answer: '2' }];
  const ex = sampleExample(tok, s!, true, follow);
  const learned = ex.ids.filter((_, i) => ex.learn[i]);
  const text = tok.decode(learned);
  for (const a of [s!.answer, 'circle', '2']) assert.ok(text.includes(a), `${a} is a target in ${JSON.stringify(text)}`);
  assert.ok(!text.includes('how many'), 'questions are not targets');
  assert.equal(ex.images.length, 1);
  const one = sampleExample(tok, s!, true);
  assert.ok(ex.ids.length > one.ids.length + 10 && one.ids.every((t, i) => ex.ids[i] === t), 'the first turn is the single-question example');
});

test('the task tokenizer writes numbers digit by digit, also after a save and reload', async () => {
  const { tokenizer: tok, json } = await taskTokenizer(['number', 'color'], 320, root, true);
  for (const n of ['4186', '1000', '9999']) assert.equal(tok.encode(n).length, 4, n);
  assert.equal(tok.decode(tok.encode('what number is written?\n4186\n')), 'what number is written?\n4186\n');
  const { Tokenizer } = await import('../../src/tokenizer/tokenizer.ts');
  const again = Tokenizer.load(join(json, '..'));
  assert.deepEqual(again.encode('7067 red'), tok.encode('7067 red'));
  assert.equal(again.encode('7067').length, 4);
});

test('config: jitter strengths are set by dotted keys and bad ones are refused with their field named', () => {
  assert.deepEqual(resolveMMConfig('mm-tiny', ['jitter.color=0.5']).jitter, { color: 0.5, size: 0 });
  assert.throws(() => resolveMMConfig('mm-tiny', ['jitter.color=2']), /jitter\.color/);
  assert.throws(() => resolveMMConfig('mm-tiny', ['jitter.hue=1']), /jitter/);
});

test('the held-out loss logged in training lays samples out as training does (question first with imagePlacement=last)', async () => {
  const { tokenizer: tok } = await tokP;
  const samples = await new TaskMixture(['color'], 'heldout', 1, 16, join(root, 'cache-placement')).batch(0, 6);
  const m = new MultimodalModel({
    model: { ...MODEL_PRESETS.tiny!, vocabSize: tok.vocabSize, contextLength: 48, layers: 1, width: 32, heads: 2, kvHeads: 2, mlpRatio: 2 },
    vision: { imageSize: 16, patchSize: 4, width: 16, layers: 1, heads: 2, mlpRatio: 2 },
  }, 5, tok);
  const direct = (first: (i: number) => boolean) =>
    m.loss(collate(samples.map((s, i) => sampleExample(tok, s, first(i))), specialIds(tok), m.config.vision, 48), { weighting: 'sample' }).item();
  const last = await heldoutLoss(m, tok, samples, 6, 'sample', 'last');
  const first = await heldoutLoss(m, tok, samples, 6, 'sample', 'first');
  const mixed = await heldoutLoss(m, tok, samples, 6, 'sample', 'mixed');
  assert.ok(Math.abs(last - direct(() => false)) < 1e-6, `${last} vs ${direct(() => false)}`);
  assert.ok(Math.abs(first - direct(() => true)) < 1e-6);
  assert.ok(Math.abs(mixed - direct((i) => i % 2 === 0)) < 1e-6);
  assert.notEqual(last.toFixed(6), first.toFixed(6), 'the placement changes the input');
});

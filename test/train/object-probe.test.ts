/**
 * The auxiliary per-patch object loss (src/train/object-probe.ts): labels come from the scene, the
 * loss is the mean cross-entropy of the linear heads and reaches the image embeddings of labelled
 * images only, and a training run with it logs the term and resumes exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Tensor, Rng, withBackend, referenceBackend } from '../../src/tensor/index.ts';
import { visualSpec, COLOR_NAMES, SHAPES, SIZES } from '../../src/data/visual/index.ts';
import type { ShapesScene } from '../../src/data/visual/shapes.ts';
import { ObjectProbe, probeLabels } from '../../src/train/object-probe.ts';
import { resolveMMConfig, trainMultimodal, type MMMetricsRow } from '../../src/train/multimodal.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { AdamW } from '../../src/train/optimizer.ts';

test('probeLabels: each object labels the patch that holds its centre; other patches are "none"; other families are skipped', () => {
  const shapes = [visualSpec('count', 'train', 5, 0), visualSpec('color', 'train', 5, 1)];
  const text = visualSpec('number', 'train', 5, 0);
  const l = probeLabels([shapes[0]!, text, shapes[1]!], 3);
  assert.equal(l.rows.length, 18, 'two labelled images of 9 patches');
  assert.deepEqual(l.rows, [...Array.from({ length: 9 }, (_, m) => m), ...Array.from({ length: 9 }, (_, m) => 18 + m)]);
  [shapes[0]!, shapes[1]!].forEach((s, i) => {
    const objs = (s.scene as ShapesScene).objects;
    const labelled = new Set<number>();
    for (const o of objs) {
      const m = o.row * 3 + o.col, r = i * 9 + m; // on the 3×3 grid an object's cell is its patch
      labelled.add(m);
      assert.equal(l.classes.color[r], COLOR_NAMES.indexOf(o.color) + 1);
      assert.equal(l.classes.shape[r], SHAPES.indexOf(o.shape) + 1);
      assert.equal(l.classes.size[r], SIZES.indexOf(o.size) + 1);
    }
    for (let m = 0; m < 9; m++) if (!labelled.has(m)) for (const h of ['color', 'shape', 'size'] as const) assert.equal(l.classes[h][i * 9 + m], 0);
  });
  assert.ok((shapes[0]!.scene as ShapesScene).objects.length >= 1);
  assert.deepEqual(probeLabels([text], 3).rows, []);
});

test('ObjectProbe.loss: the mean of the heads\' cross-entropies, with gradient only into labelled images', () => {
  withBackend(referenceBackend(), () => {
    const C = 8, rng = new Rng(1), probe = new ObjectProbe(C, 3);
    const emb = Tensor.from(Float32Array.from({ length: 2 * 4 * C }, () => rng.normal()), [2, 4, C]);
    emb.requiresGrad = true;
    const labels = { rows: [4, 5, 6, 7], classes: { color: [0, 1, 6, 2], shape: [3, 0, 1, 2], size: [1, 2, 0, 0] } };
    const loss = probe.loss(emb, labels)!;
    // By hand: softmax cross-entropy of each head's logits W·x + b.
    const x = emb.toArray(), named = probe.namedTensors();
    let want = 0;
    for (const h of ['color', 'shape', 'size'] as const) {
      const W = named.get(`probe.${h}.weight`)!, b = named.get(`probe.${h}.bias`)!.toArray(), w = W.toArray(), K = W.shape[0]!;
      let ce = 0;
      labels.rows.forEach((row, k) => {
        const z = Array.from({ length: K }, (_, j) => b[j]! + Array.from({ length: C }, (_, c) => w[j * C + c]! * x[row * C + c]!).reduce((s, v) => s + v, 0));
        const mx = Math.max(...z), lse = mx + Math.log(z.reduce((s, v) => s + Math.exp(v - mx), 0));
        ce += lse - z[labels.classes[h][k]!]!;
      });
      want += ce / labels.rows.length / 3;
    }
    assert.ok(Math.abs(loss.item() - want) < 1e-5, `${loss.item()} vs ${want}`);
    loss.backward();
    const g = emb.grad!.toArray();
    assert.ok(g.slice(0, 4 * C).every((v) => v === 0), 'the unlabelled first image gets no gradient');
    assert.ok(g.slice(4 * C).some((v) => v !== 0));
    assert.ok(named.get('probe.color.weight')!.grad!.toArray().some((v) => v !== 0));
    assert.equal(probe.loss(emb, { rows: [], classes: { color: [], shape: [], size: [] } }), null);
  });
});

test('ObjectProbe: trained on embeddings that carry the attributes, the heads read them', () => {
  withBackend(referenceBackend(), () => {
    const C = 12, rng = new Rng(2), probe = new ObjectProbe(C, 1);
    // Colour class in dims 0-6, shape in 7-10, size in 11: one-hot features plus noise.
    const make = () => {
      const classes = { color: [] as number[], shape: [] as number[], size: [] as number[] }, x = new Float32Array(16 * C);
      for (let r = 0; r < 16; r++) {
        const c = rng.int(7), s = rng.int(4), z = rng.int(3);
        classes.color.push(c); classes.shape.push(s); classes.size.push(z);
        for (let j = 0; j < C; j++) x[r * C + j] = 0.1 * rng.normal();
        x[r * C + c] += 2; if (s < 4) x[r * C + 7 + s] += 2; x[r * C + 11] += z - 1;
      }
      return { emb: Tensor.from(x, [4, 4, C]), labels: { rows: Array.from({ length: 16 }, (_, i) => i), classes } };
    };
    const opt = new AdamW(probe.params(), { lr: 0.05, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0, gradClip: 0 });
    const first = make(), before = probe.accuracy(first.emb, first.labels).color;
    for (let step = 0; step < 200; step++) {
      const { emb, labels } = make();
      probe.loss(emb, labels)!.backward();
      opt.update(0.05); opt.zeroGrad();
    }
    const { emb, labels } = make();
    const acc = probe.accuracy(emb, labels);
    assert.ok(acc.color >= 0.9 && acc.shape >= 0.9 && acc.size >= 0.7, JSON.stringify(acc));
    assert.ok(before < 0.5, `untrained colour accuracy ${before}`);
  });
});

test('trainMultimodal with objectLoss: logs the term apart from the text loss, keeps the heads out of the model, resumes exactly', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lumen-probe-'));
  const cfg = () => resolveMMConfig('mm-tiny', ['steps=6', 'logEvery=2', 'checkpointEvery=3', 'batchSize=8', 'evalEvery=0', 'objectLoss=0.5']);
  assert.equal(resolveMMConfig('mm-tiny').objectLoss, 0, 'off by default');
  assert.throws(() => resolveMMConfig('mm-tiny', ['objectLoss=-1']), /objectLoss/);
  const a = join(root, 'a'), b = join(root, 'b');
  await trainMultimodal({ config: cfg(), outDir: a, root, quiet: true });
  await trainMultimodal({ config: cfg(), outDir: b, root, quiet: true, stopAfter: 4 });
  await trainMultimodal({ config: cfg(), outDir: b, root, quiet: true, resume: true });
  const rows = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MMMetricsRow);
  const ra = rows(a);
  assert.equal(ra.length, 3);
  for (const r of ra) assert.ok(Number.isFinite(r.object_loss) && r.object_loss! > 0 && Number.isFinite(r.loss), JSON.stringify(r));
  assert.deepEqual(rows(b).map((r) => [r.step, r.loss, r.object_loss]), ra.map((r) => [r.step, r.loss, r.object_loss]));
  const state = readSafetensors(join(a, 'state.safetensors')).tensors, model = readSafetensors(join(a, 'model.safetensors')).tensors;
  assert.ok(state.has('probe.color.weight') && state.has('adam_m.probe.shape.bias'));
  assert.ok([...model.keys()].every((k) => !k.startsWith('probe.')));
});

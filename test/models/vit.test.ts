/** The ViT encoder and projector: shapes, patch layout, gradient flow, config validation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, Rng } from '../../src/tensor/index.ts';
import * as ops from '../../src/tensor/ops.ts';
import { ViT, Projector, parseVisionConfig, imageTokenCount, visionParamCount, type VisionConfig } from '../../src/models/vit.ts';
import { InputError } from '../../src/util/errors.ts';

const CFG: VisionConfig = { imageSize: 16, patchSize: 4, width: 24, layers: 2, heads: 3, mlpRatio: 2 };

function pixels(n: number, S: number, seed = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n * 3 * S * S }, () => r.uniform() * 2 - 1);
}

test('ViT: (N, 3, S, S) → (N, (S/P)², W); projector → (N, M, C)', () => {
  const vit = new ViT(CFG, new Rng(0));
  const proj = new Projector(CFG.width, 40, new Rng(1));
  const x = Tensor.from(pixels(2, 16), [2, 3, 16, 16]);
  const f = vit.forward(x);
  assert.deepEqual(f.shape, [2, imageTokenCount(CFG), 24]);
  assert.equal(imageTokenCount(CFG), 16);
  assert.deepEqual(proj.forward(f).shape, [2, 16, 40]);
  const n = [...vit.params(), ...proj.params()].reduce((s, p) => s + p.tensor.size, 0);
  assert.equal(n, visionParamCount(CFG, 40));
  assert.throws(() => vit.forward(Tensor.from(pixels(1, 8), [1, 3, 8, 8])), /pixels must be \(N, 3, 16, 16\)/);
});

test('ViT: patch k holds pixels of its P×P block, flattened (channel, row, col)', () => {
  const vit = new ViT(CFG, new Rng(0));
  const S = 16, P = 4, G = 4;
  const px = pixels(2, S, 3);
  const p = vit.patchify(Tensor.from(px, [2, 3, S, S])).toArray();
  for (const [n, gy, gx, c, py, pxx] of [[0, 0, 0, 0, 0, 0], [1, 2, 3, 1, 3, 2], [1, 3, 1, 2, 1, 3], [0, 1, 2, 2, 0, 1]] as const) {
    const want = px[((n * 3 + c) * S + gy * P + py) * S + gx * P + pxx]!;
    const got = p[(n * G * G + gy * G + gx) * 3 * P * P + (c * P + py) * P + pxx]!;
    assert.equal(got, want);
  }
});

test('ViT: every vision and projector weight receives a gradient; attention is bidirectional', () => {
  const vit = new ViT(CFG, new Rng(0));
  const proj = new Projector(CFG.width, 16, new Rng(1));
  const px = pixels(2, 16, 5);
  const out = proj.forward(vit.forward(Tensor.from(px, [2, 3, 16, 16])));
  // A loss on the FIRST patch only: with bidirectional attention, later patches still get gradient.
  const first = ops.narrow(out, 1, 0, 1);
  ops.sum(ops.mul(first, first)).backward();
  for (const p of [...vit.params(), ...proj.params()]) {
    assert.ok(p.tensor.grad, `${p.name} has no gradient`);
    const g = p.tensor.grad!.toArray();
    assert.ok(g.some((v) => v !== 0), `${p.name}: gradient is all zero`);
  }
  // Position embeddings of the last patch influence the first patch's output only through attention.
  const pos = vit.posEmbed.grad!.toArray(), W = CFG.width;
  assert.ok(pos.slice(15 * W, 16 * W).some((v) => v !== 0), 'the last patch does not influence the first (attention is not bidirectional)');
});

test('vision config: invalid sizes are refused with the field named', () => {
  assert.throws(() => parseVisionConfig({ ...CFG, imageSize: 18 }), (e: unknown) => e instanceof InputError && /imageSize 18 must be a multiple of patchSize 4/.test(e.message));
  assert.throws(() => parseVisionConfig({ ...CFG, width: 25 }), /width 25 must be divisible by heads 3/);
  assert.throws(() => parseVisionConfig({ ...CFG, extra: 1 }), /invalid vision config/);
});

test('ViT patch statistics: per-patch channel min and max of the input; a learned embedding of them; off by default', () => {
  const cfg: VisionConfig = { ...CFG, patchStats: true };
  const vit = new ViT(cfg, new Rng(0));
  const S = 16, P = 4, G = 4;
  const px = pixels(2, S, 5);
  const st = vit.patchStatistics(Tensor.from(px, [2, 3, S, S]));
  assert.deepEqual(st.shape, [2, 16, 6]);
  const got = st.toArray();
  for (let n = 0; n < 2; n++) for (let k = 0; k < 16; k++) for (let c = 0; c < 3; c++) {
    const gy = Math.floor(k / G), gx = k % G, vals: number[] = [];
    for (let y = 0; y < P; y++) for (let x = 0; x < P; x++) vals.push(px[((n * 3 + c) * S + gy * P + y) * S + gx * P + x]!);
    assert.equal(got[(n * 16 + k) * 6 + c], Math.min(...vals));
    assert.equal(got[(n * 16 + k) * 6 + 3 + c], Math.max(...vals));
  }
  // A coloured square and a coloured dot on white give the same statistics: shape does not enter.
  const img = (cells: [number, number][]) => {
    const a = new Float32Array(3 * S * S).fill(1);
    for (const [y, x] of cells) [0.2, -0.5, 0.7].forEach((v, c) => { a[(c * S + y) * S + x] = v; });
    return vit.patchStatistics(Tensor.from(a, [1, 3, S, S])).toArray().slice(0, 6);
  };
  assert.deepEqual([...img([[0, 0], [0, 1], [1, 0], [1, 1]])], [...img([[2, 2]])]);
  // The statistics change the features, the weight is counted and receives a gradient.
  const plain = new ViT(CFG, new Rng(0));
  assert.equal(plain.statsEmbed, null);
  const n = [...vit.params(), ...new Projector(cfg.width, 40, new Rng(1)).params()].reduce((s, p) => s + p.tensor.size, 0);
  assert.equal(n, visionParamCount(cfg, 40));
  assert.equal(visionParamCount(cfg, 40) - visionParamCount(CFG, 40), 6 * 24);
  const x = Tensor.from(px, [2, 3, S, S]);
  const a = vit.forward(x).toArray(), b = plain.forward(x).toArray();
  assert.ok(a.some((v, i) => v !== b[i]), 'patch statistics change the output');
  ops.sum(vit.forward(x)).backward();
  const g = vit.statsEmbed!.weight.grad!.toArray();
  assert.ok(g.some((v) => v !== 0), 'the statistics embedding receives a gradient');
  assert.equal(parseVisionConfig({ ...CFG }).patchStats, undefined);
  assert.throws(() => parseVisionConfig({ ...CFG, patchStats: 'yes' }), /patchStats/);
});

test('ViT per-channel patch norm: an object gives the same pixel-path input whatever its colour; the affine is learned', () => {
  const S = 16, P = 4;
  const chan = new ViT({ ...CFG, patchNorm: 'channel' }, new Rng(0)), whole = new ViT(CFG, new Rng(0));
  // A 2×2 square on a white patch, in two colours darker than white in every channel.
  const img = (rgb: number[]) => {
    const a = new Float32Array(3 * S * S).fill(1);
    for (const [y, x] of [[1, 1], [1, 2], [2, 1], [2, 2]] as const) rgb.forEach((v, c) => { a[(c * S + y) * S + x] = v; });
    return Tensor.from(a, [1, 3, S, S]);
  };
  const red = img([0.8, -0.7, -0.7]), blue = img([-0.7, -0.5, 0.75]);
  const first = (vit: ViT, x: Tensor) => [...vit.normalisePatches(vit.patchify(x)).toArray().slice(0, 3 * P * P)];
  const a = first(chan, red), b = first(chan, blue);
  // (equal up to the LayerNorm's eps, which weighs more on a channel with a small contrast)
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 2e-3, `value ${i}: ${v} vs ${b[i]}`));
  const c = first(whole, red), d = first(whole, blue);
  assert.ok(c.some((v, i) => Math.abs(v - d[i]!) > 0.1), 'a whole-patch LayerNorm keeps the colour');
  // Each channel of each patch has zero mean and unit variance before the affine (initialised to 1, 0).
  for (let ch = 0; ch < 3; ch++) {
    const xs = a.slice(ch * P * P, (ch + 1) * P * P), m = xs.reduce((s, v) => s + v, 0) / xs.length;
    assert.ok(Math.abs(m) < 1e-5 && Math.abs(xs.reduce((s, v) => s + (v - m) ** 2, 0) / xs.length - 1) < 5e-3);
  }
  ops.sum(chan.forward(red)).backward();
  assert.ok(chan.patchNorm.weight.grad!.toArray().some((v) => v !== 0), 'the scale receives a gradient');
  assert.equal(visionParamCount({ ...CFG, patchNorm: 'channel' }, 40), visionParamCount(CFG, 40));
  assert.throws(() => parseVisionConfig({ ...CFG, patchNorm: 'pixel' }), /patchNorm/);
});


/**
 * Finite-difference gradient checks, in float64 on the reference backend, for every op kind.
 * Central differences with h = 1e-6 have truncation error ~h^2 and rounding error ~1e-16/h,
 * so analytic and numeric gradients agree to ~1e-8; we allow 1e-6 relative (on the max norm).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, noGrad, referenceBackend, Rng } from '../../src/tensor/index.ts';
import * as ops from '../../src/tensor/ops.ts';
import { OP_KINDS, type OpKind } from '../../src/tensor/ops.ts';

const be = referenceBackend();
const rng = new Rng(1234);

function rand(shape: number[], scale = 1, positive = false): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = positive ? 0.5 + rng.uniform() * scale : rng.normal() * scale;
  const t = Tensor.from(d, shape, be);
  t.requiresGrad = true;
  return t;
}

function ints(shape: number[], limit: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Int32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.int(limit);
  return Tensor.from(d, shape, be);
}

/** Loss = sum(f(inputs) * w) with a fixed random w, so every output element matters. */
function check(name: string, inputs: Tensor[], f: (...xs: Tensor[]) => Tensor, tol = 1e-6): void {
  const y0 = noGrad(() => f(...inputs));
  const w = Tensor.from(Float64Array.from({ length: y0.size }, () => rng.normal()), y0.shape, be);
  const loss = () => ops.sum(ops.mul(f(...inputs), w));
  for (const x of inputs) x.grad = null;
  loss().backward();
  for (const [k, x] of inputs.entries()) {
    if (!x.requiresGrad) continue;
    const data = be.toHost(x.buf) as Float64Array;
    const analytic = x.grad!.toArray();
    const numeric = new Float64Array(x.size);
    const h = 1e-6;
    for (let i = 0; i < x.size; i++) {
      const orig = data[i]!;
      data[i] = orig + h; const lp = noGrad(loss).item();
      data[i] = orig - h; const lm = noGrad(loss).item();
      data[i] = orig;
      numeric[i] = (lp - lm) / (2 * h);
    }
    let maxDiff = 0, maxRef = 1e-12;
    for (let i = 0; i < x.size; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(analytic[i]! - numeric[i]!));
      maxRef = Math.max(maxRef, Math.abs(numeric[i]!));
    }
    assert.ok(maxDiff / maxRef < tol, `${name}: input ${k} gradient off by ${maxDiff} (relative ${maxDiff / maxRef})`);
  }
}

const covered = new Set<OpKind>();
function op(kind: OpKind, name: string, fn: () => void): void {
  covered.add(kind);
  test(`gradcheck ${kind}: ${name}`, fn);
}

op('matmul', 'plain, transposes, batched, shared b', () => {
  check('mm', [rand([3, 4]), rand([4, 5])], (a, b) => ops.matmul(a!, b!));
  check('mm tA', [rand([4, 3]), rand([4, 5])], (a, b) => ops.matmul(a!, b!, { transA: true }));
  check('mm tB', [rand([3, 4]), rand([5, 4])], (a, b) => ops.matmul(a!, b!, { transB: true }));
  check('mm tA tB', [rand([4, 3]), rand([5, 4])], (a, b) => ops.matmul(a!, b!, { transA: true, transB: true }));
  check('bmm', [rand([2, 3, 4]), rand([2, 4, 5])], (a, b) => ops.matmul(a!, b!));
  check('bmm tB', [rand([2, 3, 4]), rand([2, 5, 4])], (a, b) => ops.matmul(a!, b!, { transB: true }));
  check('bmm tA', [rand([2, 4, 3]), rand([2, 4, 5])], (a, b) => ops.matmul(a!, b!, { transA: true }));
  check('linear', [rand([2, 3, 4]), rand([5, 4])], (a, b) => ops.matmul(a!, b!, { transB: true }));
  check('linear tA shared', [rand([2, 4, 3]), rand([4, 5])], (a, b) => ops.matmul(a!, b!, { transA: true }));
});

op('binary', 'add/sub/mul/div/pow with broadcasting', () => {
  check('add', [rand([2, 3, 4]), rand([4])], (a, b) => ops.add(a!, b!));
  check('sub', [rand([2, 1, 4]), rand([3, 1])], (a, b) => ops.sub(a!, b!));
  check('mul', [rand([2, 3, 4]), rand([2, 3, 1])], (a, b) => ops.mul(a!, b!));
  check('div', [rand([3, 4]), rand([3, 4], 1, true)], (a, b) => ops.div(a!, b!));
  check('pow', [rand([3, 4], 1, true), rand([4])], (a, b) => ops.pow(a!, b!));
});

op('scalar', 'each op both ways', () => {
  for (const k of ['add', 'sub', 'mul', 'div', 'pow'] as const) {
    check(`${k} s`, [rand([5], 1, true)], (a) => ops.scalar(k, a!, 1.7));
    check(`s ${k}`, [rand([5], 1, true)], (a) => ops.scalar(k, a!, 1.7, true));
  }
});

op('unary', 'every unary op', () => {
  for (const k of ['neg', 'exp', 'tanh', 'gelu', 'gelu_erf', 'silu', 'sigmoid'] as const) check(k, [rand([7])], (a) => ops.unary(k, a!));
  for (const k of ['log', 'sqrt'] as const) check(k, [rand([7], 1, true)], (a) => ops.unary(k, a!));
});

op('sum', 'axes, keepdims, all', () => {
  check('sum all', [rand([2, 3, 4])], (a) => ops.sum(a!));
  check('sum axis', [rand([2, 3, 4])], (a) => ops.sum(a!, 1));
  check('sum axes keep', [rand([2, 3, 4])], (a) => ops.sum(a!, [0, 2], true));
  check('mean', [rand([2, 3, 4])], (a) => ops.mean(a!, -1));
});

op('max', 'over an axis', () => {
  check('max', [rand([3, 5])], (a) => ops.max(a!, 1));
});

op('softmax', 'last axis', () => check('softmax', [rand([3, 6])], (a) => ops.softmax(a!)));
op('logSoftmax', 'last axis', () => check('logSoftmax', [rand([3, 6])], (a) => ops.logSoftmax(a!)));

op('layerNorm', 'with and without affine', () => {
  check('ln', [rand([4, 6]), rand([6]), rand([6])], (x, w, b) => ops.layerNorm(x!, w!, b!));
  check('ln bare', [rand([4, 6])], (x) => ops.layerNorm(x!, null, null));
});

op('rmsNorm', 'with and without weight', () => {
  check('rms', [rand([4, 6]), rand([6])], (x, w) => ops.rmsNorm(x!, w!));
  check('rms bare', [rand([4, 6])], (x) => ops.rmsNorm(x!, null));
});

op('embedding', 'repeated ids', () => {
  const ids = Tensor.from(Int32Array.from([1, 3, 1, 0, 4]), [5], be);
  check('emb', [rand([6, 3])], (t) => ops.embedding(t!, ids));
});

op('crossEntropy', 'mean, ignore index, smoothing, none', () => {
  const tg = Tensor.from(Int32Array.from([2, -100, 0, 4]), [4], be);
  check('xent', [rand([4, 5])], (l) => ops.crossEntropy(l!, tg));
  check('xent smooth', [rand([4, 5])], (l) => ops.crossEntropy(l!, tg, { labelSmoothing: 0.1 }));
  check('xent none', [rand([4, 5])], (l) => ops.crossEntropy(l!, tg, { reduction: 'none' }));
  check('xent sum', [rand([2, 2, 5])], (l) => ops.crossEntropy(l!, Tensor.from(Int32Array.from([1, 2, 3, 4]), [2, 2], be), { reduction: 'sum' }));
});

op('attention', 'causal, full, GQA, mask, decode offset', () => {
  check('causal', [rand([2, 4, 2, 3]), rand([2, 4, 2, 3]), rand([2, 4, 2, 3])], (q, k, v) => ops.attention(q!, k!, v!, { causal: true }));
  check('full gqa', [rand([1, 3, 4, 2]), rand([1, 5, 2, 2]), rand([1, 5, 2, 2])], (q, k, v) => ops.attention(q!, k!, v!));
  check('decode', [rand([1, 2, 2, 3]), rand([1, 5, 2, 3]), rand([1, 5, 2, 3])], (q, k, v) => ops.attention(q!, k!, v!, { causal: true }));
  const m = new Float64Array(2 * 3 * 3).map((_, i) => (i % 4 === 1 ? -Infinity : rng.normal()));
  const mask = Tensor.from(m, [2, 1, 3, 3], be);
  check('mask', [rand([2, 3, 2, 2]), rand([2, 3, 2, 2]), rand([2, 3, 2, 2])], (q, k, v) => ops.attention(q!, k!, v!, { mask }));
});

op('dropout', 'fixed seed', () => check('dropout', [rand([20])], (x) => ops.dropout(x!, 0.3, 7)));

op('rope', 'positions', () => {
  const pos = Tensor.from(Int32Array.from([0, 1, 2, 5, 6, 7]), [2, 3], be);
  check('rope', [rand([2, 3, 2, 4])], (x) => ops.rope(x!, pos));
});

op('reshape', 'view', () => check('reshape', [rand([2, 6])], (x) => ops.reshape(x!, [3, -1])));
op('permute', 'and transpose', () => {
  check('permute', [rand([2, 3, 4])], (x) => ops.permute(x!, [2, 0, 1]));
  check('transpose', [rand([2, 3, 4])], (x) => ops.transpose(x!, 0, 2));
});
op('slice', 'narrow and negative slice', () => {
  check('narrow', [rand([4, 5])], (x) => ops.narrow(x!, 1, 1, 3));
  check('slice', [rand([4, 5])], (x) => ops.slice(x!, 0, -3, -1));
});
op('concat', 'split and stack too', () => {
  check('concat', [rand([2, 3]), rand([2, 1])], (a, b) => ops.concat([a!, b!], 1));
  check('split', [rand([5, 2])], (x) => { const [a, b] = ops.split(x!, [2, 3], 0); return ops.mul(ops.sum(a!), ops.sum(b!)); });
  check('stack', [rand([2, 3]), rand([2, 3])], (a, b) => ops.stack([a!, b!], 1));
});

test('every op kind has a gradient check', () => {
  const missing = OP_KINDS.filter((k) => !covered.has(k));
  assert.deepEqual(missing, []);
});

test('gradients accumulate across backward calls and respect noGrad', () => {
  const x = rand([3]);
  ops.sum(ops.mul(x, x)).backward();
  const g1 = x.grad!.toArray();
  ops.sum(ops.mul(x, x)).backward();
  const g2 = x.grad!.toArray();
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(g2[i]! - 2 * g1[i]!) < 1e-12);
  const y = noGrad(() => ops.mul(x, x));
  assert.equal(y.node, null);
  const d = x.detach();
  assert.equal(d.requiresGrad, false);
});

test('a tensor used twice gets both gradient contributions', () => {
  const x = rand([4]);
  const y = ops.add(ops.mul(x, x), x); // dy/dx = 2x + 1
  ops.sum(y).backward();
  const xs = x.toArray(), g = x.grad!.toArray();
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(g[i]! - (2 * xs[i]! + 1)) < 1e-12);
});

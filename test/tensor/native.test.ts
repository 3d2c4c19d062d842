// Native backend (native/, C + SIMD + threads) against the reference backend, kernel by kernel.
//
// Tolerance: relative error <= 1e-5, measured norm-wise: max_i |native_i - ref_i| / max_i |ref_i|
// (an element-wise relative error is meaningless where the reference value crosses zero). The
// reference computes in float64 and rounds once; native computes in float32 with a different
// summation order (SIMD lanes, blocks), so sums of k terms differ by ~sqrt(k) ulp — far below
// 1e-5 for the sizes here. Where a looser bound is used, the comment at the call says why.
//
// Determinism: every native kernel is bit-identical across repeated calls and across thread
// counts (checked below for 1 and 3 threads); dropout masks equal the reference bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attentionDecodeByItem, type Backend, type Buf } from '../../src/tensor/backend.ts';
import { ReferenceBackend } from '../../src/tensor/backends/reference.ts';
import { CpuBuf } from '../../src/tensor/backends/cpu-buf.ts';
import { getThreads, loadAddon, loadNativeBackend, nativeLoadError, setThreads } from '../../src/tensor/backends/native.ts';
import { OpError } from '../../src/util/errors.ts';
import { Rng } from '../../src/tensor/rng.ts';
import type { UnaryOp, BinaryOp } from '../../src/tensor/backend.ts';

const nat = loadNativeBackend();
const addon = loadAddon();
const ref = new ReferenceBackend();
const skip = nat ? false : `native addon unavailable: ${nativeLoadError()}`;
const rng = new Rng(1234);

function rand(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng.uniform() * 2 - 1) * scale;
  return a;
}
const buf = (a: Float32Array | Int32Array): Buf => new CpuBuf(a);
const data = (b: Buf): Float32Array => (b as CpuBuf).data as Float32Array;
const copyBuf = (a: Float32Array): Buf => buf(new Float32Array(a));

function relErr(got: ArrayLike<number>, want: ArrayLike<number>, floor = 0): number {
  assert.equal(got.length, want.length);
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (Number.isNaN(w) || Number.isNaN(g)) { assert.ok(Number.isNaN(w) && Number.isNaN(g), `NaN mismatch at ${i}`); continue; }
    if (!Number.isFinite(w)) { assert.equal(g, w, `at ${i}`); continue; }
    num = Math.max(num, Math.abs(g - w));
    den = Math.max(den, Math.abs(w));
  }
  den = Math.max(den, floor);
  return den === 0 ? num : num / den;
}
/** Asserts relErr <= tol; `floor` bounds the denominator from below (an absolute tolerance for tiny values). */
function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-5, floor = 0): void {
  const e = relErr(got, want, floor);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > ${tol}`);
}
function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: not bit-identical at ${i}: ${a[i]} vs ${b[i]}`);
}
/** Runs fn on the native backend with 1 and 3 threads (and twice), asserts bit-identical outputs, returns them. */
function deterministic(what: string, fn: (be: Backend) => Float32Array[]): Float32Array[] {
  const saved = getThreads();
  try {
    setThreads(1);
    const a = fn(nat!);
    setThreads(3);
    const b = fn(nat!), c = fn(nat!);
    a.forEach((x, i) => { sameBits(x, b[i]!, `${what} (1 vs 3 threads)`); sameBits(b[i]!, c[i]!, `${what} (repeat)`); });
    return b;
  } finally {
    setThreads(saved);
  }
}

const ODD = [1, 3, 17, 63, 65, 129, 257];

test('describe names the ISA and thread count', { skip }, () => {
  assert.match(nat!.describe(), /^native \((avx2\+fma(\+avx512f)?|neon|scalar), gemm .+, \d+ threads?\)$/);
});

test('matmul: odd sizes, both transposes, alpha, accumulate, every GEMM microkernel', { skip }, () => {
  const kernels = ['avx512', 'avx2', 'neon', 'generic'].filter((k) => addon!.gemmKernel(k));
  try {
    for (const kern of kernels) {
      addon!.gemmKernel(kern);
      for (let t = 0; t < 10; t++) {
        const m = ODD[rng.int(ODD.length)]!, n = ODD[rng.int(ODD.length)]!, k = ODD[rng.int(ODD.length)]!;
        for (const transA of [false, true]) for (const transB of [false, true]) {
          const a = rand(m * k), b = rand(k * n), c0 = rand(m * n);
          const accumulate = t % 2 === 1, alpha = t % 3 === 0 ? 1 : 0.75;
          const args = (out: Buf) => ({ a: buf(a), strideA: 0, b: buf(b), strideB: 0, out, strideOut: 0,
            batch: 1, m, n, k, transA, transB, alpha, accumulate });
          const want = copyBuf(c0), got = copyBuf(c0);
          ref.matmul(args(want)); nat!.matmul(args(got));
          close(data(got), data(want), `${kern} ${m}x${n}x${k} tA=${transA} tB=${transB}`);
        }
      }
    }
  } finally {
    addon!.gemmKernel('reset-unknown'); // unknown name: keeps the current kernel
    addon!.gemmKernel(kernels[0]!);
  }
});

test('matmul: a row gives the same bits alone, in a few rows (unpacked path) and in a large product (packed path)', { skip }, () => {
  const kernels = ['avx512', 'avx2', 'neon', 'generic'].filter((k) => addon!.gemmKernel(k));
  const saved = getThreads();
  try {
    for (const kern of kernels) {
      addon!.gemmKernel(kern);
      for (const [n, k, threads] of [[13, 5, 1], [40, 300, 1], [67, 520, 1], [1, 9, 1], [300, 520, 2]] as const) {
        setThreads(threads);
        for (const transA of [false, true]) for (const transB of [false, true]) for (const [alpha, accumulate] of [[1, false], [0.75, true]] as const) {
          const M = 19, a = rand(M * k), b = rand(k * n), c0 = rand(M * n);
          const opA = (i: number, p: number) => (transA ? a[p * M + i]! : a[i * k + p]!);
          const product = (rows: number[]): Float32Array => {
            const m = rows.length, sub = new Float32Array(m * k);
            rows.forEach((r, i) => { for (let p = 0; p < k; p++) sub[transA ? p * m + i : i * k + p] = opA(r, p); });
            const out = new Float32Array(m * n);
            rows.forEach((r, i) => out.set(c0.subarray(r * n, (r + 1) * n), i * n));
            const o = buf(out);
            nat!.matmul({ a: buf(sub), strideA: 0, b: buf(b), strideB: 0, out: o, strideOut: 0, batch: 1, m, n, k, transA, transB, alpha, accumulate });
            return data(o);
          };
          const all = product(Array.from({ length: M }, (_, i) => i));
          for (const [r0, mm] of [[0, 1], [7, 1], [3, 2], [10, 3], [0, 4], [14, 5], [11, 8]] as const) {
            const rows = Array.from({ length: mm }, (_, i) => r0 + i);
            sameBits(product(rows), all.slice(r0 * n, (r0 + mm) * n), `${kern} rows ${r0}..${r0 + mm - 1} of ${M}x${n}x${k} tA=${transA} tB=${transB} alpha=${alpha} acc=${accumulate} threads=${threads}`);
          }
        }
      }
    }
  } finally {
    setThreads(saved);
    addon!.gemmKernel(kernels[0]!);
  }
});

test('matmul: batched with strideB = 0 broadcast and offsets', { skip }, () => {
  const batch = 3, m = 65, n = 17, k = 129;
  const aOff = 5, bOff = 7, oOff = 3;
  const a = rand(aOff + batch * m * k), b = rand(bOff + k * n);
  const args = (out: Buf) => ({ a: buf(a), aOffset: aOff, strideA: m * k, b: buf(b), bOffset: bOff, strideB: 0,
    out, outOffset: oOff, strideOut: m * n + 2, batch, m, n, k, transA: false, transB: true });
  const len = oOff + batch * (m * n + 2);
  const want = buf(new Float32Array(len)), got = buf(new Float32Array(len));
  ref.matmul(args(want)); nat!.matmul(args(got));
  close(data(got), data(want), 'batched matmul');
});

test('matmul: large blocks (several KC slices, row blocks, column blocks) are bit-identical across thread counts', { skip }, () => {
  // 37x4500x1100 packs B in two column blocks (the packed-B budget), 301x517x600 splits rows among threads
  for (const [m, n, k, transA, transB] of [[301, 517, 600, true, false], [37, 4500, 1100, false, true]] as const) {
    const a = rand(m * k), b = rand(k * n);
    const [got] = deterministic('matmul', (be) => {
      const out = buf(new Float32Array(m * n));
      be.matmul({ a: buf(a), strideA: 0, b: buf(b), strideB: 0, out, strideOut: 0, batch: 1, m, n, k, transA, transB });
      return [data(out)];
    });
    // spot-check against a double-precision dot product (the reference over ~100M MACs is too slow here)
    for (let t = 0; t < 50; t++) {
      const i = rng.int(m), j = rng.int(n);
      let s = 0;
      for (let l = 0; l < k; l++) s += a[transA ? l * m + i : i * k + l]! * b[transB ? j * k + l : l * n + j]!;
      assert.ok(Math.abs(got![i * n + j]! - s) <= 1e-5 * Math.sqrt(k), `C[${i},${j}] = ${got![i * n + j]} vs ${s}`);
    }
  }
});

test('matmul: row tasks split among 1, 2, 3 and 4 threads give bit-identical products', { skip }, () => {
  // m of a few hundred rows is split into several tasks per thread (whole MR blocks, balanced)
  const saved = getThreads();
  try {
    for (const [m, n, k, transA] of [[512, 96, 64, false], [1000, 40, 300, true], [250, 33, 129, false]] as const) {
      const a = rand(m * k), b = rand(k * n);
      const outs = [1, 2, 3, 4].map((T) => {
        setThreads(T);
        const out = buf(new Float32Array(m * n));
        nat!.matmul({ a: buf(a), strideA: 0, b: buf(b), strideB: 0, out, strideOut: 0, batch: 1, m, n, k, transA, transB: false });
        return data(out);
      });
      outs.forEach((o, i) => sameBits(outs[0]!, o, `matmul ${m}x${n}x${k} (1 vs ${i + 1} threads)`));
    }
  } finally {
    setThreads(saved);
  }
});

interface AttnCase { B: number; Tq: number; Tk: number; Hq: number; Hkv: number; D: number; causal: boolean; mask: boolean; pad: number }
const ATTN: AttnCase[] = [
  { B: 2, Tq: 17, Tk: 17, Hq: 2, Hkv: 2, D: 16, causal: true, mask: false, pad: 0 },
  { B: 1, Tq: 33, Tk: 33, Hq: 4, Hkv: 1, D: 24, causal: false, mask: false, pad: 0 },       // GQA, full
  { B: 2, Tq: 20, Tk: 20, Hq: 4, Hkv: 2, D: 8, causal: false, mask: true, pad: 0 },          // additive mask
  { B: 2, Tq: 1, Tk: 37, Hq: 4, Hkv: 2, D: 32, causal: true, mask: false, pad: 5 * 2 * 32 },  // KV-cache decode
  { B: 1, Tq: 5, Tk: 70, Hq: 2, Hkv: 1, D: 64, causal: true, mask: true, pad: 64 },          // chunked prefill
  { B: 1, Tq: 3, Tk: 2048, Hq: 2, Hkv: 1, D: 128, causal: true, mask: false, pad: 0 },       // longest context, widest head
];

test('attention forward and backward: causal, full, mask, GQA, Tq < Tk', { skip }, () => {
  for (const c of ATTN) {
    const { B, Tq, Tk, Hq, Hkv, D } = c;
    const kvBatchStride = Tk * Hkv * D + c.pad;
    const q = rand(B * Tq * Hq * D), k = rand(B * kvBatchStride), v = rand(B * kvBatchStride), dout = rand(B * Tq * Hq * D);
    let mask: Float32Array | null = null;
    if (c.mask) {
      mask = rand(B * Tq * Tk, 0.5);
      for (let i = 0; i < mask.length; i += 7) mask[i] = -Infinity;
    }
    const run = (be: Backend) => {
      const out = buf(new Float32Array(B * Tq * Hq * D)), lse = buf(new Float32Array(B * Hq * Tq));
      const args = { q: buf(q), k: buf(k), v: buf(v), out, lse, B, Tq, Tk, Hq, Hkv, D, kvBatchStride, scale: 1 / Math.sqrt(D),
        causal: c.causal, mask: mask ? buf(mask) : null, maskBatchStride: Tq * Tk, maskHeadStride: 0 };
      be.attention(args);
      const dq = buf(new Float32Array(B * Tq * Hq * D)), dk = buf(new Float32Array(B * Tk * Hkv * D)), dv = buf(new Float32Array(B * Tk * Hkv * D));
      be.attentionBackward({ ...args, dout: buf(dout), dq, dk, dv });
      return [data(out), data(lse), data(dq), data(dk), data(dv)];
    };
    const want = run(ref);
    const got = deterministic(`attention ${JSON.stringify(c)}`, run);
    ['out', 'lse', 'dq', 'dk', 'dv'].forEach((name, i) => close(got[i]!, want[i]!, `attention ${name} ${JSON.stringify(c)}`));
  }
});

test('attention: a query row with every key masked gives 0 output, lse -inf, zero gradients', { skip }, () => {
  const B = 1, Tq = 2, Tk = 3, H = 1, D = 8;
  const mask = new Float32Array(Tq * Tk); mask.fill(-Infinity, 0, Tk);
  const args = { q: buf(rand(Tq * D)), k: buf(rand(Tk * D)), v: buf(rand(Tk * D)), out: buf(new Float32Array(Tq * D)),
    lse: buf(new Float32Array(Tq)), B, Tq, Tk, Hq: H, Hkv: H, D, kvBatchStride: Tk * D, scale: 0.3, causal: false, mask: buf(mask) };
  nat!.attention(args);
  assert.equal(data(args.lse)[0], -Infinity);
  assert.deepEqual([...data(args.out).subarray(0, D)], new Array(D).fill(0));
  const dq = buf(new Float32Array(Tq * D));
  nat!.attentionBackward({ ...args, dout: buf(rand(Tq * D)), dq, dk: buf(new Float32Array(Tk * D)), dv: buf(new Float32Array(Tk * D)) });
  assert.ok([...data(dq).subarray(0, D)].every((x) => x === 0));
});

test('attentionDecode: many sequences at once equal each alone, bit for bit; the caches get the new rows', { skip }, () => {
  const Hq = 4, Hkv = 2, D = 16, cap = 70, kv = Hkv * D;
  // items: a prompt of 65 rows (two query blocks), single decoding rows, one with an empty cache
  const shapes = [{ n: 65, start: 0 }, { n: 1, start: 40 }, { n: 1, start: 0 }, { n: 3, start: 66 }, { n: 1, start: 68 }];
  const rows = shapes.reduce((a, x) => a + x.n, 0);
  const q = rand(rows * Hq * D), k = rand(rows * kv), v = rand(rows * kv);
  const caches = shapes.map(() => ({ k: rand(cap * kv), v: rand(cap * kv) }));
  const run = (be: Backend, batched: boolean) => {
    let row = 0;
    const items = shapes.map((x, i) => {
      const it = { kCache: copyBuf(caches[i]!.k), vCache: copyBuf(caches[i]!.v), row, n: x.n, start: x.start };
      row += x.n;
      return it;
    });
    const out = buf(new Float32Array(rows * Hq * D));
    const p = { q: buf(q), k: buf(k), v: buf(v), out, lse: buf(new Float32Array(rows * Hq)), items, Hq, Hkv, D, scale: 0.25 };
    if (batched) be.attentionDecode(p); else attentionDecodeByItem(be, p);
    return { out: data(out), caches: items.map((it) => [data(it.kCache), data(it.vCache)]) };
  };
  const batched = run(nat!, true), alone = run(nat!, false), reference = run(ref, true);
  assert.deepEqual(batched.out, alone.out, 'one call for all sequences = one call per sequence');
  assert.deepEqual(batched.caches, alone.caches);
  assert.ok(relErr(batched.out, reference.out) < 1e-5);
  // the new rows are in the caches, the rest of each cache untouched
  let row = 0;
  shapes.forEach((x, i) => {
    const got = batched.caches[i]![0]!;
    assert.deepEqual(got.subarray(x.start * kv, (x.start + x.n) * kv), k.subarray(row * kv, (row + x.n) * kv));
    assert.deepEqual(got.subarray(0, x.start * kv), caches[i]!.k.subarray(0, x.start * kv));
    row += x.n;
  });
  // bad items are refused with the kernel's name
  const one = { q: buf(q), k: buf(k), v: buf(v), out: buf(new Float32Array(rows * Hq * D)), lse: buf(new Float32Array(rows * Hq)), Hq, Hkv, D, scale: 1 };
  const c = { kCache: buf(new Float32Array(cap * kv)), vCache: buf(new Float32Array(cap * kv)) };
  assert.throws(() => nat!.attentionDecode({ ...one, items: [{ ...c, row: 0, n: 0, start: 0 }] }), /attentionDecode: item 0: .*n >= 1/);
  assert.throws(() => nat!.attentionDecode({ ...one, items: [{ ...c, row: 0, n: 2, start: cap - 1 }] }), /attentionDecode: kcaches\[0\] has 2240 elements but needs at least 2272/);
  assert.throws(() => nat!.attentionDecode({ ...one, items: [{ ...c, row: rows, n: 1, start: 0 }] }), /attentionDecode: q has/);
});

const UNARY: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'tanh', 'gelu', 'gelu_erf', 'silu', 'relu', 'sigmoid', 'abs'];

test('unary ops and their derivatives (with accumulate), odd lengths', { skip }, () => {
  for (const op of UNARY) {
    for (const n of [1, 17, 1000, 600001]) {   // the last one runs in several chunks on the pool
      const positive = op === 'log' || op === 'sqrt';
      const x = rand(n, 6);
      if (positive) for (let i = 0; i < n; i++) x[i] = Math.abs(x[i]!) + 1e-3;
      if (n > 8) { x[0] = 0; x[1] = 1e-4; x[2] = -1e-4; }  // tanh/gelu near 0: relative accuracy matters
      if (positive) { x[0] = 0.5; x[2] = 2; }
      const dy = rand(n), dx0 = rand(n);
      // The backward gets the reference's forward output on both backends: derivatives taken from y
      // (tanh: 1 - y^2) amplify a 1-ulp difference in y where |y| -> 1, which is not the kernel's error.
      const yRef = buf(new Float32Array(n));
      ref.unary(op, buf(x), yRef, n);
      const run = (be: Backend) => {
        const y = buf(new Float32Array(n));
        be.unary(op, buf(x), y, n);
        const dx = copyBuf(dx0), dxa = copyBuf(dx0);
        be.unaryBackward(op, buf(x), yRef, buf(dy), dx, n, false);
        be.unaryBackward(op, buf(x), yRef, buf(dy), dxa, n, true);
        return [data(y), data(dx), data(dxa)];
      };
      const want = run(ref), got = n > 1000 ? deterministic(`unary ${op}`, run) : run(nat!);
      close(got[0]!, want[0]!, `${op} n=${n}`);
      close(got[1]!, want[1]!, `${op}' n=${n}`);
      close(got[2]!, want[2]!, `${op}' accumulate n=${n}`);
    }
  }
});

test('tanh and gelu are accurate element-wise (vectorised exp/expm1, error bound in vmath.h)', { skip }, () => {
  const n = 4096, x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (i - n / 2) / 256;   // [-8, 8)
  for (const op of ['tanh', 'exp', 'sigmoid'] as UnaryOp[]) {
    const got = buf(new Float32Array(n)), want = buf(new Float32Array(n));
    nat!.unary(op, buf(x), got, n); ref.unary(op, buf(x), want, n);
    for (let i = 0; i < n; i++) {
      const g = data(got)[i]!, w = data(want)[i]!;
      assert.ok(Math.abs(g - w) <= 1e-6 * Math.abs(w) + 1e-30, `${op}(${x[i]}) = ${g}, want ${w}`);
    }
  }
});

test('binary ops with broadcasting, and scalar / axpy', { skip }, () => {
  const ops: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'pow', 'max', 'min'];
  const cases: { shape: number[]; as: number[]; bs: number[]; alen: number; blen: number }[] = [
    { shape: [600001], as: [1], bs: [1], alen: 600001, blen: 600001 },               // several chunks on the pool
    { shape: [17, 63], as: [63, 1], bs: [0, 1], alen: 17 * 63, blen: 63 },           // row broadcast (bias)
    { shape: [3, 5, 129], as: [5 * 129, 129, 1], bs: [5, 1, 0], alen: 3 * 5 * 129, blen: 15 },  // column broadcast
    { shape: [4, 1, 33], as: [33, 0, 1], bs: [0, 0, 1], alen: 4 * 33, blen: 33 },
    { shape: [7, 9], as: [1, 7], bs: [9, 1], alen: 63, blen: 63 },                   // transposed operand
  ];
  for (const op of ops) {
    for (const c of cases) {
      const a = rand(c.alen, 3), b = rand(c.blen, 3);
      if (op === 'pow') for (let i = 0; i < a.length; i++) a[i] = Math.abs(a[i]!) + 0.1;
      const n = c.shape.reduce((p, d) => p * d, 1);
      const run = (be: Backend) => {
        const out = buf(new Float32Array(n));
        be.binary(op, buf(a), c.as, buf(b), c.bs, out, c.shape);
        return [data(out)];
      };
      close(deterministic(`binary ${op}`, run)[0]!, run(ref)[0]!, `${op} ${JSON.stringify(c.shape)}`);
    }
    const x = rand(1001, 2);
    if (op === 'pow') for (let i = 0; i < x.length; i++) x[i] = Math.abs(x[i]!) + 0.1;
    for (const reverse of [false, true]) {
      const g = buf(new Float32Array(1001)), w = buf(new Float32Array(1001));
      nat!.scalar(op, buf(x), 1.5, g, 1001, reverse); ref.scalar(op, buf(x), 1.5, w, 1001, reverse);
      close(data(g), data(w), `scalar ${op} reverse=${reverse}`);
    }
  }
  const x = rand(100003), y0 = rand(100003);
  const g = copyBuf(y0), w = copyBuf(y0);
  nat!.axpy(-0.7, buf(x), g, 100003); ref.axpy(-0.7, buf(x), w, 100003);
  close(data(g), data(w), 'axpy');
});

test('reductions: reduceSum, reduceMax (first argmax), sumSquares', { skip }, () => {
  for (const [outer, mid, inner] of [[1, 257, 1], [3, 17, 65], [2, 4097, 1], [1, 63, 2049], [129, 3, 1], [4, 300, 257]] as const) {
    const x = rand(outer * mid * inner);
    x[0] = x[inner] ?? x[0]!;  // a tie: argmax must be the first index
    const run = (be: Backend) => {
      const s = buf(new Float32Array(outer * inner)), m = buf(new Float32Array(outer * inner)), am = buf(new Int32Array(outer * inner));
      be.reduceSum(buf(x), s, outer, mid, inner);
      be.reduceMax(buf(x), m, am, outer, mid, inner);
      return [data(s), data(m), new Float32Array((am as CpuBuf).data as Int32Array)];
    };
    const want = run(ref), got = deterministic('reductions', run);
    close(got[0]!, want[0]!, `reduceSum ${outer}x${mid}x${inner}`);
    assert.deepEqual(got[1], want[1]);
    assert.deepEqual(got[2], want[2]);
  }
  const x = rand(300001);
  const s1 = nat!.sumSquares(buf(x), 300001), s2 = ref.sumSquares(buf(x), 300001);
  assert.ok(Math.abs(s1 - s2) <= 1e-12 * s2, `sumSquares ${s1} vs ${s2}`);  // both accumulate in double
});

test('softmax, log-softmax, layerNorm, rmsNorm: forward and backward', { skip }, () => {
  // (cols = 1 and 2 are left out: there the exact norm gradients vanish up to eps terms — RMSNorm's
  //  is dy * rstd * eps / (x^2 + eps) for one column, LayerNorm's output is +-1 for two — so dx is a
  //  cancellation of nearly equal terms that float32 cannot resolve, whatever the implementation.)
  for (const [rows, cols] of [[1, 5], [3, 17], [65, 257], [7, 4099], [300, 513]] as const) {
    const x = rand(rows * cols, 4), dy = rand(rows * cols), w = rand(cols), b = rand(cols), dw0 = rand(cols), db0 = rand(cols);
    const run = (be: Backend) => {
      const n = rows * cols;
      const sm = buf(new Float32Array(n)), lsm = buf(new Float32Array(n)), dsm = buf(new Float32Array(n)), dlsm = buf(new Float32Array(n));
      be.softmax(buf(x), sm, rows, cols); be.softmaxBackward(sm, buf(dy), dsm, rows, cols);
      be.logSoftmax(buf(x), lsm, rows, cols); be.logSoftmaxBackward(lsm, buf(dy), dlsm, rows, cols);
      const out: Float32Array[] = [data(sm), data(dsm), data(lsm), data(dlsm)];
      for (const affine of [true, false]) {
        const y = buf(new Float32Array(n)), mean = buf(new Float32Array(rows)), rstd = buf(new Float32Array(rows));
        const dx = buf(new Float32Array(n)), dw = copyBuf(dw0), db = copyBuf(db0);
        be.layerNorm(buf(x), affine ? buf(w) : null, affine ? buf(b) : null, y, mean, rstd, rows, cols, 1e-5);
        be.layerNormBackward(buf(x), affine ? buf(w) : null, mean, rstd, buf(dy), dx, affine ? dw : null, affine ? db : null, rows, cols);
        out.push(data(y), data(mean), data(rstd), data(dx), data(dw), data(db));
        const ry = buf(new Float32Array(n)), rr = buf(new Float32Array(rows)), rdx = buf(new Float32Array(n)), rdw = copyBuf(dw0);
        be.rmsNorm(buf(x), affine ? buf(w) : null, ry, rr, rows, cols, 1e-6);
        be.rmsNormBackward(buf(x), affine ? buf(w) : null, rr, buf(dy), rdx, affine ? rdw : null, rows, cols);
        out.push(data(ry), data(rr), data(rdx), data(rdw));
      }
      return out;
    };
    const want = run(ref), got = deterministic('rows', run);
    want.forEach((w2, i) => close(got[i]!, w2, `rows ${rows}x${cols} output #${i}`));
  }
});

test('cross-entropy with ignore index and label smoothing', { skip }, () => {
  for (const [rows, V] of [[1, 3], [17, 65], [33, 4099]] as const) {
    for (const smoothing of [0, 0.1]) {
      const x = rand(rows * V, 5), dloss = rand(rows);
      const t = new Int32Array(rows);
      for (let r = 0; r < rows; r++) t[r] = r % 5 === 4 ? -100 : rng.int(V);
      const run = (be: Backend) => {
        const losses = buf(new Float32Array(rows)), lse = buf(new Float32Array(rows)), dx = buf(rand(rows * V));
        be.crossEntropy(buf(x), buf(t), losses, lse, rows, V, -100, smoothing);
        be.crossEntropyBackward(buf(x), buf(t), lse, buf(dloss), dx, rows, V, -100, smoothing);
        return [data(losses), data(lse), data(dx)];
      };
      const want = run(ref), got = deterministic('xent', run);
      // Losses are compared relative to max(|loss|, 1 nat): the loss of a confident right prediction is
      // log(1 + eps) with eps ~ 1e-3, and float32 holds 1 + eps only to 6e-8 absolute (any float32
      // implementation), a large relative error on such a small loss but 6e-8 on the scale of a nat.
      ['losses', 'lse', 'dlogits'].forEach((nm, i) =>
        close(got[i]!, want[i]!, `xent ${nm} ${rows}x${V} s=${smoothing}`, 1e-5, nm === 'losses' ? 1 : 0));
    }
  }
});

test('cross-entropy forward: large logits, -inf (masked) entries, many rows', { skip }, () => {
  // the AVX-512 forward sums exp with a table-based exp and prefetches rows ahead: check rows that
  // end a thread's range, logits far below the max (exp underflows) and -Infinity entries
  const rows = 67, V = 1031;
  const x = rand(rows * V, 30);
  for (let r = 0; r < rows; r += 3) for (let j = 0; j < V; j += 7) x[r * V + j] = -Infinity;
  const t = new Int32Array(rows);
  for (let r = 0; r < rows; r++) { t[r] = rng.int(V); if (x[r * V + t[r]!] === -Infinity) t[r] = (t[r]! + 1) % V; }
  const run = (be: Backend) => {
    const losses = buf(new Float32Array(rows)), lse = buf(new Float32Array(rows));
    be.crossEntropy(buf(x), buf(t), losses, lse, rows, V, -100, 0);
    return [data(losses), data(lse)];
  };
  const want = run(ref), got = deterministic('xent -inf', run);
  close(got[0]!, want[0]!, 'xent losses with -inf logits', 1e-5, 1);
  close(got[1]!, want[1]!, 'xent lse with -inf logits');
});

test('embedding, embedding backward (repeated ids), rope forward and inverse', { skip }, () => {
  const rows = 50, dim = 129, n = 2100;
  const table = rand(rows * dim), dout = rand(n * dim), dt0 = rand(rows * dim);
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = rng.int(rows);
  const run = (be: Backend) => {
    const out = buf(new Float32Array(n * dim)), dt = copyBuf(dt0);
    be.embedding(buf(table), buf(ids), out, n, dim);
    be.embeddingBackward(buf(dout), buf(ids), dt, n, dim);
    return [data(out), data(dt)];
  };
  const want = run(ref), got = deterministic('embedding', run);
  assert.deepEqual(got[0], want[0]);
  close(got[1]!, want[1]!, 'embeddingBackward');

  const N = 2, T = 400, H = 3, D = 64;
  const x = rand(N * T * H * D), pos = new Int32Array(N * T);
  for (let i = 0; i < N * T; i++) pos[i] = 2000 + i;   // large positions: angles in double
  for (const inverse of [false, true]) {
    const r2 = (be: Backend) => { const o = buf(new Float32Array(x.length)); be.rope(buf(x), o, buf(pos), N, T, H, D, 10000, inverse); return [data(o)]; };
    close(deterministic('rope', r2)[0]!, r2(ref)[0]!, `rope inverse=${inverse}`);
  }
  const inplace = copyBuf(x);                         // in place, forward then inverse: back to x
  nat!.rope(inplace, inplace, buf(pos), N, T, H, D, 10000, false);
  nat!.rope(inplace, inplace, buf(pos), N, T, H, D, 10000, true);
  close(data(inplace), x, 'rope round trip');
});

test('dropout reproduces the reference mask and output bit for bit', { skip }, () => {
  for (const [n, p, seed, offset] of [[1, 0.5, 1, 0], [10007, 0.1, 42, 123456], [200000, 0.9, 0xffffffff, 2 ** 32 - 5000]] as const) {
    const x = rand(n);
    const run = (be: Backend) => {
      const out = buf(new Float32Array(n)), mask = buf(new Float32Array(n));
      be.dropout(buf(x), out, mask, n, p, seed, offset);
      return [data(out), data(mask)];
    };
    const want = run(ref), got = deterministic('dropout', run);
    sameBits(got[0]!, want[0]!, `dropout out n=${n}`);
    sameBits(got[1]!, want[1]!, `dropout mask n=${n}`);
  }
});

test('adamw matches the reference', { skip }, () => {
  const n = 200003;
  const p0 = rand(n), g = rand(n), m0 = rand(n, 0.1), v0 = rand(n, 0.1).map(Math.abs);
  const run = (be: Backend) => {
    const p = copyBuf(p0), m = copyBuf(m0), v = copyBuf(v0);
    for (let t = 1; t <= 3; t++) be.adamw(p, buf(g), m, v, n, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1 - 0.9 ** t, 1 - 0.95 ** t, 0.5);
    return [data(p), data(m), data(v)];
  };
  const want = run(ref), got = deterministic('adamw', run);
  ['p', 'm', 'v'].forEach((nm, i) => close(got[i]!, want[i]!, `adamw ${nm}`));
});

test('stridedCopy: slice, permute, transpose, accumulate, int32; cast both ways', { skip }, () => {
  const B = 2, T = 1400, H = 3, D = 33;
  const src = rand(B * T * H * D);
  const cases = [
    // (B,T,H,D) -> (B,H,T,D) permute
    { so: 0, ss: [T * H * D, H * D, D, 1], ds: [H * T * D, D, T * D, 1], shape: [B, T, H, D], dlen: B * T * H * D + 1 },
    // slice of the last axis [5, 25) into a compact buffer
    { so: 5, ss: [T * H * D, H * D, D, 1], ds: [T * H * 20, H * 20, 20, 1], shape: [B, T, H, 20], dlen: B * T * H * 20 + 1 },
    // 2-d transpose (T*H, D) -> (D, T*H): tiled path
    { so: 0, ss: [D, 1], ds: [1, B * T * H], shape: [B * T * H, D], dlen: B * T * H * D + 1 },
    // one long contiguous row with offsets
    { so: 3, ss: [1], ds: [1], shape: [B * T * H * D - 10], dlen: B * T * H * D },
  ];
  for (const c of cases) {
    for (const accumulate of [false, true]) {
      const d0 = rand(c.dlen);
      const run = (be: Backend) => {
        const dst = copyBuf(d0);
        be.stridedCopy(buf(src), c.so, c.ss, dst, accumulate ? 0 : 1, c.ds, c.shape, accumulate);
        return [data(dst)];
      };
      const want = run(ref), got = deterministic('stridedCopy', run);
      if (accumulate) close(got[0]!, want[0]!, `stridedCopy acc ${JSON.stringify(c.shape)}`);
      else sameBits(got[0]!, want[0]!, `stridedCopy ${JSON.stringify(c.shape)}`);
    }
  }
  const isrc = new Int32Array(600).map((_, i) => i * 7 - 300);
  const g = buf(new Int32Array(600)), w = buf(new Int32Array(600));
  nat!.stridedCopy(buf(isrc), 0, [20, 1], g, 0, [1, 30], [30, 20], false);
  ref.stridedCopy(buf(isrc), 0, [20, 1], w, 0, [1, 30], [30, 20], false);
  assert.deepEqual((g as CpuBuf).data, (w as CpuBuf).data);

  const f = new Float32Array([0, 1.9, -1.9, 3e9, -3e9, NaN, Infinity, 2 ** 31, -(2 ** 31), 123456.7]);
  const gi = buf(new Int32Array(f.length)), wi = buf(new Int32Array(f.length));
  nat!.cast(buf(f), gi, f.length); ref.cast(buf(f), wi, f.length);
  assert.deepEqual((gi as CpuBuf).data, (wi as CpuBuf).data);   // JavaScript ToInt32 semantics
  const ii = new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31), 16777217]);
  const gf = buf(new Float32Array(5)), wf = buf(new Float32Array(5));
  nat!.cast(buf(ii), gf, 5); ref.cast(buf(ii), wf, 5);
  assert.deepEqual(data(gf), data(wf));
});

test('float64 buffers are delegated to the reference backend', { skip }, () => {
  const a = new Float64Array([1, 2, 3, 4]), b = new Float64Array([5, 6, 7, 8]);
  const out = buf(new Float64Array(4) as unknown as Float32Array);
  nat!.matmul({ a: new CpuBuf(a), strideA: 0, b: new CpuBuf(b), strideB: 0, out, strideOut: 0, batch: 1, m: 2, n: 2, k: 2, transA: false, transB: false });
  assert.deepEqual([...(out as CpuBuf).data], [19, 22, 43, 50]);
});

test('bad arguments raise errors that name the kernel, never a crash', { skip }, () => {
  const small = buf(new Float32Array(10)), ids = buf(new Int32Array([0, 5]));
  const mm = { a: small, strideA: 0, b: small, strideB: 0, out: small, strideOut: 0, batch: 1, m: 4, n: 4, k: 4, transA: false, transB: false };
  assert.throws(() => nat!.matmul(mm), (e: unknown) => e instanceof OpError && /matmul: a has 10 elements/.test(e.message));
  assert.throws(() => nat!.matmul({ ...mm, m: -1 }), /matmul: m must be an integer >= 0/);
  assert.throws(() => nat!.matmul({ ...mm, m: 1.5 }), /matmul/);
  assert.throws(() => nat!.matmul({ ...mm, aOffset: 8, m: 1, n: 1, k: 4 }), /a has 10 elements/);
  assert.throws(() => nat!.embedding(buf(new Float32Array(8)), ids, buf(new Float32Array(8)), 2, 4), /embedding: ids\[1\] = 5 is outside \[0, 2\)/);
  assert.throws(() => nat!.embeddingBackward(buf(new Float32Array(8)), buf(new Int32Array([-1, 0])), buf(new Float32Array(8)), 2, 4), /ids\[0\] = -1/);
  assert.throws(() => nat!.crossEntropy(buf(new Float32Array(6)), buf(new Int32Array([0, 3])), buf(new Float32Array(2)), buf(new Float32Array(2)), 2, 3, -100, 0),
    /crossEntropy: targets\[1\] = 3 is outside \[0, 3\)/);
  assert.throws(() => nat!.softmax(small, small, 3, 4), /softmax: x has 10 elements but the sizes given need at least 12/);
  assert.throws(() => addon!.unary(0, new Int32Array(4) as unknown as Float32Array, new Float32Array(4), 4), /x must be float32/);
  assert.throws(() => addon!.unary(99, new Float32Array(4), new Float32Array(4), 4), /unknown op code 99/);
  assert.throws(() => addon!.matmul(null as unknown as Float32Array, 0, 0, new Float32Array(1), 0, 0, new Float32Array(1), 0, 0, 1, 1, 1, 1, false, false, 1, false),
    /a must be a Float32Array/);
  const attn = { q: small, k: small, v: small, out: small, lse: small, B: 1, Tq: 1, Tk: 1, Hq: 3, Hkv: 2, D: 2, kvBatchStride: 2, scale: 1, causal: false };
  assert.throws(() => nat!.attention(attn), /Hq \(3\) must be a multiple of Hkv \(2\)/);
  assert.throws(() => nat!.attention({ ...attn, Hq: 2, causal: true, Tq: 2 }), /causal attention needs Tq/);
  assert.throws(() => nat!.attention({ ...attn, Hq: 2, Hkv: 2, D: 8 }), /attention: q has 10 elements/);
  assert.throws(() => nat!.rope(small, small, buf(new Int32Array(1)), 1, 1, 1, 3, 10000, false), /D must be even/);
  assert.throws(() => nat!.stridedCopy(small, 0, [1], small, 5, [1], [6], false), /dst has 10 elements/);
  assert.throws(() => nat!.stridedCopy(small, 0, [-1], small, 0, [1], [3], false), /negative strides/);
  assert.throws(() => nat!.binary('add', small, [1, 1], small, [1], small, [2]), /same length/);
  assert.throws(() => nat!.dropout(small, small, small, 10, 1.5, 1, 0), /p must be in \[0, 1\]/);
  assert.throws(() => setThreads(0), /setThreads/);
});

/**
 * The native backend: the C kernels of native/ (SIMD + a thread pool) behind N-API.
 *
 * Storage is the same `CpuBuf` (a typed array in JavaScript memory) as the reference backend;
 * the addon reads and writes that memory in place, without copies. float32 and int32 run in C;
 * float64 buffers (used only by gradient checks) and mixed-dtype copies are delegated to the
 * reference backend. Every addon entry validates its arguments and throws instead of reading out
 * of range; those errors are rethrown here as `OpError`s naming the kernel.
 *
 * Threads: a persistent pool whose size defaults to `os.availableParallelism()`, overridden by
 * the `LUMEN_THREADS` environment variable and by `setThreads(n)`.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attentionDecodeByItem, type AttentionArgs, type AttentionBackwardArgs, type Backend, type BinaryOp, type Buf, type DecodeAttentionArgs, type DType, type MatmulArgs, type UnaryOp } from '../backend.ts';
import { OpError } from '../../util/errors.ts';
import { registerNativeLoader, referenceBackend } from '../device.ts';
import { CpuBuf, BufferPool, host, type HostArray } from './cpu-buf.ts';

type F32 = Float32Array;
type I32 = Int32Array;

/** The functions exported by native/src/addon.c (argument order as there). */
export interface NativeAddon {
  info(): { isa: string; gemm: string; threads: number };
  setThreads(n: number): number;
  getThreads(): number;
  /** Forces a GEMM microkernel ('avx512' | 'avx2' | 'generic'); false when the CPU lacks it. */
  gemmKernel(name: string): boolean;
  matmul(a: F32, aOff: number, strideA: number, b: F32, bOff: number, strideB: number, out: F32, outOff: number,
         strideOut: number, batch: number, m: number, n: number, k: number, transA: boolean, transB: boolean,
         alpha: number, accumulate: boolean): void;
  unary(op: number, x: F32, out: F32, n: number): void;
  unaryBackward(op: number, x: F32, y: F32, dy: F32, dx: F32, n: number, accumulate: boolean): void;
  binary(op: number, a: F32, aStrides: readonly number[], b: F32, bStrides: readonly number[], out: F32, shape: readonly number[]): void;
  scalar(op: number, x: F32, s: number, out: F32, n: number, reverse: boolean): void;
  axpy(alpha: number, x: F32, y: F32, n: number): void;
  dropout(x: F32, out: F32, mask: F32, n: number, p: number, seed: number, offset: number): void;
  adamw(p: F32, g: F32, m: F32, v: F32, n: number, lr: number, b1: number, b2: number, eps: number, wd: number,
        bc1: number, bc2: number, gradScale: number): void;
  reduceSum(x: F32, out: F32, outer: number, mid: number, inner: number): void;
  reduceMax(x: F32, out: F32, argmax: I32, outer: number, mid: number, inner: number): void;
  sumSquares(x: F32, n: number): number;
  softmax(x: F32, out: F32, rows: number, cols: number, log: boolean): void;
  softmaxBackward(y: F32, dy: F32, dx: F32, rows: number, cols: number, log: boolean): void;
  layerNorm(x: F32, w: F32 | null, b: F32 | null, out: F32, mean: F32, rstd: F32, rows: number, cols: number, eps: number): void;
  layerNormBackward(x: F32, w: F32 | null, mean: F32, rstd: F32, dy: F32, dx: F32, dw: F32 | null, db: F32 | null,
                    rows: number, cols: number): void;
  rmsNorm(x: F32, w: F32 | null, out: F32, rstd: F32, rows: number, cols: number, eps: number): void;
  rmsNormBackward(x: F32, w: F32 | null, rstd: F32, dy: F32, dx: F32, dw: F32 | null, rows: number, cols: number): void;
  crossEntropy(logits: F32, targets: I32, losses: F32, lse: F32, rows: number, V: number, ignoreIndex: number, smoothing: number): void;
  crossEntropyBackward(logits: F32, targets: I32, lse: F32, dloss: F32, dlogits: F32, rows: number, V: number,
                       ignoreIndex: number, smoothing: number): void;
  embedding(table: F32, ids: I32, out: F32, n: number, dim: number): void;
  embeddingBackward(dout: F32, ids: I32, dtable: F32, n: number, dim: number): void;
  rope(x: F32, out: F32, positions: I32, N: number, T: number, H: number, D: number, base: number, inverse: boolean): void;
  attention(q: F32, k: F32, v: F32, out: F32, lse: F32, B: number, Tq: number, Tk: number, Hq: number, Hkv: number,
            D: number, kvBatchStride: number, scale: number, causal: boolean, mask: F32 | null,
            maskBatchStride: number, maskHeadStride: number): void;
  attentionDecode(q: F32, knew: F32, vnew: F32, out: F32, lse: F32, kcaches: F32[], vcaches: F32[], meta: I32,
                  Hq: number, Hkv: number, D: number, scale: number): void;
  attentionBackward(q: F32, k: F32, v: F32, out: F32, lse: F32, B: number, Tq: number, Tk: number, Hq: number, Hkv: number,
                    D: number, kvBatchStride: number, scale: number, causal: boolean, mask: F32 | null,
                    maskBatchStride: number, maskHeadStride: number, dout: F32, dq: F32, dk: F32, dv: F32): void;
  stridedCopy(src: F32 | I32, srcOffset: number, srcStrides: readonly number[], dst: F32 | I32, dstOffset: number,
              dstStrides: readonly number[], shape: readonly number[], accumulate: boolean): void;
  cast(src: F32 | I32, dst: F32 | I32, n: number): void;
  /** Parallel memcpy of n floats (the benchmark's bandwidth yardstick). */
  copy(src: F32, dst: F32, n: number): void;
}

const UNARY: Record<UnaryOp, number> = {
  neg: 0, exp: 1, log: 2, sqrt: 3, tanh: 4, gelu: 5, gelu_erf: 6, silu: 7, relu: 8, sigmoid: 9, abs: 10,
};
const BINARY: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3, pow: 4, max: 5, min: 6 };

/** Where node-gyp puts the addon (native/build/Release), relative to this file. */
export const ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native', 'build', 'Release', 'lumen_native.node');

let addon: NativeAddon | null | undefined;
let loadError: string | null = null;
let backend: NativeBackend | null = null;

/** The raw addon, loaded once; null when it is missing or fails to load (see `nativeLoadError`). */
export function loadAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  if (!existsSync(ADDON_PATH)) {
    loadError = `native addon not built (${ADDON_PATH} is missing; run npm ci)`;
    return (addon = null);
  }
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (e) {
    loadError = `native addon failed to load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    return (addon = null);
  }
  addon.setThreads(defaultThreads());
  return addon;
}

/** Why the native backend is unavailable, or null when it loaded (or was not tried yet). */
export function nativeLoadError(): string | null {
  return loadError;
}

/**
 * The buffer pool: LUMEN_POOL_MB (default 256) caps what it keeps between steps and its pending
 * limit, 0 turns reuse off; LUMEN_STEP_MB (default 4096) caps what one step scope records.
 */
function poolFromEnv(): BufferPool {
  const env = process.env.LUMEN_POOL_MB;
  let mb = 256, stepMb = 4096;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (Number.isFinite(n) && n >= 0 && n <= 1 << 20) mb = n;
    else console.error(`lumen: ignoring LUMEN_POOL_MB=${env} (expected a number of MiB, 0 to turn the pool off)`);
  }
  const stepEnv = process.env.LUMEN_STEP_MB;
  if (stepEnv !== undefined && stepEnv !== '') {
    const n = Number(stepEnv);
    if (Number.isFinite(n) && n >= 0 && n <= 1 << 20) stepMb = n;
    else console.error(`lumen: ignoring LUMEN_STEP_MB=${stepEnv} (expected a number of MiB)`);
  }
  const pool = new BufferPool(mb * 2 ** 20, mb * 2 ** 20, 64, stepMb * 2 ** 20);
  pool.poison = process.env.LUMEN_POOL_POISON === '1';
  return pool;
}

function defaultThreads(): number {
  const env = process.env.LUMEN_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 1 && n <= 256) return n;
    console.error(`lumen: ignoring LUMEN_THREADS=${env} (expected an integer in 1..256)`);
  }
  return availableParallelism();
}

/** The native backend, or null (with `nativeLoadError()` saying why) when the addon is unavailable. */
export function loadNativeBackend(): Backend | null {
  if (backend) return backend;
  const a = loadAddon();
  return a ? (backend = new NativeBackend(a)) : null;
}

/** Sets the kernel thread count (>= 1, including the calling thread). */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new OpError('setThreads', `n must be an integer in 1..256, got ${n}`);
  const a = loadAddon();
  if (!a) throw new OpError('setThreads', loadError ?? 'native addon unavailable');
  a.setThreads(n);
}

/** The kernel thread count (1 when the addon is unavailable). */
export function getThreads(): number {
  return loadAddon()?.getThreads() ?? 1;
}

registerNativeLoader(loadNativeBackend);

const f32 = (b: Buf): F32 => (b as CpuBuf).data as F32;
const i32 = (b: Buf): I32 => (b as CpuBuf).data as I32;
const isF32 = (b: Buf | null | undefined): boolean => !b || b.dtype === 'float32';

/** Rethrows an addon argument error as an OpError naming the kernel. */
function rethrow(op: string, e: unknown): never {
  if (e instanceof Error && e.message.startsWith('native ')) {
    throw new OpError(op, e.message.slice(e.message.indexOf(':') + 2));
  }
  throw e;
}

/** The Backend implementation over the addon. */
export class NativeBackend implements Backend {
  readonly name = 'native';
  private readonly ref = referenceBackend();

  /** Storage of collected buffers, reused by alloc (see BufferPool); LUMEN_POOL_MB sizes it, 0 turns it off. */
  readonly pool = poolFromEnv();

  constructor(readonly addon: NativeAddon) {}

  describe(): string {
    const i = this.addon.info();
    return `native (${i.isa}, gemm ${i.gemm}, ${i.threads} thread${i.threads === 1 ? '' : 's'})`;
  }

  // ---------------------------------------------------------------- memory
  alloc(dtype: DType, length: number): Buf { return this.pool.alloc(dtype, length); }
  empty(dtype: DType, length: number): Buf { return this.pool.alloc(dtype, length, false); }
  beginStep(): boolean {
    if (this.pool.inStep) return false;
    this.pool.beginStep();
    return true;
  }
  endStep(keep?: Iterable<Buf>): void { this.pool.endStep(keep); }
  abortStep(): void { this.pool.abortStep(); }
  reservePool(bytes: number): void { this.pool.reserve(bytes); }
  fromHost(data: HostArray): Buf { return new CpuBuf(data); }
  toHost(buf: Buf): HostArray { return host(buf); }
  fill(buf: Buf, value: number, offset = 0, length = buf.length - offset): void {
    host(buf).fill(value, offset, offset + length);
  }

  stridedCopy(src: Buf, srcOffset: number, srcStrides: readonly number[], dst: Buf, dstOffset: number,
              dstStrides: readonly number[], shape: readonly number[], accumulate: boolean): void {
    if (src.dtype !== dst.dtype || src.dtype === 'float64') {
      this.ref.stridedCopy(src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape, accumulate);
      return;
    }
    try {
      this.addon.stridedCopy(host(src) as F32, srcOffset, srcStrides, host(dst) as F32, dstOffset, dstStrides, shape, accumulate);
    } catch (e) { rethrow('stridedCopy', e); }
  }

  cast(src: Buf, dst: Buf, n: number): void {
    if (src.dtype === dst.dtype && n <= src.length && n <= dst.length) { host(dst).set(host(src).subarray(0, n)); return; }
    if (src.dtype === 'float64' || dst.dtype === 'float64' || src.dtype === dst.dtype) { this.ref.cast(src, dst, n); return; }
    try { this.addon.cast(host(src) as F32, host(dst) as F32, n); } catch (e) { rethrow('cast', e); }
  }

  // ---------------------------------------------------------------- elementwise
  unary(op: UnaryOp, x: Buf, out: Buf, n: number): void {
    if (!isF32(x) || !isF32(out)) { this.ref.unary(op, x, out, n); return; }
    try { this.addon.unary(UNARY[op], f32(x), f32(out), n); } catch (e) { rethrow(`unary ${op}`, e); }
  }
  unaryBackward(op: UnaryOp, x: Buf, y: Buf, dy: Buf, dx: Buf, n: number, accumulate: boolean): void {
    if (!isF32(x) || !isF32(y) || !isF32(dy) || !isF32(dx)) { this.ref.unaryBackward(op, x, y, dy, dx, n, accumulate); return; }
    try { this.addon.unaryBackward(UNARY[op], f32(x), f32(y), f32(dy), f32(dx), n, accumulate); } catch (e) { rethrow(`unaryBackward ${op}`, e); }
  }
  binary(op: BinaryOp, a: Buf, aStrides: readonly number[], b: Buf, bStrides: readonly number[], out: Buf, shape: readonly number[]): void {
    if (!isF32(a) || !isF32(b) || !isF32(out)) { this.ref.binary(op, a, aStrides, b, bStrides, out, shape); return; }
    try { this.addon.binary(BINARY[op], f32(a), aStrides, f32(b), bStrides, f32(out), shape); } catch (e) { rethrow(`binary ${op}`, e); }
  }
  scalar(op: BinaryOp, x: Buf, s: number, out: Buf, n: number, reverse: boolean): void {
    if (!isF32(x) || !isF32(out)) { this.ref.scalar(op, x, s, out, n, reverse); return; }
    try { this.addon.scalar(BINARY[op], f32(x), s, f32(out), n, reverse); } catch (e) { rethrow(`scalar ${op}`, e); }
  }
  axpy(alpha: number, x: Buf, y: Buf, n: number): void {
    if (!isF32(x) || !isF32(y)) { this.ref.axpy(alpha, x, y, n); return; }
    try { this.addon.axpy(alpha, f32(x), f32(y), n); } catch (e) { rethrow('axpy', e); }
  }

  // ---------------------------------------------------------------- reductions
  reduceSum(x: Buf, out: Buf, outer: number, mid: number, inner: number): void {
    if (!isF32(x) || !isF32(out)) { this.ref.reduceSum(x, out, outer, mid, inner); return; }
    try { this.addon.reduceSum(f32(x), f32(out), outer, mid, inner); } catch (e) { rethrow('reduceSum', e); }
  }
  reduceMax(x: Buf, out: Buf, argmax: Buf, outer: number, mid: number, inner: number): void {
    if (!isF32(x) || !isF32(out)) { this.ref.reduceMax(x, out, argmax, outer, mid, inner); return; }
    try { this.addon.reduceMax(f32(x), f32(out), i32(argmax), outer, mid, inner); } catch (e) { rethrow('reduceMax', e); }
  }
  sumSquares(x: Buf, n: number): number {
    if (!isF32(x)) return this.ref.sumSquares(x, n);
    try { return this.addon.sumSquares(f32(x), n); } catch (e) { rethrow('sumSquares', e); }
  }

  // ---------------------------------------------------------------- matrix products
  matmul(p: MatmulArgs): void {
    if (!isF32(p.a) || !isF32(p.b) || !isF32(p.out)) { this.ref.matmul(p); return; }
    try {
      this.addon.matmul(f32(p.a), p.aOffset ?? 0, p.strideA, f32(p.b), p.bOffset ?? 0, p.strideB, f32(p.out), p.outOffset ?? 0,
        p.strideOut, p.batch, p.m, p.n, p.k, p.transA, p.transB, p.alpha ?? 1, p.accumulate ?? false);
    } catch (e) { rethrow('matmul', e); }
  }

  // ---------------------------------------------------------------- rows
  softmax(x: Buf, out: Buf, rows: number, cols: number): void {
    if (!isF32(x) || !isF32(out)) { this.ref.softmax(x, out, rows, cols); return; }
    try { this.addon.softmax(f32(x), f32(out), rows, cols, false); } catch (e) { rethrow('softmax', e); }
  }
  softmaxBackward(y: Buf, dy: Buf, dx: Buf, rows: number, cols: number): void {
    if (!isF32(y) || !isF32(dy) || !isF32(dx)) { this.ref.softmaxBackward(y, dy, dx, rows, cols); return; }
    try { this.addon.softmaxBackward(f32(y), f32(dy), f32(dx), rows, cols, false); } catch (e) { rethrow('softmaxBackward', e); }
  }
  logSoftmax(x: Buf, out: Buf, rows: number, cols: number): void {
    if (!isF32(x) || !isF32(out)) { this.ref.logSoftmax(x, out, rows, cols); return; }
    try { this.addon.softmax(f32(x), f32(out), rows, cols, true); } catch (e) { rethrow('logSoftmax', e); }
  }
  logSoftmaxBackward(y: Buf, dy: Buf, dx: Buf, rows: number, cols: number): void {
    if (!isF32(y) || !isF32(dy) || !isF32(dx)) { this.ref.logSoftmaxBackward(y, dy, dx, rows, cols); return; }
    try { this.addon.softmaxBackward(f32(y), f32(dy), f32(dx), rows, cols, true); } catch (e) { rethrow('logSoftmaxBackward', e); }
  }

  layerNorm(x: Buf, weight: Buf | null, bias: Buf | null, out: Buf, mean: Buf, rstd: Buf, rows: number, cols: number, eps: number): void {
    if (![x, weight, bias, out, mean, rstd].every(isF32)) { this.ref.layerNorm(x, weight, bias, out, mean, rstd, rows, cols, eps); return; }
    try {
      this.addon.layerNorm(f32(x), weight && f32(weight), bias && f32(bias), f32(out), f32(mean), f32(rstd), rows, cols, eps);
    } catch (e) { rethrow('layerNorm', e); }
  }
  layerNormBackward(x: Buf, weight: Buf | null, mean: Buf, rstd: Buf, dy: Buf, dx: Buf, dweight: Buf | null, dbias: Buf | null,
                    rows: number, cols: number): void {
    if (![x, weight, mean, rstd, dy, dx, dweight, dbias].every(isF32)) {
      this.ref.layerNormBackward(x, weight, mean, rstd, dy, dx, dweight, dbias, rows, cols); return;
    }
    try {
      this.addon.layerNormBackward(f32(x), weight && f32(weight), f32(mean), f32(rstd), f32(dy), f32(dx),
        dweight && f32(dweight), dbias && f32(dbias), rows, cols);
    } catch (e) { rethrow('layerNormBackward', e); }
  }
  rmsNorm(x: Buf, weight: Buf | null, out: Buf, rstd: Buf, rows: number, cols: number, eps: number): void {
    if (![x, weight, out, rstd].every(isF32)) { this.ref.rmsNorm(x, weight, out, rstd, rows, cols, eps); return; }
    try { this.addon.rmsNorm(f32(x), weight && f32(weight), f32(out), f32(rstd), rows, cols, eps); } catch (e) { rethrow('rmsNorm', e); }
  }
  rmsNormBackward(x: Buf, weight: Buf | null, rstd: Buf, dy: Buf, dx: Buf, dweight: Buf | null, rows: number, cols: number): void {
    if (![x, weight, rstd, dy, dx, dweight].every(isF32)) { this.ref.rmsNormBackward(x, weight, rstd, dy, dx, dweight, rows, cols); return; }
    try {
      this.addon.rmsNormBackward(f32(x), weight && f32(weight), f32(rstd), f32(dy), f32(dx), dweight && f32(dweight), rows, cols);
    } catch (e) { rethrow('rmsNormBackward', e); }
  }

  crossEntropy(logits: Buf, targets: Buf, losses: Buf, lse: Buf, rows: number, V: number, ignoreIndex: number, smoothing: number): void {
    if (![logits, losses, lse].every(isF32)) { this.ref.crossEntropy(logits, targets, losses, lse, rows, V, ignoreIndex, smoothing); return; }
    try {
      this.addon.crossEntropy(f32(logits), i32(targets), f32(losses), f32(lse), rows, V, ignoreIndex, smoothing);
    } catch (e) { rethrow('crossEntropy', e); }
  }
  crossEntropyBackward(logits: Buf, targets: Buf, lse: Buf, dloss: Buf, dlogits: Buf, rows: number, V: number,
                       ignoreIndex: number, smoothing: number): void {
    if (![logits, lse, dloss, dlogits].every(isF32)) {
      this.ref.crossEntropyBackward(logits, targets, lse, dloss, dlogits, rows, V, ignoreIndex, smoothing); return;
    }
    try {
      this.addon.crossEntropyBackward(f32(logits), i32(targets), f32(lse), f32(dloss), f32(dlogits), rows, V, ignoreIndex, smoothing);
    } catch (e) { rethrow('crossEntropyBackward', e); }
  }

  // ---------------------------------------------------------------- lookup
  embedding(table: Buf, ids: Buf, out: Buf, n: number, dim: number): void {
    if (!isF32(table) || !isF32(out)) { this.ref.embedding(table, ids, out, n, dim); return; }
    try { this.addon.embedding(f32(table), i32(ids), f32(out), n, dim); } catch (e) { rethrow('embedding', e); }
  }
  embeddingBackward(dout: Buf, ids: Buf, dtable: Buf, n: number, dim: number): void {
    if (!isF32(dout) || !isF32(dtable)) { this.ref.embeddingBackward(dout, ids, dtable, n, dim); return; }
    try { this.addon.embeddingBackward(f32(dout), i32(ids), f32(dtable), n, dim); } catch (e) { rethrow('embeddingBackward', e); }
  }

  // ---------------------------------------------------------------- attention & positions
  attention(p: AttentionArgs): void {
    if (![p.q, p.k, p.v, p.out, p.lse, p.mask].every(isF32)) { this.ref.attention(p); return; }
    try {
      this.addon.attention(f32(p.q), f32(p.k), f32(p.v), f32(p.out), f32(p.lse), p.B, p.Tq, p.Tk, p.Hq, p.Hkv, p.D,
        p.kvBatchStride, p.scale, p.causal, p.mask ? f32(p.mask) : null, p.maskBatchStride ?? 0, p.maskHeadStride ?? 0);
    } catch (e) { rethrow('attention', e); }
  }
  attentionDecode(p: DecodeAttentionArgs): void {
    if (![p.q, p.k, p.v, p.out, p.lse].every(isF32) || !p.items.every((it) => isF32(it.kCache) && isF32(it.vCache))) {
      attentionDecodeByItem(this, p);
      return;
    }
    const meta = new Int32Array(3 * p.items.length);
    p.items.forEach((it, i) => { meta[3 * i] = it.row; meta[3 * i + 1] = it.n; meta[3 * i + 2] = it.start; });
    try {
      this.addon.attentionDecode(f32(p.q), f32(p.k), f32(p.v), f32(p.out), f32(p.lse), p.items.map((it) => f32(it.kCache)),
        p.items.map((it) => f32(it.vCache)), meta, p.Hq, p.Hkv, p.D, p.scale);
    } catch (e) { rethrow('attentionDecode', e); }
  }
  attentionBackward(p: AttentionBackwardArgs): void {
    if (![p.q, p.k, p.v, p.out, p.lse, p.mask, p.dout, p.dq, p.dk, p.dv].every(isF32)) { this.ref.attentionBackward(p); return; }
    try {
      this.addon.attentionBackward(f32(p.q), f32(p.k), f32(p.v), f32(p.out), f32(p.lse), p.B, p.Tq, p.Tk, p.Hq, p.Hkv, p.D,
        p.kvBatchStride, p.scale, p.causal, p.mask ? f32(p.mask) : null, p.maskBatchStride ?? 0, p.maskHeadStride ?? 0,
        f32(p.dout), f32(p.dq), f32(p.dk), f32(p.dv));
    } catch (e) { rethrow('attentionBackward', e); }
  }
  rope(x: Buf, out: Buf, positions: Buf, N: number, T: number, H: number, D: number, base: number, inverse: boolean): void {
    if (!isF32(x) || !isF32(out)) { this.ref.rope(x, out, positions, N, T, H, D, base, inverse); return; }
    try { this.addon.rope(f32(x), f32(out), i32(positions), N, T, H, D, base, inverse); } catch (e) { rethrow('rope', e); }
  }

  // ---------------------------------------------------------------- randomness, optimizer
  dropout(x: Buf, out: Buf, mask: Buf, n: number, p: number, seed: number, offset: number): void {
    if (![x, out, mask].every(isF32)) { this.ref.dropout(x, out, mask, n, p, seed, offset); return; }
    try { this.addon.dropout(f32(x), f32(out), f32(mask), n, p, seed, offset); } catch (e) { rethrow('dropout', e); }
  }
  adamw(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, b1: number, b2: number, eps: number,
        wd: number, bc1: number, bc2: number, gradScale: number): void {
    if (![p, g, m, v].every(isF32)) { this.ref.adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2, gradScale); return; }
    try { this.addon.adamw(f32(p), f32(g), f32(m), f32(v), n, lr, b1, b2, eps, wd, bc1, bc2, gradScale); } catch (e) { rethrow('adamw', e); }
  }
}

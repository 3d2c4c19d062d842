/**
 * The reference backend: plain, readable TypeScript. It is the ground truth every other backend
 * is tested against, and the documentation of what each kernel computes. It favours clarity
 * over speed: straightforward loops, no blocking, one thread. It works for float32 and float64
 * (gradient checks run in float64 here).
 */
import { attentionDecodeByItem, type AttentionArgs, type AttentionBackwardArgs, type Backend, type BinaryOp, type Buf, type DecodeAttentionArgs, type DType, type MatmulArgs, type UnaryOp } from '../backend.ts';
import { uniformAt } from '../rng.ts';
import { CpuBuf, allocHost, host, type HostArray } from './cpu-buf.ts';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** erf to ~1e-14: Taylor series near 0, continued fraction for erfc in the tails. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x, sum = x;
    const x2 = x * x;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 6) return Math.sign(x);
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated bottom-up.
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + (k / 2) / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op) {
    case 'neg': return (x) => -x;
    case 'exp': return Math.exp;
    case 'log': return Math.log;
    case 'sqrt': return Math.sqrt;
    case 'tanh': return Math.tanh;
    case 'gelu': return (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case 'gelu_erf': return (x) => 0.5 * x * (1 + erf(x * INV_SQRT_2));
    case 'silu': return (x) => x / (1 + Math.exp(-x));
    case 'relu': return (x) => (x > 0 ? x : 0);
    case 'sigmoid': return (x) => 1 / (1 + Math.exp(-x));
    case 'abs': return Math.abs;
    default: return op satisfies never;
  }
}

/** Derivative f'(x), given x and y = f(x). */
function unaryGrad(op: UnaryOp): (x: number, y: number) => number {
  switch (op) {
    case 'neg': return () => -1;
    case 'exp': return (_x, y) => y;
    case 'log': return (x) => 1 / x;
    case 'sqrt': return (_x, y) => 0.5 / y;
    case 'tanh': return (_x, y) => 1 - y * y;
    case 'gelu': return (x) => {
      const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    };
    case 'gelu_erf': return (x) => 0.5 * (1 + erf(x * INV_SQRT_2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    case 'silu': return (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 + x * (1 - s)); };
    case 'relu': return (x) => (x > 0 ? 1 : 0);
    case 'sigmoid': return (_x, y) => y * (1 - y);
    case 'abs': return (x) => Math.sign(x);
    default: return op satisfies never;
  }
}

function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add': return (a, b) => a + b;
    case 'sub': return (a, b) => a - b;
    case 'mul': return (a, b) => a * b;
    case 'div': return (a, b) => a / b;
    case 'pow': return Math.pow;
    case 'max': return Math.max;
    case 'min': return Math.min;
    default: return op satisfies never;
  }
}

/** Calls fn(flatIndex, offsetA, offsetB) for every index of `shape`, walking strides like an odometer. */
function forEachIndex(shape: readonly number[], sa: readonly number[], sb: readonly number[],
                      fn: (i: number, oa: number, ob: number) => void): void {
  const nd = shape.length;
  const n = shape.reduce((p, d) => p * d, 1);
  const idx = new Array<number>(nd).fill(0);
  let oa = 0, ob = 0;
  for (let i = 0; i < n; i++) {
    fn(i, oa, ob);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++; oa += sa[d]!; ob += sb[d]!;
      if (idx[d]! < shape[d]!) break;
      oa -= sa[d]! * shape[d]!; ob -= sb[d]! * shape[d]!; idx[d] = 0;
    }
  }
}

export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  describe(): string { return 'reference (TypeScript, 1 thread)'; }

  alloc(dtype: DType, length: number): Buf { return new CpuBuf(allocHost(dtype, length)); }
  empty(dtype: DType, length: number): Buf { return this.alloc(dtype, length); }
  fromHost(data: HostArray): Buf { return new CpuBuf(data); }
  toHost(buf: Buf): HostArray { return host(buf); }
  fill(buf: Buf, value: number, offset = 0, length = buf.length - offset): void {
    host(buf).fill(value, offset, offset + length);
  }
  stridedCopy(src: Buf, srcOffset: number, srcStrides: readonly number[], dst: Buf, dstOffset: number,
              dstStrides: readonly number[], shape: readonly number[], accumulate: boolean): void {
    const s = host(src), d = host(dst);
    forEachIndex(shape, srcStrides, dstStrides, (_i, os, od) => {
      d[dstOffset + od] = accumulate ? d[dstOffset + od]! + s[srcOffset + os]! : s[srcOffset + os]!;
    });
  }
  cast(src: Buf, dst: Buf, n: number): void {
    const s = host(src), d = host(dst);
    for (let i = 0; i < n; i++) d[i] = s[i]!;
  }

  unary(op: UnaryOp, x: Buf, out: Buf, n: number): void {
    const f = unaryFn(op), a = host(x), o = host(out);
    for (let i = 0; i < n; i++) o[i] = f(a[i]!);
  }
  unaryBackward(op: UnaryOp, x: Buf, y: Buf, dy: Buf, dx: Buf, n: number, accumulate: boolean): void {
    const g = unaryGrad(op), xs = host(x), ys = host(y), dys = host(dy), dxs = host(dx);
    for (let i = 0; i < n; i++) {
      const v = dys[i]! * g(xs[i]!, ys[i]!);
      dxs[i] = accumulate ? dxs[i]! + v : v;
    }
  }
  binary(op: BinaryOp, a: Buf, aStrides: readonly number[], b: Buf, bStrides: readonly number[],
         out: Buf, shape: readonly number[]): void {
    const f = binaryFn(op), as = host(a), bs = host(b), o = host(out);
    forEachIndex(shape, aStrides, bStrides, (i, oa, ob) => { o[i] = f(as[oa]!, bs[ob]!); });
  }
  scalar(op: BinaryOp, x: Buf, s: number, out: Buf, n: number, reverse: boolean): void {
    const f = binaryFn(op), xs = host(x), o = host(out);
    for (let i = 0; i < n; i++) o[i] = reverse ? f(s, xs[i]!) : f(xs[i]!, s);
  }
  axpy(alpha: number, x: Buf, y: Buf, n: number): void {
    const xs = host(x), ys = host(y);
    for (let i = 0; i < n; i++) ys[i] = ys[i]! + alpha * xs[i]!;
  }

  reduceSum(x: Buf, out: Buf, outer: number, mid: number, inner: number): void {
    const xs = host(x), o = host(out);
    for (let a = 0; a < outer; a++) {
      for (let c = 0; c < inner; c++) {
        let s = 0;
        for (let b = 0; b < mid; b++) s += xs[(a * mid + b) * inner + c]!;
        o[a * inner + c] = s;
      }
    }
  }
  reduceMax(x: Buf, out: Buf, argmax: Buf, outer: number, mid: number, inner: number): void {
    const xs = host(x), o = host(out), am = host(argmax);
    for (let a = 0; a < outer; a++) {
      for (let c = 0; c < inner; c++) {
        let best = -Infinity, bi = 0;
        for (let b = 0; b < mid; b++) {
          const v = xs[(a * mid + b) * inner + c]!;
          if (v > best || (b === 0)) { best = v; bi = b; }
        }
        o[a * inner + c] = best; am[a * inner + c] = bi;
      }
    }
  }
  sumSquares(x: Buf, n: number): number {
    const xs = host(x);
    let s = 0;
    for (let i = 0; i < n; i++) s += xs[i]! * xs[i]!;
    return s;
  }

  matmul(p: MatmulArgs): void {
    const A = host(p.a), B = host(p.b), C = host(p.out);
    const { m, n, k, transA, transB } = p;
    const alpha = p.alpha ?? 1;
    for (let t = 0; t < p.batch; t++) {
      const a0 = (p.aOffset ?? 0) + t * p.strideA, b0 = (p.bOffset ?? 0) + t * p.strideB, c0 = (p.outOffset ?? 0) + t * p.strideOut;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let l = 0; l < k; l++) {
            const av = transA ? A[a0 + l * m + i]! : A[a0 + i * k + l]!;
            const bv = transB ? B[b0 + j * k + l]! : B[b0 + l * n + j]!;
            s += av * bv;
          }
          C[c0 + i * n + j] = alpha * s + (p.accumulate ? C[c0 + i * n + j]! : 0);
        }
      }
    }
  }

  softmax(x: Buf, out: Buf, rows: number, cols: number): void {
    const xs = host(x), o = host(out);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let max = -Infinity;
      for (let c = 0; c < cols; c++) max = Math.max(max, xs[base + c]!);
      let sum = 0;
      for (let c = 0; c < cols; c++) { const e = Math.exp(xs[base + c]! - max); o[base + c] = e; sum += e; }
      for (let c = 0; c < cols; c++) o[base + c] = o[base + c]! / sum;
    }
  }
  softmaxBackward(y: Buf, dy: Buf, dx: Buf, rows: number, cols: number): void {
    const ys = host(y), dys = host(dy), dxs = host(dx);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += dys[base + c]! * ys[base + c]!;
      for (let c = 0; c < cols; c++) dxs[base + c] = ys[base + c]! * (dys[base + c]! - dot);
    }
  }
  logSoftmax(x: Buf, out: Buf, rows: number, cols: number): void {
    const xs = host(x), o = host(out);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      const lse = logSumExp(xs, base, cols);
      for (let c = 0; c < cols; c++) o[base + c] = xs[base + c]! - lse;
    }
  }
  logSoftmaxBackward(y: Buf, dy: Buf, dx: Buf, rows: number, cols: number): void {
    const ys = host(y), dys = host(dy), dxs = host(dx);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += dys[base + c]!;
      for (let c = 0; c < cols; c++) dxs[base + c] = dys[base + c]! - Math.exp(ys[base + c]!) * sum;
    }
  }

  layerNorm(x: Buf, weight: Buf | null, bias: Buf | null, out: Buf, mean: Buf, rstd: Buf,
            rows: number, cols: number, eps: number): void {
    const xs = host(x), o = host(out), ms = host(mean), rs = host(rstd);
    const w = weight ? host(weight) : null, b = bias ? host(bias) : null;
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let mu = 0;
      for (let c = 0; c < cols; c++) mu += xs[base + c]!;
      mu /= cols;
      let v = 0;
      for (let c = 0; c < cols; c++) { const d = xs[base + c]! - mu; v += d * d; }
      const rsd = 1 / Math.sqrt(v / cols + eps);
      ms[r] = mu; rs[r] = rsd;
      for (let c = 0; c < cols; c++) {
        const nx = (xs[base + c]! - mu) * rsd;
        o[base + c] = nx * (w ? w[c]! : 1) + (b ? b[c]! : 0);
      }
    }
  }
  layerNormBackward(x: Buf, weight: Buf | null, mean: Buf, rstd: Buf, dy: Buf,
                    dx: Buf, dweight: Buf | null, dbias: Buf | null, rows: number, cols: number): void {
    const xs = host(x), ms = host(mean), rs = host(rstd), dys = host(dy), dxs = host(dx);
    const w = weight ? host(weight) : null, dw = dweight ? host(dweight) : null, db = dbias ? host(dbias) : null;
    for (let r = 0; r < rows; r++) {
      const base = r * cols, mu = ms[r]!, rsd = rs[r]!;
      // dxhat = dy * w; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
      let sumD = 0, sumDX = 0;
      for (let c = 0; c < cols; c++) {
        const xhat = (xs[base + c]! - mu) * rsd;
        const d = dys[base + c]! * (w ? w[c]! : 1);
        sumD += d; sumDX += d * xhat;
        if (dw) dw[c] = dw[c]! + dys[base + c]! * xhat;
        if (db) db[c] = db[c]! + dys[base + c]!;
      }
      for (let c = 0; c < cols; c++) {
        const xhat = (xs[base + c]! - mu) * rsd;
        const d = dys[base + c]! * (w ? w[c]! : 1);
        dxs[base + c] = rsd * (d - sumD / cols - xhat * sumDX / cols);
      }
    }
  }
  rmsNorm(x: Buf, weight: Buf | null, out: Buf, rstd: Buf, rows: number, cols: number, eps: number): void {
    const xs = host(x), o = host(out), rs = host(rstd), w = weight ? host(weight) : null;
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let ss = 0;
      for (let c = 0; c < cols; c++) ss += xs[base + c]! * xs[base + c]!;
      const rsd = 1 / Math.sqrt(ss / cols + eps);
      rs[r] = rsd;
      for (let c = 0; c < cols; c++) o[base + c] = xs[base + c]! * rsd * (w ? w[c]! : 1);
    }
  }
  rmsNormBackward(x: Buf, weight: Buf | null, rstd: Buf, dy: Buf, dx: Buf, dweight: Buf | null,
                  rows: number, cols: number): void {
    const xs = host(x), rs = host(rstd), dys = host(dy), dxs = host(dx);
    const w = weight ? host(weight) : null, dw = dweight ? host(dweight) : null;
    for (let r = 0; r < rows; r++) {
      const base = r * cols, rsd = rs[r]!;
      // y = x * rstd * w; dx = rstd * (d - xhat * mean(d * xhat)), d = dy * w, xhat = x * rstd
      let sumDX = 0;
      for (let c = 0; c < cols; c++) {
        const xhat = xs[base + c]! * rsd;
        const d = dys[base + c]! * (w ? w[c]! : 1);
        sumDX += d * xhat;
        if (dw) dw[c] = dw[c]! + dys[base + c]! * xhat;
      }
      for (let c = 0; c < cols; c++) {
        const xhat = xs[base + c]! * rsd;
        const d = dys[base + c]! * (w ? w[c]! : 1);
        dxs[base + c] = rsd * (d - xhat * sumDX / cols);
      }
    }
  }

  crossEntropy(logits: Buf, targets: Buf, losses: Buf, lse: Buf, rows: number, V: number,
               ignoreIndex: number, smoothing: number): void {
    const L = host(logits), T = host(targets), out = host(losses), ls = host(lse);
    for (let r = 0; r < rows; r++) {
      const base = r * V, t = T[r]!;
      const z = logSumExp(L, base, V);
      ls[r] = z;
      if (t === ignoreIndex) { out[r] = 0; continue; }
      let meanLogp = 0;
      if (smoothing > 0) {
        for (let c = 0; c < V; c++) meanLogp += L[base + c]! - z;
        meanLogp /= V;
      }
      out[r] = -((1 - smoothing) * (L[base + t]! - z) + smoothing * meanLogp);
    }
  }
  crossEntropyBackward(logits: Buf, targets: Buf, lse: Buf, dloss: Buf, dlogits: Buf, rows: number, V: number,
                       ignoreIndex: number, smoothing: number): void {
    const L = host(logits), T = host(targets), ls = host(lse), dl = host(dloss), D = host(dlogits);
    for (let r = 0; r < rows; r++) {
      const base = r * V, t = T[r]!;
      if (t === ignoreIndex) { D.fill(0, base, base + V); continue; }
      const g = dl[r]!, z = ls[r]!;
      for (let c = 0; c < V; c++) {
        const target = (c === t ? 1 - smoothing : 0) + smoothing / V;
        D[base + c] = g * (Math.exp(L[base + c]! - z) - target);
      }
    }
  }

  embedding(table: Buf, ids: Buf, out: Buf, n: number, dim: number): void {
    const W = host(table), I = host(ids), o = host(out);
    for (let i = 0; i < n; i++) o.set(W.subarray(I[i]! * dim, I[i]! * dim + dim), i * dim);
  }
  embeddingBackward(dout: Buf, ids: Buf, dtable: Buf, n: number, dim: number): void {
    const d = host(dout), I = host(ids), dW = host(dtable);
    for (let i = 0; i < n; i++) {
      const row = I[i]! * dim;
      for (let c = 0; c < dim; c++) dW[row + c] = dW[row + c]! + d[i * dim + c]!;
    }
  }

  attentionDecode(p: DecodeAttentionArgs): void { attentionDecodeByItem(this, p); }
  attention(p: AttentionArgs): void {
    const Q = host(p.q), K = host(p.k), Vv = host(p.v), O = host(p.out), LSE = host(p.lse);
    const M = p.mask ? host(p.mask) : null;
    const { B, Tq, Tk, Hq, Hkv, D } = p;
    const scores = new Float64Array(Tk);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hq; h++) {
        const hk = Math.floor(h / (Hq / Hkv));
        for (let i = 0; i < Tq; i++) {
          const qOff = ((b * Tq + i) * Hq + h) * D;
          let max = -Infinity;
          for (let j = 0; j < Tk; j++) {
            scores[j] = attnScore(p, Q, K, M, b, h, hk, i, j, qOff);
            max = Math.max(max, scores[j]!);
          }
          let sum = 0;
          for (let j = 0; j < Tk; j++) { scores[j] = max === -Infinity ? 0 : Math.exp(scores[j]! - max); sum += scores[j]!; }
          LSE[(b * Hq + h) * Tq + i] = max + Math.log(sum);
          const oOff = qOff;
          for (let d = 0; d < D; d++) {
            let acc = 0;
            for (let j = 0; j < Tk; j++) acc += scores[j]! * Vv[b * p.kvBatchStride + (j * Hkv + hk) * D + d]!;
            O[oOff + d] = sum > 0 ? acc / sum : 0;
          }
        }
      }
    }
  }
  attentionBackward(p: AttentionBackwardArgs): void {
    const Q = host(p.q), K = host(p.k), Vv = host(p.v), O = host(p.out), LSE = host(p.lse), dO = host(p.dout);
    const dQ = host(p.dq), dK = host(p.dk), dV = host(p.dv);
    const M = p.mask ? host(p.mask) : null;
    const { B, Tq, Tk, Hq, Hkv, D } = p;
    dQ.fill(0); dK.fill(0); dV.fill(0);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hq; h++) {
        const hk = Math.floor(h / (Hq / Hkv));
        for (let i = 0; i < Tq; i++) {
          const qOff = ((b * Tq + i) * Hq + h) * D;
          const lse = LSE[(b * Hq + h) * Tq + i]!;
          // delta = sum_d dO * O  (= sum_j P_ij dP_ij)
          let delta = 0;
          for (let d = 0; d < D; d++) delta += dO[qOff + d]! * O[qOff + d]!;
          for (let j = 0; j < Tk; j++) {
            const s = attnScore(p, Q, K, M, b, h, hk, i, j, qOff);
            if (s === -Infinity) continue;
            const pij = Math.exp(s - lse);
            const kOff = b * p.kvBatchStride + (j * Hkv + hk) * D;
            const dkOff = ((b * Tk + j) * Hkv + hk) * D;
            let dp = 0;
            for (let d = 0; d < D; d++) {
              dp += dO[qOff + d]! * Vv[kOff + d]!;
              dV[dkOff + d] = dV[dkOff + d]! + pij * dO[qOff + d]!;
            }
            const ds = pij * (dp - delta) * p.scale;
            for (let d = 0; d < D; d++) {
              dQ[qOff + d] = dQ[qOff + d]! + ds * K[kOff + d]!;
              dK[dkOff + d] = dK[dkOff + d]! + ds * Q[qOff + d]!;
            }
          }
        }
      }
    }
  }

  rope(x: Buf, out: Buf, positions: Buf, N: number, T: number, H: number, D: number, base: number, inverse: boolean): void {
    const X = host(x), O = host(out), P = host(positions);
    const half = D / 2;
    for (let n = 0; n < N; n++) {
      for (let t = 0; t < T; t++) {
        const pos = P[n * T + t]!;
        for (let h = 0; h < H; h++) {
          const off = ((n * T + t) * H + h) * D;
          for (let d = 0; d < half; d++) {
            const angle = pos * Math.pow(base, (-2 * d) / D);
            const c = Math.cos(angle), s = inverse ? -Math.sin(angle) : Math.sin(angle);
            const a = X[off + d]!, b = X[off + d + half]!;
            O[off + d] = a * c - b * s;
            O[off + d + half] = b * c + a * s;
          }
        }
      }
    }
  }

  dropout(x: Buf, out: Buf, mask: Buf, n: number, p: number, seed: number, offset: number): void {
    const X = host(x), O = host(out), Mk = host(mask);
    const scale = 1 / (1 - p);
    for (let i = 0; i < n; i++) {
      const keep = uniformAt(seed, offset + i) >= p ? scale : 0;
      Mk[i] = keep; O[i] = X[i]! * keep;
    }
  }

  adamw(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, b1: number, b2: number, eps: number,
        wd: number, bc1: number, bc2: number, gradScale: number): void {
    const P = host(p), G = host(g), Mm = host(m), Vv = host(v);
    for (let i = 0; i < n; i++) {
      const gi = G[i]! * gradScale;
      Mm[i] = b1 * Mm[i]! + (1 - b1) * gi;
      Vv[i] = b2 * Vv[i]! + (1 - b2) * gi * gi;
      const mhat = Mm[i]! / bc1, vhat = Vv[i]! / bc2;
      P[i] = P[i]! - lr * (mhat / (Math.sqrt(vhat) + eps) + wd * P[i]!);
    }
  }
}

function logSumExp(a: HostArray, base: number, n: number): number {
  let max = -Infinity;
  for (let c = 0; c < n; c++) max = Math.max(max, a[base + c]!);
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let c = 0; c < n; c++) sum += Math.exp(a[base + c]! - max);
  return max + Math.log(sum);
}

/** Scaled, masked score q_i · k_j for one (b, h); -Infinity where blocked. */
function attnScore(p: AttentionArgs, Q: HostArray, K: HostArray, M: HostArray | null,
                   b: number, h: number, hk: number, i: number, j: number, qOff: number): number {
  if (p.causal && j > p.Tk - p.Tq + i) return -Infinity;
  const kOff = b * p.kvBatchStride + (j * p.Hkv + hk) * p.D;
  let s = 0;
  for (let d = 0; d < p.D; d++) s += Q[qOff + d]! * K[kOff + d]!;
  s *= p.scale;
  if (M) s += M[b * (p.maskBatchStride ?? 0) + h * (p.maskHeadStride ?? 0) + i * p.Tk + j]!;
  return s;
}

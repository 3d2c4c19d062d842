/**
 * The op registry: every differentiable op, defined once — shape rule, forward, backward —
 * side by side. `OP_KINDS` is the exhaustive list; `OPS satisfies Record<OpKind, …>` makes
 * the type checker reject a kind without a definition.
 *
 * Each op: validates its inputs (OpError naming the op and the shapes), allocates its output
 * on the inputs' backend, calls kernels, and records a backward closure when a gradient is
 * needed. Backward closures call kernels directly (no graph of their own).
 */
import type { Backend, Buf, UnaryOp } from './backend.ts';
import { Tensor, numel, record } from './tensor.ts';
import { OpError } from '../util/errors.ts';

export const OP_KINDS = [
  'matmul', 'binary', 'scalar', 'unary', 'sum', 'max', 'softmax', 'logSoftmax', 'layerNorm', 'rmsNorm',
  'embedding', 'crossEntropy', 'attention', 'dropout', 'rope', 'reshape', 'permute', 'slice', 'concat',
] as const;
export type OpKind = (typeof OP_KINDS)[number];

// ---------------------------------------------------------------------------------------------
// helpers

const shp = (s: readonly number[]) => `[${s.join(', ')}]`;

function sameBackend(op: string, ...ts: Tensor[]): Backend {
  const b = ts[0]!.backend;
  for (const t of ts) if (t.backend !== b) throw new OpError(op, `inputs live on different backends (${b.name}, ${t.backend.name})`);
  return b;
}

function requireFloat(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype === 'int32') throw new OpError(op, `expected a float tensor, got int32 of shape ${shp(t.shape)}`);
  }
  const d = ts[0]!.dtype;
  for (const t of ts) if (t.dtype !== d) throw new OpError(op, `mixed dtypes ${d} and ${t.dtype}`);
}

function out(like: Tensor, shape: readonly number[]): Tensor {
  return Tensor.zeros(shape, like.dtype, like.backend);
}

/** Like `out`, but its contents are unspecified: only for outputs the next kernel writes in full. */
function outFull(like: Tensor, shape: readonly number[]): Tensor {
  return new Tensor(like.backend.empty(like.dtype, numel(shape)), shape, like.backend);
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

/** Broadcast shape of a and b (numpy rules), or an OpError. */
export function broadcastShape(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1, db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new OpError(op, `shapes ${shp(a)} and ${shp(b)} do not broadcast`);
    r.push(da === 1 ? db : da);
  }
  return r;
}

/** Strides that read `shape` as if broadcast to `target` (0 on broadcast dims). */
function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const s = stridesOf(shape);
  const off = target.length - shape.length;
  return target.map((d, i) => (i < off || shape[i - off] === 1 ? 0 : s[i - off]!));
}

/** Sums a gradient of shape `from` down to `to` (undoing broadcasting). */
function sumTo(g: Tensor, to: readonly number[]): Tensor {
  if (g.shape.length === to.length && g.shape.every((d, i) => d === to[i])) return g;
  const off = g.shape.length - to.length;
  let cur = g;
  // Reduce leading extra dims, then dims where `to` is 1.
  let shape = [...g.shape];
  for (let i = shape.length - 1; i >= 0; i--) {
    const target = i < off ? 0 : to[i - off]!;
    if (i < off || (target === 1 && shape[i] !== 1)) {
      const outer = numel(shape.slice(0, i)), mid = shape[i]!, inner = numel(shape.slice(i + 1));
      const next = new Tensor(g.backend.empty(g.dtype, outer * inner), [outer * inner], g.backend); // reduceSum writes it all
      g.backend.reduceSum(cur.buf, next.buf, outer, mid, inner);
      shape = [...shape.slice(0, i), ...(i < off ? [] : [1]), ...shape.slice(i + 1)];
      cur = new Tensor(next.buf, shape, g.backend);
    }
  }
  return new Tensor(cur.buf, to, g.backend);
}

function normAxis(op: string, axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim || !Number.isInteger(a)) throw new OpError(op, `axis ${axis} out of range for ${ndim} dims`);
  return a;
}

// ---------------------------------------------------------------------------------------------
// matmul

/**
 * a (..., m, k) @ b (..., k, n) → (..., m, n); transA / transB read a as (..., k, m), b as (..., n, k).
 * b may be 2-d (shared over a's batch dims: a Linear layer) or have the same batch dims as a.
 */
export function matmul(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Tensor {
  const op = 'matmul';
  const be = sameBackend(op, a, b);
  requireFloat(op, a, b);
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  if (a.ndim < 2 || b.ndim < 2) throw new OpError(op, `needs at least 2-d inputs, got ${shp(a.shape)} and ${shp(b.shape)}`);
  const m = transA ? a.shape[a.ndim - 1]! : a.shape[a.ndim - 2]!;
  const k = transA ? a.shape[a.ndim - 2]! : a.shape[a.ndim - 1]!;
  const kb = transB ? b.shape[b.ndim - 1]! : b.shape[b.ndim - 2]!;
  const n = transB ? b.shape[b.ndim - 2]! : b.shape[b.ndim - 1]!;
  if (k !== kb) throw new OpError(op, `inner dimensions differ: ${shp(a.shape)}${transA ? 'ᵀ' : ''} @ ${shp(b.shape)}${transB ? 'ᵀ' : ''} (${k} vs ${kb})`);
  const batchDims = a.shape.slice(0, -2);
  const shared = b.ndim === 2;
  if (!shared && (b.ndim !== a.ndim || b.shape.slice(0, -2).some((d, i) => d !== batchDims[i]))) {
    throw new OpError(op, `batch dims of ${shp(a.shape)} and ${shp(b.shape)} must match (or b must be 2-d)`);
  }
  const batch = numel(batchDims);
  const y = outFull(a, [...batchDims, m, n]);
  // With b shared and a not transposed, the batch folds into rows: one large GEMM.
  const fold = shared && !transA;
  if (fold) be.matmul({ a: a.buf, strideA: 0, b: b.buf, strideB: 0, out: y.buf, strideOut: 0, batch: 1, m: batch * m, n, k, transA, transB });
  else be.matmul({ a: a.buf, strideA: m * k, b: b.buf, strideB: shared ? 0 : k * n, out: y.buf, strideOut: m * n, batch, m, n, k, transA, transB });

  return record(y, op, [a, b], (g) => {
    let da: Tensor | null = null, db: Tensor | null = null;
    if (needs(a)) {
      da = outFull(a, a.shape);
      // dA = dC @ op(B)ᵀ  (or its transpose when transA)
      if (fold) be.matmul({ a: g.buf, strideA: 0, b: b.buf, strideB: 0, out: da.buf, strideOut: 0, batch: 1, m: batch * m, n: k, k: n, transA: false, transB: !transB });
      else if (!transA) be.matmul({ a: g.buf, strideA: m * n, b: b.buf, strideB: shared ? 0 : k * n, out: da.buf, strideOut: m * k, batch, m, n: k, k: n, transA: false, transB: !transB });
      else be.matmul({ a: b.buf, strideA: shared ? 0 : k * n, b: g.buf, strideB: m * n, out: da.buf, strideOut: m * k, batch, m: k, n: m, k: n, transA: transB, transB: true });
    }
    if (needs(b)) {
      db = fold || !shared ? outFull(b, b.shape) : out(b, b.shape);
      if (fold) {
        // dB = Aᵀ dC (k, n), or dCᵀ A (n, k) when transB; rows of all batches summed by the GEMM itself.
        if (!transB) be.matmul({ a: a.buf, strideA: 0, b: g.buf, strideB: 0, out: db.buf, strideOut: 0, batch: 1, m: k, n, k: batch * m, transA: true, transB: false });
        else be.matmul({ a: g.buf, strideA: 0, b: a.buf, strideB: 0, out: db.buf, strideOut: 0, batch: 1, m: n, n: k, k: batch * m, transA: true, transB: false });
      } else {
        const perBatch = shared ? outFull(b, [batch, ...b.shape]) : db;
        if (!transB) be.matmul({ a: a.buf, strideA: m * k, b: g.buf, strideB: m * n, out: perBatch.buf, strideOut: k * n, batch, m: k, n, k: m, transA: !transA, transB: false });
        else be.matmul({ a: g.buf, strideA: m * n, b: a.buf, strideB: m * k, out: perBatch.buf, strideOut: k * n, batch, m: n, n: k, k: m, transA: true, transB: transA });
        if (shared) be.reduceSum(perBatch.buf, db.buf, 1, batch, k * n);
      }
    }
    return [da, db];
  });
}

function needs(t: Tensor): boolean {
  return t.requiresGrad || t.node !== null;
}

// ---------------------------------------------------------------------------------------------
// elementwise

export type BinaryKind = 'add' | 'sub' | 'mul' | 'div' | 'pow';

/** Broadcasting a op b. */
export function binary(kind: BinaryKind, a: Tensor, b: Tensor): Tensor {
  const op = kind;
  const be = sameBackend(op, a, b);
  requireFloat(op, a, b);
  const shape = broadcastShape(op, a.shape, b.shape);
  const sa = broadcastStrides(a.shape, shape), sb = broadcastStrides(b.shape, shape);
  const y = outFull(a, shape);
  be.binary(kind, a.buf, sa, b.buf, sb, y.buf, shape);
  const full = stridesOf(shape);
  return record(y, op, [a, b], (g) => {
    const n = y.size;
    const tmp = () => outFull(y, shape);
    let ga: Tensor | null = null, gb: Tensor | null = null;
    switch (kind) {
      case 'add': ga = g; gb = g; break;
      case 'sub': {
        ga = g;
        if (needs(b)) { gb = tmp(); be.scalar('mul', g.buf, -1, gb.buf, n, false); }
        break;
      }
      case 'mul': {
        if (needs(a)) { ga = tmp(); be.binary('mul', g.buf, full, b.buf, sb, ga.buf, shape); }
        if (needs(b)) { gb = tmp(); be.binary('mul', g.buf, full, a.buf, sa, gb.buf, shape); }
        break;
      }
      case 'div': {
        if (needs(a)) { ga = tmp(); be.binary('div', g.buf, full, b.buf, sb, ga.buf, shape); }
        if (needs(b)) { // -g * y / b
          gb = tmp(); be.binary('mul', g.buf, full, y.buf, full, gb.buf, shape);
          be.binary('div', gb.buf, full, b.buf, sb, gb.buf, shape);
          be.scalar('mul', gb.buf, -1, gb.buf, n, false);
        }
        break;
      }
      case 'pow': {
        if (needs(a)) { // g * b * a^(b-1) = g * b * y / a
          ga = tmp(); be.binary('mul', g.buf, full, b.buf, sb, ga.buf, shape);
          be.binary('mul', ga.buf, full, y.buf, full, ga.buf, shape);
          be.binary('div', ga.buf, full, a.buf, sa, ga.buf, shape);
        }
        if (needs(b)) { // g * y * ln a
          gb = tmp(); const la = outFull(a, a.shape); be.unary('log', a.buf, la.buf, a.size);
          be.binary('mul', g.buf, full, y.buf, full, gb.buf, shape);
          be.binary('mul', gb.buf, full, la.buf, sa, gb.buf, shape);
        }
        break;
      }
      default: return kind satisfies never;
    }
    return [ga && sumTo(ga, a.shape), gb && sumTo(gb, b.shape)];
  });
}

export const add = (a: Tensor, b: Tensor) => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor) => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor) => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor) => binary('div', a, b);
export const pow = (a: Tensor, b: Tensor) => binary('pow', a, b);

/** x op s, or s op x when `reverse`. */
export function scalar(kind: BinaryKind, x: Tensor, s: number, reverse = false): Tensor {
  requireFloat(kind, x);
  const be = x.backend, n = x.size;
  const y = outFull(x, x.shape);
  be.scalar(kind, x.buf, s, y.buf, n, reverse);
  return record(y, `${kind}Scalar`, [x], (g) => {
    if (kind === 'add' || (kind === 'sub' && !reverse)) return [g];
    const gx = outFull(x, x.shape); // every case below writes all of it
    switch (kind) {
      case 'sub': be.scalar('mul', g.buf, -1, gx.buf, n, false); break;
      case 'mul': be.scalar('mul', g.buf, s, gx.buf, n, false); break;
      case 'div':
        if (!reverse) be.scalar('div', g.buf, s, gx.buf, n, false);
        else { // d(s/x) = -s/x^2 = -y/x
          be.binary('mul', g.buf, [1], y.buf, [1], gx.buf, [n]);
          be.binary('div', gx.buf, [1], x.buf, [1], gx.buf, [n]);
          be.scalar('mul', gx.buf, -1, gx.buf, n, false);
        }
        break;
      case 'pow':
        if (!reverse) { // s * x^(s-1)
          be.scalar('pow', x.buf, s - 1, gx.buf, n, false);
          be.scalar('mul', gx.buf, s, gx.buf, n, false);
          be.binary('mul', gx.buf, [1], g.buf, [1], gx.buf, [n]);
        } else { // ln(s) * s^x
          be.scalar('mul', y.buf, Math.log(s), gx.buf, n, false);
          be.binary('mul', gx.buf, [1], g.buf, [1], gx.buf, [n]);
        }
        break;
      default: return kind satisfies never;
    }
    return [gx];
  });
}

export function unary(kind: UnaryOp, x: Tensor): Tensor {
  requireFloat(kind, x);
  const y = outFull(x, x.shape);
  x.backend.unary(kind, x.buf, y.buf, x.size);
  return record(y, kind, [x], (g) => {
    const gx = outFull(x, x.shape);
    x.backend.unaryBackward(kind, x.buf, y.buf, g.buf, gx.buf, x.size, false);
    return [gx];
  });
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const tanh = (x: Tensor) => unary('tanh', x);
/** GELU, tanh approximation (GPT-2). */
export const gelu = (x: Tensor) => unary('gelu', x);
/** GELU, exact (erf). */
export const geluErf = (x: Tensor) => unary('gelu_erf', x);
export const silu = (x: Tensor) => unary('silu', x);
export const relu = (x: Tensor) => unary('relu', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);

// ---------------------------------------------------------------------------------------------
// reductions

/** Sum over the given axes (all when omitted). */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  requireFloat('sum', x);
  const ax = axes === undefined ? x.shape.map((_, i) => i) : (Array.isArray(axes) ? axes : [axes]).map((a) => normAxis('sum', a, x.ndim));
  const set = new Set(ax);
  let cur = x.buf;
  let shape = [...x.shape];
  for (const a of [...set].sort((p, q) => q - p)) {
    const outer = numel(shape.slice(0, a)), mid = shape[a]!, inner = numel(shape.slice(a + 1));
    const next = x.backend.empty(x.dtype, outer * inner);
    x.backend.reduceSum(cur, next, outer, mid, inner);
    cur = next;
    shape[a] = 1;
  }
  const kept = shape;
  const final = keepDims ? kept : kept.filter((_, i) => !set.has(i));
  const y = new Tensor(cur === x.buf ? copyBuf(x) : cur, final, x.backend);
  return record(y, 'sum', [x], (g) => {
    const gx = outFull(x, x.shape);
    // Broadcast g (viewed with kept dims) back over x.
    const zero = x.backend.alloc(x.dtype, 1);
    x.backend.binary('add', g.buf, broadcastStrides(kept, x.shape), zero, x.shape.map(() => 0), gx.buf, x.shape);
    return [gx];
  });
}

function copyBuf(x: Tensor): Buf {
  const b = x.backend.empty(x.dtype, x.size);
  x.backend.cast(x.buf, b, x.size);
  return b;
}

export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const s = sum(x, axes, keepDims);
  return scalar('mul', s, s.size / x.size);
}

/** Max over one axis; the gradient flows to the (first) maximal element. */
export function max(x: Tensor, axis: number, keepDims = false): Tensor {
  requireFloat('max', x);
  const a = normAxis('max', axis, x.ndim);
  const outer = numel(x.shape.slice(0, a)), mid = x.shape[a]!, inner = numel(x.shape.slice(a + 1));
  const shape = keepDims ? x.shape.map((d, i) => (i === a ? 1 : d)) : x.shape.filter((_, i) => i !== a);
  const y = out(x, shape);
  const idx = x.backend.alloc('int32', outer * inner);
  x.backend.reduceMax(x.buf, y.buf, idx, outer, mid, inner);
  return record(y, 'max', [x], (g) => {
    const gx = out(x, x.shape);
    const ids = x.backend.toHost(idx), gs = x.backend.toHost(g.buf), gxs = x.backend.toHost(gx.buf);
    // Scatter on the host: max is used for metrics and tests, not in hot training loops.
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) gxs[(o * mid + ids[o * inner + i]!) * inner + i] = gs[o * inner + i]!;
    return [gx];
  });
}

// ---------------------------------------------------------------------------------------------
// softmax family, norms, loss

function rowsCols(x: Tensor): [number, number] {
  const cols = x.shape[x.ndim - 1]!;
  return [x.size / cols, cols];
}

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  requireFloat('softmax', x);
  const [rows, cols] = rowsCols(x);
  const y = outFull(x, x.shape);
  x.backend.softmax(x.buf, y.buf, rows, cols);
  return record(y, 'softmax', [x], (g) => {
    const gx = outFull(x, x.shape);
    x.backend.softmaxBackward(y.buf, g.buf, gx.buf, rows, cols);
    return [gx];
  });
}

/** Log-softmax over the last axis. */
export function logSoftmax(x: Tensor): Tensor {
  requireFloat('logSoftmax', x);
  const [rows, cols] = rowsCols(x);
  const y = outFull(x, x.shape);
  x.backend.logSoftmax(x.buf, y.buf, rows, cols);
  return record(y, 'logSoftmax', [x], (g) => {
    const gx = outFull(x, x.shape);
    x.backend.logSoftmaxBackward(y.buf, g.buf, gx.buf, rows, cols);
    return [gx];
  });
}

function checkVec(op: string, v: Tensor | null, cols: number, what: string): void {
  if (v && (v.ndim !== 1 || v.shape[0] !== cols)) throw new OpError(op, `${what} must have shape [${cols}], got ${shp(v.shape)}`);
}

/** LayerNorm over the last axis with optional affine weight and bias (cols). */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const op = 'layerNorm';
  requireFloat(op, x, ...[weight, bias].filter((t): t is Tensor => t !== null));
  const [rows, cols] = rowsCols(x);
  checkVec(op, weight, cols, 'weight'); checkVec(op, bias, cols, 'bias');
  const be = x.backend;
  const y = outFull(x, x.shape);
  const meanB = be.empty(x.dtype, rows), rstd = be.empty(x.dtype, rows);
  be.layerNorm(x.buf, weight?.buf ?? null, bias?.buf ?? null, y.buf, meanB, rstd, rows, cols, eps);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return record(y, op, inputs, (g) => {
    const gx = outFull(x, x.shape);
    const gw = weight && needs(weight) ? out(weight, weight.shape) : null;
    const gb = bias && needs(bias) ? out(bias, bias.shape) : null;
    be.layerNormBackward(x.buf, weight?.buf ?? null, meanB, rstd, g.buf, gx.buf, gw?.buf ?? null, gb?.buf ?? null, rows, cols);
    return [gx, ...(weight ? [gw] : []), ...(bias ? [gb] : [])];
  });
}

/** RMSNorm over the last axis with optional weight (cols). */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-5): Tensor {
  const op = 'rmsNorm';
  requireFloat(op, x, ...(weight ? [weight] : []));
  const [rows, cols] = rowsCols(x);
  checkVec(op, weight, cols, 'weight');
  const be = x.backend;
  const y = outFull(x, x.shape);
  const rstd = be.empty(x.dtype, rows);
  be.rmsNorm(x.buf, weight?.buf ?? null, y.buf, rstd, rows, cols, eps);
  return record(y, op, weight ? [x, weight] : [x], (g) => {
    const gx = outFull(x, x.shape);
    const gw = weight && needs(weight) ? out(weight, weight.shape) : null;
    be.rmsNormBackward(x.buf, weight?.buf ?? null, rstd, g.buf, gx.buf, gw?.buf ?? null, rows, cols);
    return weight ? [gx, gw] : [gx];
  });
}

/** Rows of `table` (V, dim) picked by int32 `ids` (any shape) → (...ids.shape, dim). */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  const op = 'embedding';
  sameBackend(op, table, ids);
  requireFloat(op, table);
  if (ids.dtype !== 'int32') throw new OpError(op, `ids must be int32, got ${ids.dtype}`);
  if (table.ndim !== 2) throw new OpError(op, `table must be 2-d (V, dim), got ${shp(table.shape)}`);
  const [V, dim] = table.shape as [number, number];
  checkIds(op, ids, V);
  const y = outFull(table, [...ids.shape, dim]);
  table.backend.embedding(table.buf, ids.buf, y.buf, ids.size, dim);
  return record(y, op, [table], (g) => {
    const gt = out(table, table.shape);
    table.backend.embeddingBackward(g.buf, ids.buf, gt.buf, ids.size, dim);
    return [gt];
  });
}

function checkIds(op: string, ids: Tensor, limit: number, allow?: number): void {
  const h = ids.backend.toHost(ids.buf);
  for (let i = 0; i < ids.size; i++) {
    const v = h[i]!;
    if ((v < 0 || v >= limit) && v !== allow) throw new OpError(op, `index ${v} at position ${i} is out of range [0, ${limit})`);
  }
}

export interface CrossEntropyOptions {
  ignoreIndex?: number;
  labelSmoothing?: number;
  /** 'mean' over non-ignored rows (default), 'sum', or 'none' (per-row losses). */
  reduction?: 'mean' | 'sum' | 'none';
}

/** Cross-entropy of logits (..., V) against int32 targets (...). */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  sameBackend(op, logits, targets);
  requireFloat(op, logits);
  if (targets.dtype !== 'int32') throw new OpError(op, `targets must be int32, got ${targets.dtype}`);
  const [rows, V] = rowsCols(logits);
  if (targets.size !== rows) throw new OpError(op, `targets ${shp(targets.shape)} do not match logits ${shp(logits.shape)}`);
  const ignore = opts.ignoreIndex ?? -100, s = opts.labelSmoothing ?? 0, red = opts.reduction ?? 'mean';
  if (!(s >= 0 && s < 1)) throw new OpError(op, `labelSmoothing must be in [0, 1), got ${s}`);
  checkIds(op, targets, V, ignore);
  const be = logits.backend;
  const losses = out(logits, targets.shape);
  const lse = be.alloc(logits.dtype, rows);
  be.crossEntropy(logits.buf, targets.buf, losses.buf, lse, rows, V, ignore, s);
  const th = be.toHost(targets.buf);
  let count = 0;
  for (let i = 0; i < rows; i++) if (th[i] !== ignore) count++;
  let y: Tensor;
  if (red === 'none') y = losses;
  else {
    const total = sumHost(be, losses.buf, rows);
    if (!Number.isFinite(total)) {
      throw new OpError(op, `loss is not finite (${total}) for logits ${shp(logits.shape)}: the logits contain NaN or infinite values`);
    }
    const v = red === 'mean' ? (count > 0 ? total / count : 0) : total;
    y = Tensor.full([], v, logits.dtype, be);
  }
  return record(y, op, [logits], (g) => {
    const dl = be.alloc(logits.dtype, rows);
    if (red === 'none') be.axpy(1, g.buf, dl, rows);
    else be.fill(dl, g.item() / (red === 'mean' ? Math.max(count, 1) : 1));
    const gx = out(logits, logits.shape);
    be.crossEntropyBackward(logits.buf, targets.buf, lse, dl, gx.buf, rows, V, ignore, s);
    return [gx];
  });
}

function sumHost(be: Backend, b: Buf, n: number): number {
  const h = be.toHost(b);
  let s = 0;
  for (let i = 0; i < n; i++) s += h[i]!;
  return s;
}

// ---------------------------------------------------------------------------------------------
// attention, rope, dropout

export interface AttentionOptions {
  causal?: boolean;
  /** Default 1/sqrt(D). */
  scale?: number;
  /** Additive mask (B|1, H|1, Tq, Tk); -Infinity blocks. */
  mask?: Tensor | null;
}

/**
 * Fused scaled-dot-product attention on (B, T, H, D) tensors: q (B, Tq, Hq, D), k and v
 * (B, Tk, Hkv, D) with Hq a multiple of Hkv (grouped-query attention) → (B, Tq, Hq, D).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const op = 'attention';
  const be = sameBackend(op, q, k, v);
  requireFloat(op, q, k, v);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new OpError(op, `q, k, v must be 4-d (B, T, H, D), got ${shp(q.shape)}, ${shp(k.shape)}, ${shp(v.shape)}`);
  const [B, Tq, Hq, D] = q.shape as [number, number, number, number];
  const [Bk, Tk, Hkv, Dk] = k.shape as [number, number, number, number];
  if (Bk !== B || Dk !== D || v.shape.some((d, i) => d !== k.shape[i])) throw new OpError(op, `k ${shp(k.shape)} and v ${shp(v.shape)} do not fit q ${shp(q.shape)}`);
  if (Hq % Hkv !== 0) throw new OpError(op, `query heads ${Hq} must be a multiple of key/value heads ${Hkv}`);
  const causal = opts.causal ?? false;
  if (causal && Tq > Tk) throw new OpError(op, `causal attention needs Tq <= Tk, got ${Tq} > ${Tk}`);
  const mask = opts.mask ?? null;
  let maskBatchStride = 0, maskHeadStride = 0;
  if (mask) {
    if (mask.ndim !== 4 || mask.shape[2] !== Tq || mask.shape[3] !== Tk || (mask.shape[0] !== 1 && mask.shape[0] !== B) || (mask.shape[1] !== 1 && mask.shape[1] !== Hq)) {
      throw new OpError(op, `mask must be (B|1, H|1, ${Tq}, ${Tk}), got ${shp(mask.shape)}`);
    }
    maskHeadStride = mask.shape[1] === 1 ? 0 : Tq * Tk;
    maskBatchStride = mask.shape[0] === 1 ? 0 : mask.shape[1]! * Tq * Tk;
  }
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const y = outFull(q, q.shape);
  const lse = be.empty(q.dtype, B * Hq * Tq);
  const args = { q: q.buf, k: k.buf, v: v.buf, out: y.buf, lse, B, Tq, Tk, Hq, Hkv, D, kvBatchStride: Tk * Hkv * D, scale, causal, mask: mask?.buf ?? null, maskBatchStride, maskHeadStride };
  be.attention(args);
  return record(y, op, [q, k, v], (g) => {
    const dq = outFull(q, q.shape), dk = outFull(k, k.shape), dv = outFull(v, v.shape);
    be.attentionBackward({ ...args, dout: g.buf, dq: dq.buf, dk: dk.buf, dv: dv.buf });
    return [dq, dk, dv];
  });
}

/** Rotary position embedding on x (N, T, H, D) at int32 positions (N, T). */
export function rope(x: Tensor, positions: Tensor, base = 10000): Tensor {
  const op = 'rope';
  requireFloat(op, x);
  if (x.ndim !== 4) throw new OpError(op, `x must be (N, T, H, D), got ${shp(x.shape)}`);
  const [N, T, H, D] = x.shape as [number, number, number, number];
  if (D % 2 !== 0) throw new OpError(op, `head dim must be even, got ${D}`);
  if (positions.dtype !== 'int32' || positions.size !== N * T) throw new OpError(op, `positions must be int32 with ${N * T} elements (N, T), got ${positions.dtype} ${shp(positions.shape)}`);
  const y = outFull(x, x.shape);
  x.backend.rope(x.buf, y.buf, positions.buf, N, T, H, D, base, false);
  return record(y, op, [x], (g) => {
    const gx = outFull(x, x.shape);
    x.backend.rope(g.buf, gx.buf, positions.buf, N, T, H, D, base, true);
    return [gx];
  });
}

/** Inverted dropout with a counter-based seeded mask (identical on every backend). */
export function dropout(x: Tensor, p: number, seed: number, offset = 0): Tensor {
  const op = 'dropout';
  requireFloat(op, x);
  if (!(p >= 0 && p < 1)) throw new OpError(op, `p must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  const y = outFull(x, x.shape);
  const mask = x.backend.empty(x.dtype, x.size);
  x.backend.dropout(x.buf, y.buf, mask, x.size, p, seed >>> 0, offset);
  return record(y, op, [x], (g) => {
    const gx = outFull(x, x.shape);
    x.backend.binary('mul', g.buf, [1], mask, [1], gx.buf, [x.size]);
    return [gx];
  });
}

// ---------------------------------------------------------------------------------------------
// shape ops: reshape shares storage; permute, slice and concat copy (tensors stay contiguous)

/** Same data, new shape; one dimension may be -1. Shares storage (no copy). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const neg = shape.filter((d) => d === -1).length;
  if (neg > 1) throw new OpError('reshape', `at most one -1 allowed, got ${shp(shape)}`);
  const known = numel(shape.filter((d) => d !== -1));
  const s = shape.map((d) => (d === -1 ? x.size / known : d));
  if (numel(s) !== x.size || s.some((d) => !Number.isInteger(d) || d < 0)) throw new OpError('reshape', `cannot reshape ${shp(x.shape)} (${x.size} elements) to ${shp(shape)}`);
  const y = new Tensor(x.buf, s, x.backend);
  return record(y, 'reshape', [x], (g) => [new Tensor(g.buf, x.shape, g.backend)]);
}

/** Reorders dimensions (a copy). */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const op = 'permute';
  if (dims.length !== x.ndim || new Set(dims).size !== dims.length || dims.some((d) => d < 0 || d >= x.ndim)) {
    throw new OpError(op, `dims ${shp(dims)} are not a permutation of ${x.ndim} axes (input ${shp(x.shape)})`);
  }
  const shape = dims.map((d) => x.shape[d]!);
  const xs = stridesOf(x.shape);
  const y = outFull(x, shape);
  x.backend.stridedCopy(x.buf, 0, dims.map((d) => xs[d]!), y.buf, 0, stridesOf(shape), shape, false);
  return record(y, op, [x], (g) => {
    const gx = outFull(x, x.shape);
    // Walk g's index space and scatter into x's layout.
    x.backend.stridedCopy(g.buf, 0, stridesOf(shape), gx.buf, 0, dims.map((d) => xs[d]!), shape, false);
    return [gx];
  });
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const dims = x.shape.map((_, i) => i);
  const i = normAxis('transpose', a, x.ndim), j = normAxis('transpose', b, x.ndim);
  [dims[i], dims[j]] = [dims[j]!, dims[i]!];
  return permute(x, dims);
}

/** x[..., start:start+length, ...] along `axis` (a copy). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const op = 'narrow';
  const a = normAxis(op, axis, x.ndim);
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > x.shape[a]!) {
    throw new OpError(op, `range [${start}, ${start + length}) out of bounds for axis ${a} of size ${x.shape[a]} (input ${shp(x.shape)})`);
  }
  const shape = x.shape.map((d, i) => (i === a ? length : d));
  const xs = stridesOf(x.shape);
  const offset = start * xs[a]!;
  const y = outFull(x, shape);
  x.backend.stridedCopy(x.buf, offset, xs, y.buf, 0, stridesOf(shape), shape, false);
  return record(y, 'slice', [x], (g) => {
    const gx = out(x, x.shape);
    x.backend.stridedCopy(g.buf, 0, stridesOf(shape), gx.buf, offset, xs, shape, true);
    return [gx];
  });
}

/** Python-style slice along one axis: x[start:end] (negative indices count from the end). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const a = normAxis('slice', axis, x.ndim);
  const n = x.shape[a]!;
  const s = start < 0 ? start + n : start;
  const e = end === undefined ? n : end < 0 ? end + n : end;
  return narrow(x, a, s, Math.max(0, e - s));
}

/** Joins tensors along an existing axis. */
export function concat(xs: Tensor[], axis: number): Tensor {
  const op = 'concat';
  if (xs.length === 0) throw new OpError(op, 'needs at least one tensor');
  const be = sameBackend(op, ...xs);
  requireFloat(op, ...xs);
  const first = xs[0]!;
  const a = normAxis(op, axis, first.ndim);
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new OpError(op, `shapes ${xs.map((t) => shp(t.shape)).join(', ')} differ outside axis ${a}`);
    }
  }
  const shape = first.shape.map((d, i) => (i === a ? xs.reduce((s, t) => s + t.shape[a]!, 0) : d));
  const ys = stridesOf(shape);
  const y = outFull(first, shape); // the pieces tile the whole output
  let pos = 0;
  const offsets: number[] = [];
  for (const t of xs) {
    offsets.push(pos * ys[a]!);
    be.stridedCopy(t.buf, 0, stridesOf(t.shape), y.buf, pos * ys[a]!, ys, t.shape, false);
    pos += t.shape[a]!;
  }
  return record(y, op, xs, (g) => xs.map((t, i) => {
    const gt = outFull(t, t.shape);
    be.stridedCopy(g.buf, offsets[i]!, ys, gt.buf, 0, stridesOf(t.shape), t.shape, false);
    return gt;
  }));
}

/** Splits along an axis into pieces of the given sizes. */
export function split(x: Tensor, sizes: number[], axis: number): Tensor[] {
  const a = normAxis('split', axis, x.ndim);
  if (sizes.reduce((p, q) => p + q, 0) !== x.shape[a]) throw new OpError('split', `sizes ${shp(sizes)} do not add up to ${x.shape[a]} (axis ${a} of ${shp(x.shape)})`);
  let start = 0;
  return sizes.map((s) => { const t = narrow(x, a, start, s); start += s; return t; });
}

/** Stacks same-shape tensors along a new axis. */
export function stack(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new OpError('stack', 'needs at least one tensor');
  const a = axis < 0 ? axis + xs[0]!.ndim + 1 : axis;
  return concat(xs.map((t) => reshape(t, [...t.shape.slice(0, a), 1, ...t.shape.slice(a)])), a);
}

/** Registry view: op kind → the function that defines it (shape rule, forward and backward live inside). */
export const OPS = {
  matmul, binary, scalar, unary, sum, max, softmax, logSoftmax, layerNorm, rmsNorm,
  embedding, crossEntropy, attention, dropout, rope, reshape, permute, slice: narrow, concat,
} satisfies Record<OpKind, (...args: never[]) => Tensor>;

/**
 * The backend interface: the only place where tensor storage is touched.
 *
 * A backend owns memory (`Buf`) and runs kernels on it. Model and training code never
 * see a `Buf`; they call tensor ops (src/tensor/ops.ts), and the ops call these kernels.
 * Nothing here assumes that storage is JavaScript memory: a CUDA backend would return
 * device pointers wrapped in its own `Buf` objects. Reading data back to the host is the
 * explicit `toHost` call.
 *
 * Conventions shared by every kernel:
 * - all sizes and offsets are in elements, not bytes;
 * - row-major, contiguous unless strides are passed explicitly;
 * - `out` buffers are written, never read, unless the kernel says "accumulates";
 * - layouts are given in the comment above each kernel as (dim, dim, ...).
 */

export type DType = 'float32' | 'int32' | 'float64';

/** Opaque storage owned by a backend. CPU backends use typed arrays; others may not. */
export interface Buf {
  readonly dtype: DType;
  readonly length: number;
}

export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'tanh' | 'gelu' | 'gelu_erf' | 'silu' | 'relu' | 'sigmoid' | 'abs';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min';

export interface MatmulArgs {
  /** A is (batch, m, k), or (batch, k, m) when transA. */
  a: Buf; aOffset?: number; strideA: number;
  /** B is (batch, k, n), or (batch, n, k) when transB. strideB = 0 broadcasts one B over the batch. */
  b: Buf; bOffset?: number; strideB: number;
  /** C is (batch, m, n). */
  out: Buf; outOffset?: number; strideOut: number;
  batch: number; m: number; n: number; k: number;
  transA: boolean; transB: boolean;
  /** C = alpha * op(A) op(B) + (accumulate ? C : 0). */
  alpha?: number;
  accumulate?: boolean;
}

export interface AttentionArgs {
  /**
   * Layout (B, T, H, D) — the natural layout of a linear projection reshaped, no permute.
   * q: (B, Tq, Hq, D) contiguous.
   * k, v: (B, Tk, Hkv, D) rows of a buffer whose batch stride is kvBatchStride (>= Tk*Hkv*D),
   *   so a KV cache of capacity Tmax can be read in place. Hq must be a multiple of Hkv (GQA).
   * out: (B, Tq, Hq, D) contiguous.
   * lse: (B, Hq, Tq) log-sum-exp of the scaled, masked scores, saved for the backward pass.
   */
  q: Buf; k: Buf; v: Buf; out: Buf; lse: Buf;
  B: number; Tq: number; Tk: number; Hq: number; Hkv: number; D: number;
  kvBatchStride: number;
  scale: number;
  /** Causal: query i (0-based within Tq) sits at absolute position Tk - Tq + i and sees keys <= it. */
  causal: boolean;
  /**
   * Optional additive mask read as mask[b*maskBatchStride + h*maskHeadStride + i*Tk + j];
   * a stride of 0 broadcasts. -Infinity blocks a key.
   */
  mask?: Buf | null; maskBatchStride?: number; maskHeadStride?: number;
}

/**
 * One decoding step of many sequences (causal). The step's new rows of all sequences are stacked:
 * q (rows, Hq, D), k and v (rows, Hkv, D), out (rows, Hq, D); lse (rows·Hq) is scratch. Each item
 * is a sequence: its rows [row, row + n), its KV cache (capacity·Hkv·D each, positions in order)
 * and the `start` positions already cached. Its k, v rows are written into the cache at `start`,
 * and its queries attend to the cache's first start + n positions, query i at position start + i.
 */
export interface DecodeAttentionArgs {
  q: Buf; k: Buf; v: Buf; out: Buf; lse: Buf;
  items: readonly { kCache: Buf; vCache: Buf; row: number; n: number; start: number }[];
  Hq: number; Hkv: number; D: number; scale: number;
}

/** Writes each item's new k, v rows into its cache and runs its attention alone (any backend's fallback). */
export function attentionDecodeByItem(be: Backend, p: DecodeAttentionArgs): void {
  const kv = p.Hkv * p.D, qd = p.Hq * p.D;
  for (const it of p.items) {
    be.stridedCopy(p.k, it.row * kv, [1], it.kCache, it.start * kv, [1], [it.n * kv], false);
    be.stridedCopy(p.v, it.row * kv, [1], it.vCache, it.start * kv, [1], [it.n * kv], false);
    // the item's q rows → a contiguous (1, n, Hq, D) buffer, attention over the cache, rows back
    const qi = be.empty('float32', it.n * qd), oi = be.empty('float32', it.n * qd), lse = be.empty('float32', p.Hq * it.n);
    be.stridedCopy(p.q, it.row * qd, [1], qi, 0, [1], [it.n * qd], false);
    be.attention({ q: qi, k: it.kCache, v: it.vCache, out: oi, lse, B: 1, Tq: it.n, Tk: it.start + it.n, Hq: p.Hq, Hkv: p.Hkv,
      D: p.D, kvBatchStride: it.kCache.length, scale: p.scale, causal: true });
    be.stridedCopy(oi, 0, [1], p.out, it.row * qd, [1], [it.n * qd], false);
  }
}

export interface AttentionBackwardArgs extends AttentionArgs {
  dout: Buf;
  /** Gradients, same layouts as q, k, v (dk, dv contiguous (B, Tk, Hkv, D)); they are overwritten. */
  dq: Buf; dk: Buf; dv: Buf;
}

export interface Backend {
  readonly name: string;
  /** Short description for logs, e.g. "native (avx2+fma, 2 threads)". */
  describe(): string;

  // ---------------------------------------------------------------- memory
  /** A new zero-filled buffer. */
  alloc(dtype: DType, length: number): Buf;
  /** A new buffer whose contents are unspecified (may be old data): for outputs a kernel then writes in full. */
  empty(dtype: DType, length: number): Buf;
  /** A buffer holding a copy of (or, on CPU, possibly adopting) host data. */
  fromHost(data: Float32Array | Int32Array | Float64Array): Buf;
  /**
   * Explicit read back to the host. CPU backends may return the storage itself: treat it as
   * read-only, and do not keep it past the buffer's life (the native backend recycles the storage
   * of collected buffers) — copy what must outlive it, as Tensor.toArray does.
   */
  toHost(buf: Buf): Float32Array | Int32Array | Float64Array;
  fill(buf: Buf, value: number, offset?: number, length?: number): void;
  /**
   * General strided copy of an n-d block: dst[dstOffset + sum(i_d*dstStrides[d])] (+)= src[srcOffset + sum(i_d*srcStrides[d])]
   * for every index i in `shape`. With accumulate the destination is added to (used by slice backward).
   */
  stridedCopy(src: Buf, srcOffset: number, srcStrides: readonly number[],
              dst: Buf, dstOffset: number, dstStrides: readonly number[],
              shape: readonly number[], accumulate: boolean): void;
  /** Converts between dtypes (e.g. int32 ids to float32), elementwise. */
  cast(src: Buf, dst: Buf, n: number): void;
  /**
   * Optional step scope (the native backend's BufferPool): the storage of every buffer allocated
   * between beginStep and endStep is reused as soon as the step ends, except that of `keep`; those
   * buffers throw on any later use. beginStep returns false (and opens nothing) when a scope is
   * already open. abortStep closes the scope releasing nothing. Without them storage is left to the GC.
   */
  beginStep?(): boolean;
  endStep?(keep?: Iterable<Buf>): void;
  abortStep?(): void;
  /** Optional: lets the buffer pool keep at least `bytes` of storage for reuse between steps (BufferPool.reserve). */
  reservePool?(bytes: number): void;

  // ---------------------------------------------------------------- elementwise
  /** out[i] = f(x[i]) for i < n. */
  unary(op: UnaryOp, x: Buf, out: Buf, n: number): void;
  /**
   * dx[i] (+)= dy[i] * f'(x[i]) for i < n. `y` is the forward output (some derivatives are cheaper from it).
   * With accumulate, dx is added to.
   */
  unaryBackward(op: UnaryOp, x: Buf, y: Buf, dy: Buf, dx: Buf, n: number, accumulate: boolean): void;
  /**
   * Broadcasting binary op over `shape` (the output shape, contiguous in `out`):
   * out[idx] = a[sum(idx_d*aStrides[d])] op b[sum(idx_d*bStrides[d])]. A stride of 0 broadcasts.
   */
  binary(op: BinaryOp, a: Buf, aStrides: readonly number[], b: Buf, bStrides: readonly number[],
         out: Buf, shape: readonly number[]): void;
  /** out[i] = x[i] op s (or s op x[i] when `reverse`), for scalar s. */
  scalar(op: BinaryOp, x: Buf, s: number, out: Buf, n: number, reverse: boolean): void;
  /** y[i] += alpha * x[i] for i < n. */
  axpy(alpha: number, x: Buf, y: Buf, n: number): void;

  // ---------------------------------------------------------------- reductions
  /** x viewed as (outer, mid, inner); out (outer, inner) = sum over mid. */
  reduceSum(x: Buf, out: Buf, outer: number, mid: number, inner: number): void;
  /** x viewed as (outer, mid, inner); out (outer, inner) = max over mid, argmax (int32) the index in mid. */
  reduceMax(x: Buf, out: Buf, argmax: Buf, outer: number, mid: number, inner: number): void;
  /** Sum of squares of the first n elements, as a host number (a synchronisation point on devices). */
  sumSquares(x: Buf, n: number): number;

  // ---------------------------------------------------------------- matrix products
  matmul(args: MatmulArgs): void;

  // ---------------------------------------------------------------- rows: softmax, norms, loss
  /** x, out: (rows, cols); softmax along cols. */
  softmax(x: Buf, out: Buf, rows: number, cols: number): void;
  /** dx = y * (dy - sum(dy*y)) row-wise; y is the softmax output. */
  softmaxBackward(y: Buf, dy: Buf, dx: Buf, rows: number, cols: number): void;
  logSoftmax(x: Buf, out: Buf, rows: number, cols: number): void;
  /** dx = dy - exp(y) * sum(dy) row-wise; y is the log-softmax output. */
  logSoftmaxBackward(y: Buf, dy: Buf, dx: Buf, rows: number, cols: number): void;

  /** LayerNorm over cols. weight/bias (cols) may be null. Saves mean and rstd (rows). */
  layerNorm(x: Buf, weight: Buf | null, bias: Buf | null, out: Buf, mean: Buf, rstd: Buf,
            rows: number, cols: number, eps: number): void;
  /** Writes dx; accumulates into dweight/dbias when given. */
  layerNormBackward(x: Buf, weight: Buf | null, mean: Buf, rstd: Buf, dy: Buf,
                    dx: Buf, dweight: Buf | null, dbias: Buf | null, rows: number, cols: number): void;
  /** RMSNorm over cols: x * rstd * weight. Saves rstd (rows). */
  rmsNorm(x: Buf, weight: Buf | null, out: Buf, rstd: Buf, rows: number, cols: number, eps: number): void;
  rmsNormBackward(x: Buf, weight: Buf | null, rstd: Buf, dy: Buf,
                  dx: Buf, dweight: Buf | null, rows: number, cols: number): void;

  /**
   * Cross-entropy of logits (rows, V) against int32 targets (rows).
   * losses (rows) gets -[(1-s) * logp[target] + s * mean_j logp[j]]; rows whose target equals
   * ignoreIndex get 0. lse (rows) saves the log-sum-exp. Targets outside [0, V) other than
   * ignoreIndex are an error the op checks before calling.
   */
  crossEntropy(logits: Buf, targets: Buf, losses: Buf, lse: Buf, rows: number, V: number,
               ignoreIndex: number, smoothing: number): void;
  /** dlogits = dloss[row] * (softmax - ((1-s)*onehot + s/V)); ignored rows get 0. dloss is (rows). */
  crossEntropyBackward(logits: Buf, targets: Buf, lse: Buf, dloss: Buf, dlogits: Buf, rows: number, V: number,
                       ignoreIndex: number, smoothing: number): void;

  // ---------------------------------------------------------------- lookup
  /** out (n, dim) = table[ids[i]] ; ids int32 (n), already range-checked. */
  embedding(table: Buf, ids: Buf, out: Buf, n: number, dim: number): void;
  /** dtable[ids[i]] += dout[i] (accumulates). */
  embeddingBackward(dout: Buf, ids: Buf, dtable: Buf, n: number, dim: number): void;

  // ---------------------------------------------------------------- attention & positions
  attention(args: AttentionArgs): void;
  attentionBackward(args: AttentionBackwardArgs): void;
  /** Attention of a decoding step over many sequences' KV caches (see DecodeAttentionArgs). */
  attentionDecode(args: DecodeAttentionArgs): void;
  /**
   * Rotary embedding on x (N, T, H, D) with positions (int32, N*T): rotates pairs (d, d + D/2)
   * — the "rotate_half" convention — by angle pos * base^(-2d/D). inverse rotates the other way
   * (the backward pass). D must be even.
   */
  rope(x: Buf, out: Buf, positions: Buf, N: number, T: number, H: number, D: number,
       base: number, inverse: boolean): void;

  // ---------------------------------------------------------------- randomness
  /**
   * Dropout: keep[i] = hash(seed, offset + i) >= p, out = keep ? x / (1-p) : 0; mask (float32) saves keep/(1-p).
   * The hash is src/tensor/rng.ts `uniformAt`, identical on every backend, so masks match bit for bit.
   */
  dropout(x: Buf, out: Buf, mask: Buf, n: number, p: number, seed: number, offset: number): void;

  // ---------------------------------------------------------------- optimizer
  /**
   * AdamW in place on n elements: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   * p -= lr * (m/bc1 / (sqrt(v/bc2) + eps) + wd * p), where bc1 = 1 - b1^t, bc2 = 1 - b2^t.
   * gradScale multiplies g first (gradient clipping and accumulation averaging).
   */
  adamw(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, b1: number, b2: number, eps: number,
        wd: number, bc1: number, bc2: number, gradScale: number): void;
}

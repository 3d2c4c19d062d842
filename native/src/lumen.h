/*
 * Lumen native kernels: shared declarations.
 *
 * Every kernel works in place on caller-owned float32/int32 memory (JavaScript typed arrays,
 * reached through N-API without copies). Sizes are element counts (int64_t). Argument
 * validation happens once, in addon.c; the kernels here trust their inputs.
 *
 * ISA: compiled with -mavx2 -mfma on x86-64 hosts that have them (LUMEN_AVX2 below), with NEON
 * on arm64, and a portable scalar path otherwise. The GEMM additionally carries an AVX-512
 * microkernel behind a function target attribute, chosen at run time (gemm.c).
 */
#ifndef LUMEN_H
#define LUMEN_H

#include <stdint.h>
#include <stddef.h>

#if defined(__AVX2__) && defined(__FMA__)
#define LUMEN_AVX2 1
#include <immintrin.h>
#endif
#if defined(__ARM_NEON) || defined(__aarch64__)
#define LUMEN_NEON 1
#include <arm_neon.h>
#endif

/* ------------------------------------------------------------------ thread pool (threadpool.c) */

/** A unit of parallel work: runs task `task` (0 <= task < ntasks) on pool thread `tid`. */
typedef void (*lm_task_fn)(void *ctx, int64_t task, int tid);

/** Runs fn(ctx, t, tid) for every t < ntasks on the pool (the caller takes part) and waits. */
void lm_parallel(int64_t ntasks, lm_task_fn fn, void *ctx);
/** Sets the pool size (threads including the caller, >= 1); restarts the workers. */
void lm_set_threads(int n);
int lm_get_threads(void);
/** Number of tasks worth running for `work` units when one task should get >= `grain` units. */
int64_t lm_split(int64_t work, int64_t grain);

/** A loop body over elements [lo, hi). */
typedef void (*lm_range_fn)(void *ctx, int64_t lo, int64_t hi);
/**
 * Runs fn over [0, n) in chunks of at least `grain` elements on the pool. Chunk boundaries are
 * multiples of 64, so which elements fall in a SIMD loop's scalar tail depends only on n, never
 * on the thread count (elementwise results are bit-identical for any thread count).
 */
void lm_parallel_range(int64_t n, int64_t grain, lm_range_fn fn, void *ctx);
/** Like lm_parallel_range for row loops: chunks of any size (each row is one unit of work). */
void lm_parallel_rows(int64_t n, int64_t grain, lm_range_fn fn, void *ctx);

/** Per-OS-thread scratch memory (64-byte aligned, grown on demand, kept between calls). slot < 5. */
void *lm_scratch(int slot, size_t bytes);

/** The SIMD paths in use: "avx2+fma" (+ "+avx512f" when the CPU has it: GEMM and exp-bound
 * kernels), "neon" or "scalar". */
const char *lm_isa(void);

/* ------------------------------------------------------------------ gemm.c */

typedef struct {
  const float *a; int64_t strideA;
  const float *b; int64_t strideB;
  float *c; int64_t strideC;
  int64_t batch, m, n, k;
  int transA, transB;
  float alpha;
  int accumulate;
  /** Leading dimensions (row strides) of the stored A, B, C; 0 means contiguous. */
  int64_t lda, ldb, ldc;
} lm_gemm_args;

/** C = alpha op(A) op(B) (+ C), batched, row-major. Deterministic for any thread count. */
void lm_gemm(const lm_gemm_args *g);
/** The same for batch item 0 only, on the calling thread (for use inside a parallel task). */
void lm_gemm_serial(const lm_gemm_args *g);
const char *lm_gemm_kernel_name(void);

/* ------------------------------------------------------------------ elementwise.c */

enum { LM_NEG, LM_EXP, LM_LOG, LM_SQRT, LM_TANH, LM_GELU, LM_GELU_ERF, LM_SILU, LM_RELU, LM_SIGMOID, LM_ABS,
       LM_UNARY_COUNT };
enum { LM_ADD, LM_SUB, LM_MUL, LM_DIV, LM_POW, LM_MAX, LM_MIN, LM_BINARY_COUNT };

void lm_unary(int op, const float *x, float *out, int64_t n);
void lm_unary_backward(int op, const float *x, const float *y, const float *dy, float *dx, int64_t n, int accumulate);
void lm_binary(int op, const float *a, const int64_t *as, const float *b, const int64_t *bs,
               float *out, const int64_t *shape, int rank);
void lm_scalar(int op, const float *x, float s, float *out, int64_t n, int reverse);
void lm_axpy(float alpha, const float *x, float *y, int64_t n);
void lm_dropout(const float *x, float *out, float *mask, int64_t n, double p, uint32_t seed, double offset);
void lm_adamw(float *p, const float *g, float *m, float *v, int64_t n, float lr, float b1, float b2, float eps,
              float wd, float bc1, float bc2, float gradScale);

/* ------------------------------------------------------------------ reduce.c */

void lm_reduce_sum(const float *x, float *out, int64_t outer, int64_t mid, int64_t inner);
void lm_reduce_max(const float *x, float *out, int32_t *argmax, int64_t outer, int64_t mid, int64_t inner);
double lm_sum_squares(const float *x, int64_t n);

/* ------------------------------------------------------------------ copy.c */

/** dst (+)= src over an n-d block; elemSize 4 (float32 or int32 bit copy when !accumulate). */
void lm_strided_copy(const void *src, const int64_t *ss, void *dst, const int64_t *ds,
                     const int64_t *shape, int rank, int accumulate, int isInt);
void lm_cast_f32_i32(const float *src, int32_t *dst, int64_t n);
void lm_cast_i32_f32(const int32_t *src, float *dst, int64_t n);
/** Parallel memcpy (the bandwidth yardstick of the benchmark). */
void lm_copy(const float *src, float *dst, int64_t n);

/* ------------------------------------------------------------------ norms.c */

void lm_layernorm(const float *x, const float *w, const float *b, float *out, float *mean, float *rstd,
                  int64_t rows, int64_t cols, float eps);
void lm_layernorm_backward(const float *x, const float *w, const float *mean, const float *rstd, const float *dy,
                           float *dx, float *dw, float *db, int64_t rows, int64_t cols);
void lm_rmsnorm(const float *x, const float *w, float *out, float *rstd, int64_t rows, int64_t cols, float eps);
void lm_rmsnorm_backward(const float *x, const float *w, const float *rstd, const float *dy,
                         float *dx, float *dw, int64_t rows, int64_t cols);

/* ------------------------------------------------------------------ softmax_xent.c */

void lm_softmax(const float *x, float *out, int64_t rows, int64_t cols, int logsm);
/** out[i] = exp(x[i] - m) for i < n (out may be NULL or x itself); returns their sum. For x <= m. */
float lm_exp_shift_sum(const float *x, float m, float *out, int64_t n);
void lm_softmax_backward(const float *y, const float *dy, float *dx, int64_t rows, int64_t cols, int logsm);
void lm_cross_entropy(const float *logits, const int32_t *targets, float *losses, float *lse,
                      int64_t rows, int64_t V, int32_t ignoreIndex, float smoothing);
void lm_cross_entropy_backward(const float *logits, const int32_t *targets, const float *lse, const float *dloss,
                               float *dlogits, int64_t rows, int64_t V, int32_t ignoreIndex, float smoothing);

/* ------------------------------------------------------------------ lookup.c */

void lm_embedding(const float *table, const int32_t *ids, float *out, int64_t n, int64_t dim);
void lm_embedding_backward(const float *dout, const int32_t *ids, float *dtable, int64_t n, int64_t dim);
void lm_rope(const float *x, float *out, const int32_t *pos, int64_t N, int64_t T, int64_t H, int64_t D,
             double base, int inverse);

/* ------------------------------------------------------------------ attention.c */

typedef struct {
  const float *q, *k, *v; float *out, *lse;
  int64_t B, Tq, Tk, Hq, Hkv, D, kvBatchStride;
  float scale; int causal;
  const float *mask; int64_t maskBatchStride, maskHeadStride;
  /* backward only */
  const float *dout; float *dq, *dk, *dv;
} lm_attn_args;

void lm_attention(const lm_attn_args *a);
void lm_attention_backward(const lm_attn_args *a);

/** One sequence of a decoding step: its KV cache and its new rows [row, row + n) of q, k, v, out. */
typedef struct { float *kcache, *vcache; int64_t row, n, start; } lm_decode_item;
/**
 * A decoding step of many sequences at once (causal): for each item, copies its new k, v rows
 * (layout (rows, Hkv, D)) into its cache at position `start`, then attends its q rows to the
 * cache's first start + n positions. out (rows, Hq, D); lse (rows * Hq) is scratch. The same
 * tasks as lm_attention on each item alone (bit-identical), in one parallel region.
 */
void lm_attention_decode(const float *q, const float *knew, const float *vnew, float *out, float *lse,
                         const lm_decode_item *items, int64_t nitems, int64_t Hq, int64_t Hkv, int64_t D, float scale);

#endif

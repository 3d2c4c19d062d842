/*
 * Elementwise kernels: unary ops and their derivatives, broadcasting binary ops, scalar ops,
 * axpy and dropout. They run on the pool in chunks of at least GRAIN / GRAIN_HEAVY elements
 * and use AVX2 for the common ops (exp, tanh, GELU, SiLU, sigmoid through vmath.h).
 * Every element is computed independently, so results are bit-identical for any thread count.
 */
#include "vmath.h"
#include "vmath512.h"
#include <math.h>
#include <string.h>

/* Minimum elements per task. Waking a pool thread costs ~10 us, so cheap ops (a load, an add, a
 * store: ~7 G elements/s on one core) only go parallel from ~0.5 M elements, transcendental ones
 * (exp, tanh, GELU: ~2-3 G elements/s) from ~128 K. */
#define GRAIN 262144
#define GRAIN_HEAVY 65536
static int64_t unary_grain(int op) {
  return op == LM_NEG || op == LM_ABS || op == LM_RELU ? GRAIN : GRAIN_HEAVY;
}

static const float GELU_C = 0.7978845608028654f;   /* sqrt(2/pi) */
static const float GELU_A = 0.044715f;

/* ---------------------------------------------------------------- scalar definitions */

/* exact GELU: x Phi(x), Phi(x) = (1 + erf(x/sqrt2)) / 2 = erfc(-x/sqrt2) / 2 — erfc keeps full relative
 * accuracy in the left tail, where 1 + erf(...) cancels */
static inline float gelu_phi(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
static inline float erf_gelu(float x) { return x * gelu_phi(x); }

static float unary1(int op, float x) {
  switch (op) {
    case LM_NEG: return -x;
    case LM_EXP: return expf(x);
    case LM_LOG: return logf(x);
    case LM_SQRT: return sqrtf(x);
    case LM_TANH: return lm_tanhf(x);
    case LM_GELU: { float u = GELU_C * (x + GELU_A * x * x * x); return x * lm_sigmoidf(2.0f * u); }
    case LM_GELU_ERF: return erf_gelu(x);
    case LM_SILU: return x * lm_sigmoidf(x);
    case LM_RELU: return x > 0.0f ? x : 0.0f;
    case LM_SIGMOID: return lm_sigmoidf(x);
    case LM_ABS: return fabsf(x);
  }
  return NAN;
}

/* f'(x) (times nothing): derivative from x and/or y = f(x). */
static float dunary1(int op, float x, float y) {
  switch (op) {
    case LM_NEG: return -1.0f;
    case LM_EXP: return y;
    case LM_LOG: return 1.0f / x;
    case LM_SQRT: return 0.5f / y;
    case LM_TANH: return (1.0f - y) * (1.0f + y);   /* no cancellation as |y| -> 1 (1 - y is exact there) */
    case LM_GELU: {
      float u = GELU_C * (x + GELU_A * x * x * x);
      float s = lm_sigmoidf(2.0f * u);
      return s + x * 2.0f * s * (1.0f - s) * GELU_C * (1.0f + 3.0f * GELU_A * x * x);
    }
    case LM_GELU_ERF:
      return gelu_phi(x) + x * 0.3989422804014327f * expf(-0.5f * x * x);
    case LM_SILU: { float s = lm_sigmoidf(x); return s * (1.0f + x * (1.0f - s)); }
    case LM_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case LM_SIGMOID: return y * (1.0f - y);
    case LM_ABS: return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : 0.0f;
  }
  return NAN;
}

/* ---------------------------------------------------------------- unary */

typedef struct { int op; const float *x, *y, *dy; float *out; int acc; } un_ctx;

#if defined(LUMEN_AVX2)
/* AVX2 forward loops, one function per op (each loop gets its own register allocation);
 * each returns the first index it did not process. */
#define VLOOP(NAME, EXPR) \
  static int64_t NAME(const float *x, float *o, int64_t i, int64_t hi) { \
    for (; i + 8 <= hi; i += 8) { __m256 v = _mm256_loadu_ps(x + i); _mm256_storeu_ps(o + i, (EXPR)); } \
    return i; }
VLOOP(v_neg, _mm256_xor_ps(v, _mm256_set1_ps(-0.0f)))
VLOOP(v_abs, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v))
VLOOP(v_relu, _mm256_and_ps(v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ)))
VLOOP(v_sqrt, _mm256_sqrt_ps(v))
VLOOP(v_exp, lm_v_exp(v))
VLOOP(v_tanh, lm_v_tanh(v))
VLOOP(v_sigmoid, lm_v_sigmoid(v))
VLOOP(v_silu, _mm256_mul_ps(v, lm_v_sigmoid(v)))
/* x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): the tanh form without its cancellation */
VLOOP(v_gelu, _mm256_mul_ps(v, lm_v_sigmoid(_mm256_mul_ps(_mm256_set1_ps(2.0f * GELU_C),
      _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_A), v), _mm256_mul_ps(v, v), v)))))
#undef VLOOP

#if defined(LUMEN_HAVE_512_PATH)
/* AVX-512 loops for the exp-bound ops (run first when the CPU has AVX-512; 16 elements a step) */
#define ZLOOP(NAME, EXPR) \
  __attribute__((target("avx512f"))) static int64_t NAME(const float *x, float *o, int64_t i, int64_t hi) { \
    for (; i + 16 <= hi; i += 16) { __m512 v = _mm512_loadu_ps(x + i); _mm512_storeu_ps(o + i, (EXPR)); } \
    return i; }
ZLOOP(z_exp, lm_z_exp(v))
ZLOOP(z_sigmoid, lm_z_sigmoid(v))
ZLOOP(z_silu, _mm512_mul_ps(v, lm_z_sigmoid(v)))
ZLOOP(z_gelu, _mm512_mul_ps(v, lm_z_sigmoid(_mm512_mul_ps(_mm512_set1_ps(2.0f * GELU_C),
      _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_A), v), _mm512_mul_ps(v, v), v)))))
#undef ZLOOP

__attribute__((target("avx512f")))
static int64_t z_gelu_bwd(const float *x, const float *dy, float *dx, int64_t i, int64_t hi, int acc) {
  const __m512 one = _mm512_set1_ps(1.0f), c2 = _mm512_set1_ps(2.0f * GELU_C);
  for (; i + 16 <= hi; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i), v2 = _mm512_mul_ps(v, v);
    __m512 s = lm_z_sigmoid(_mm512_mul_ps(c2, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_A), v), v2, v)));
    __m512 du = _mm512_mul_ps(c2, _mm512_fmadd_ps(_mm512_set1_ps(3.0f * GELU_A), v2, one));
    __m512 g = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(v, s), _mm512_sub_ps(one, s)), du, s);
    __m512 r = _mm512_mul_ps(_mm512_loadu_ps(dy + i), g);
    if (acc) r = _mm512_add_ps(r, _mm512_loadu_ps(dx + i));
    _mm512_storeu_ps(dx + i, r);
  }
  return i;
}
#endif

static int64_t unary_avx2(int op, const float *x, float *o, int64_t lo, int64_t hi) {
#if defined(LUMEN_HAVE_512_PATH)
  if (lm_have_avx512()) {
    if (op == LM_EXP) lo = z_exp(x, o, lo, hi);
    else if (op == LM_SIGMOID) lo = z_sigmoid(x, o, lo, hi);
    else if (op == LM_SILU) lo = z_silu(x, o, lo, hi);
    else if (op == LM_GELU) lo = z_gelu(x, o, lo, hi);
  }
#endif
  switch (op) {
    case LM_NEG: return v_neg(x, o, lo, hi);
    case LM_ABS: return v_abs(x, o, lo, hi);
    case LM_RELU: return v_relu(x, o, lo, hi);
    case LM_SQRT: return v_sqrt(x, o, lo, hi);
    case LM_EXP: return v_exp(x, o, lo, hi);
    case LM_TANH: return v_tanh(x, o, lo, hi);
    case LM_SIGMOID: return v_sigmoid(x, o, lo, hi);
    case LM_SILU: return v_silu(x, o, lo, hi);
    case LM_GELU: return v_gelu(x, o, lo, hi);
    default: return lo;
  }
}

static int64_t unary_bwd_avx2(int op, const float *x, const float *y, const float *dy, float *dx,
                              int64_t lo, int64_t hi, int acc) {
  int64_t i = lo;
#if defined(LUMEN_HAVE_512_PATH)
  if (op == LM_GELU && lm_have_avx512()) i = z_gelu_bwd(x, dy, dx, i, hi, acc);
#endif
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= hi; i += 8) {
    __m256 g, d = _mm256_loadu_ps(dy + i);
    if (op == LM_GELU) {
      __m256 v = _mm256_loadu_ps(x + i), v2 = _mm256_mul_ps(v, v);
      __m256 u2 = _mm256_mul_ps(_mm256_set1_ps(2.0f * GELU_C), _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_A), v), v2, v));
      __m256 s = lm_v_sigmoid(u2);
      __m256 du = _mm256_mul_ps(_mm256_set1_ps(2.0f * GELU_C), _mm256_fmadd_ps(_mm256_set1_ps(3.0f * GELU_A), v2, one));
      g = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(v, s), _mm256_sub_ps(one, s)), du, s);
    } else if (op == LM_SILU) {
      __m256 v = _mm256_loadu_ps(x + i), s = lm_v_sigmoid(v);
      g = _mm256_mul_ps(s, _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one));
    } else if (op == LM_TANH) {
      __m256 t = _mm256_loadu_ps(y + i);
      g = _mm256_fnmadd_ps(t, t, one);
    } else if (op == LM_EXP) {
      g = _mm256_loadu_ps(y + i);
    } else if (op == LM_RELU) {
      g = _mm256_and_ps(one, _mm256_cmp_ps(_mm256_loadu_ps(x + i), _mm256_setzero_ps(), _CMP_GT_OQ));
    } else if (op == LM_SIGMOID) {
      __m256 t = _mm256_loadu_ps(y + i);
      g = _mm256_mul_ps(t, _mm256_sub_ps(one, t));
    } else {
      break;
    }
    __m256 r = _mm256_mul_ps(d, g);
    if (acc) r = _mm256_add_ps(r, _mm256_loadu_ps(dx + i));
    _mm256_storeu_ps(dx + i, r);
  }
  return i;
}
#endif

static void unary_range(void *vctx, int64_t lo, int64_t hi) {
  un_ctx *c = vctx;
  int64_t i = lo;
#if defined(LUMEN_AVX2)
  i = unary_avx2(c->op, c->x, c->out, lo, hi);
#endif
  for (; i < hi; i++) c->out[i] = unary1(c->op, c->x[i]);
}

void lm_unary(int op, const float *x, float *out, int64_t n) {
  un_ctx c = { op, x, NULL, NULL, out, 0 };
  lm_parallel_range(n, unary_grain(op), unary_range, &c);
}

static void unary_bwd_range(void *vctx, int64_t lo, int64_t hi) {
  un_ctx *c = vctx;
  int64_t i = lo;
#if defined(LUMEN_AVX2)
  i = unary_bwd_avx2(c->op, c->x, c->y, c->dy, c->out, lo, hi, c->acc);
#endif
  for (; i < hi; i++) {
    float g = c->dy[i] * dunary1(c->op, c->x[i], c->y[i]);
    c->out[i] = c->acc ? c->out[i] + g : g;
  }
}

void lm_unary_backward(int op, const float *x, const float *y, const float *dy, float *dx, int64_t n, int accumulate) {
  un_ctx c = { op, x, y, dy, dx, accumulate };
  lm_parallel_range(n, unary_grain(op), unary_bwd_range, &c);
}

/* ---------------------------------------------------------------- binary */

static inline float bin1(int op, float a, float b) {
  switch (op) {
    case LM_ADD: return a + b;
    case LM_SUB: return a - b;
    case LM_MUL: return a * b;
    case LM_DIV: return a / b;
    case LM_POW: return powf(a, b);
    case LM_MAX: return a > b ? a : (b >= a ? b : a + b);   /* NaN if either is NaN, like Math.max */
    case LM_MIN: return a < b ? a : (b <= a ? b : a + b);
  }
  return NAN;
}

/* out[i] = a[i*sa] op b[i*sb], i < n; the common stride pairs get loops the compiler vectorises. */
static void bin_row(int op, const float *a, int64_t sa, const float *b, int64_t sb, float *o, int64_t n) {
#define LOOP(EXPR) \
  if (sa == 1 && sb == 1) { for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (EXPR); } } \
  else if (sa == 1 && sb == 0) { float y = b[0]; for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); } } \
  else if (sa == 0 && sb == 1) { float x = a[0]; for (int64_t i = 0; i < n; i++) { float y = b[i]; o[i] = (EXPR); } } \
  else { for (int64_t i = 0; i < n; i++) { float x = a[i * sa], y = b[i * sb]; o[i] = (EXPR); } }
  switch (op) {
    case LM_ADD: LOOP(x + y) break;
    case LM_SUB: LOOP(x - y) break;
    case LM_MUL: LOOP(x * y) break;
    case LM_DIV: LOOP(x / y) break;
    default: LOOP(bin1(op, x, y)) break;
  }
#undef LOOP
}

#define MAXRANK 16
typedef struct {
  int op, rank;
  const float *a, *b; float *out;
  int64_t as[MAXRANK], bs[MAXRANK], shape[MAXRANK];
  int64_t inner, rows;        /* last dim, product of the others */
} bin_ctx;

static void bin_rows(void *vctx, int64_t lo, int64_t hi) {
  bin_ctx *c = vctx;
  int R = c->rank - 1;
  int64_t inner = c->inner;
  if (R == 0) {  /* 1-d: lo..hi are elements */
    bin_row(c->op, c->a + lo * c->as[0], c->as[0], c->b + lo * c->bs[0], c->bs[0], c->out + lo, hi - lo);
    return;
  }
  for (int64_t r = lo; r < hi; r++) {
    int64_t rem = r, ao = 0, bo = 0;
    for (int d = R - 1; d >= 0; d--) {
      int64_t i = rem % c->shape[d]; rem /= c->shape[d];
      ao += i * c->as[d]; bo += i * c->bs[d];
    }
    bin_row(c->op, c->a + ao, c->as[R], c->b + bo, c->bs[R], c->out + r * inner, inner);
  }
}

void lm_binary(int op, const float *a, const int64_t *as, const float *b, const int64_t *bs,
               float *out, const int64_t *shape, int rank) {
  bin_ctx c = { .op = op, .a = a, .b = b, .out = out };
  /* drop size-1 dims and merge dims that are contiguous for both inputs (the output is contiguous) */
  int r = 0;
  for (int d = 0; d < rank; d++) {
    if (shape[d] == 1) continue;
    if (shape[d] == 0) return;
    if (r > 0 && c.as[r - 1] == as[d] * shape[d] && c.bs[r - 1] == bs[d] * shape[d]) {
      c.shape[r - 1] *= shape[d]; c.as[r - 1] = as[d]; c.bs[r - 1] = bs[d];
      continue;
    }
    c.shape[r] = shape[d]; c.as[r] = as[d]; c.bs[r] = bs[d]; r++;
  }
  if (r == 0) { out[0] = bin1(op, a[0], b[0]); return; }
  c.rank = r;
  c.inner = c.shape[r - 1];
  c.rows = 1;
  for (int d = 0; d < r - 1; d++) c.rows *= c.shape[d];
  if (r == 1) lm_parallel_range(c.inner, GRAIN, bin_rows, &c);
  else {
    int64_t grain = GRAIN / c.inner + 1;
    int64_t tasks = lm_split(c.rows, grain);
    if (tasks <= 1) bin_rows(&c, 0, c.rows);
    else lm_parallel_rows(c.rows, grain, bin_rows, &c);
  }
}

/* ---------------------------------------------------------------- scalar, axpy */

typedef struct { int op; const float *x; float s; float *out; int reverse; } sc_ctx;

static void scalar_range(void *vctx, int64_t lo, int64_t hi) {
  sc_ctx *c = vctx;
  float s = c->s;
  if (c->reverse) bin_row(c->op, &s, 0, c->x + lo, 1, c->out + lo, hi - lo);
  else bin_row(c->op, c->x + lo, 1, &s, 0, c->out + lo, hi - lo);
}

void lm_scalar(int op, const float *x, float s, float *out, int64_t n, int reverse) {
  sc_ctx c = { op, x, s, out, reverse };
  lm_parallel_range(n, GRAIN, scalar_range, &c);
}

typedef struct { float alpha; const float *x; float *y; } axpy_ctx;
static void axpy_range(void *vctx, int64_t lo, int64_t hi) {
  axpy_ctx *c = vctx;
  lm_axpy_row(c->y + lo, c->alpha, c->x + lo, hi - lo);
}
void lm_axpy(float alpha, const float *x, float *y, int64_t n) {
  axpy_ctx c = { alpha, x, y };
  lm_parallel_range(n, GRAIN, axpy_range, &c);
}

/* ---------------------------------------------------------------- dropout */

static inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16; h *= 0x85ebca6bu; h ^= h >> 13; h *= 0xc2b2ae35u; h ^= h >> 16;
  return h;
}

typedef struct { const float *x; float *out, *mask; double p; uint32_t s; uint64_t offset; double scale; } drop_ctx;

static void dropout_range(void *vctx, int64_t lo, int64_t hi) {
  drop_ctx *c = vctx;
  for (int64_t i = lo; i < hi; i++) {
    /* src/tensor/rng.ts uniformAt: (fmix32(s ^ (uint32)(index * 0x9E3779B9)) >> 8) / 2^24 */
    uint32_t idx = (uint32_t)(c->offset + (uint64_t)i);
    uint32_t h = fmix32(c->s ^ (idx * 0x9E3779B9u));
    double u = (double)(h >> 8) * (1.0 / 16777216.0);
    double m = u >= c->p ? c->scale : 0.0;
    /* products in double, rounded once: the same float32 values as the reference backend */
    c->mask[i] = (float)m;
    c->out[i] = (float)((double)c->x[i] * m);
  }
}

void lm_dropout(const float *x, float *out, float *mask, int64_t n, double p, uint32_t seed, double offset) {
  drop_ctx c = { x, out, mask, p, fmix32(seed ^ 0x5bd1e995u), (uint64_t)offset, 1.0 / (1.0 - p) };
  lm_parallel_range(n, GRAIN_HEAVY, dropout_range, &c);
}

/*
 * Row-wise softmax / log-softmax (rows, cols) and cross-entropy of logits (rows, V) against
 * int32 targets, forward and backward. Parallel over rows; each row is handled by one thread
 * in a fixed order (bit-identical for any thread count). exp is the AVX2 polynomial of vmath.h.
 */
#include "vmath.h"
#include "vmath512.h"
#include <math.h>
#include <string.h>

#if defined(LUMEN_HAVE_512_PATH)
/* AVX-512 bodies of the two loops below; they return how many elements they did (a multiple of 16) */
__attribute__((target("avx512f")))
static int64_t exp_shift_sum_512(const float *x, float m, float *out, int64_t n, float *sum) {
  __m512 acc = _mm512_setzero_ps(), mv = _mm512_set1_ps(m);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 e = lm_z_exp_le0(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
    if (out) _mm512_storeu_ps(out + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  *sum = _mm512_reduce_add_ps(acc);
  return i;
}
__attribute__((target("avx512f")))
static int64_t exp_shift_scale_512(const float *x, float m, float scale, float *out, int64_t n) {
  __m512 mv = _mm512_set1_ps(m), sv = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_mul_ps(lm_z_exp_le0(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv)), sv));
  return i;
}
#endif

/* out[i] = exp(x[i] - m) (out may be NULL, or x itself); returns the sum of those values */
float lm_exp_shift_sum(const float *x, float m, float *out, int64_t n) {
  int64_t i = 0;
  float s = 0.0f;
#if defined(LUMEN_HAVE_512_PATH)
  if (lm_have_avx512()) {
    i = exp_shift_sum_512(x, m, out, n, &s);
    for (; i < n; i++) { float e = expf(x[i] - m); if (out) out[i] = e; s += e; }
    return s;
  }
#endif
#if defined(LUMEN_AVX2)
  __m256 acc = _mm256_setzero_ps(), mv = _mm256_set1_ps(m);
  for (; i + 8 <= n; i += 8) {
    __m256 e = lm_v_exp_le0(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    if (out) _mm256_storeu_ps(out + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  s = lm_hsum(acc);
#endif
  for (; i < n; i++) { float e = expf(x[i] - m); if (out) out[i] = e; s += e; }
  return s;
}

/* out[i] = exp(x[i] - m) * scale */
static void exp_shift_scale(const float *x, float m, float scale, float *out, int64_t n) {
  int64_t i = 0;
#if defined(LUMEN_HAVE_512_PATH)
  if (lm_have_avx512()) i = exp_shift_scale_512(x, m, scale, out, n);
#endif
#if defined(LUMEN_AVX2)
  __m256 mv = _mm256_set1_ps(m), sv = _mm256_set1_ps(scale);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(lm_v_exp_le0(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv)), sv));
#endif
  for (; i < n; i++) out[i] = expf(x[i] - m) * scale;
}

typedef struct {
  const float *x, *y, *dy, *lse_in, *dloss; float *out, *lse, *losses;
  const int32_t *t; int64_t rows, cols; int logsm; int32_t ignore; float smooth;
} sm_ctx;

static void sm_fwd(void *vctx, int64_t lo, int64_t hi) {
  sm_ctx *c = vctx;
  const int64_t C = c->cols;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = c->x + r * C;
    float *o = c->out + r * C;
    float m = lm_max(x, C);
    if (c->logsm) {
      float ls = m + logf(lm_exp_shift_sum(x, m, NULL, C));
      for (int64_t i = 0; i < C; i++) o[i] = x[i] - ls;
    } else {
      float s = lm_exp_shift_sum(x, m, o, C);
      float inv = 1.0f / s;
      for (int64_t i = 0; i < C; i++) o[i] *= inv;
    }
  }
}

void lm_softmax(const float *x, float *out, int64_t rows, int64_t cols, int logsm) {
  if (cols <= 0) return;
  sm_ctx c = { .x = x, .out = out, .rows = rows, .cols = cols, .logsm = logsm };
  lm_parallel_rows(rows, 32768 / cols + 1, sm_fwd, &c);
}

static void sm_bwd(void *vctx, int64_t lo, int64_t hi) {
  sm_ctx *c = vctx;
  const int64_t C = c->cols;
  for (int64_t r = lo; r < hi; r++) {
    const float *y = c->y + r * C, *dy = c->dy + r * C;
    float *dx = c->out + r * C;
    if (c->logsm) {
      float s = lm_sum(dy, C);
      exp_shift_scale(y, 0.0f, -s, dx, C);             /* dx = -exp(y) * sum(dy) */
      for (int64_t i = 0; i < C; i++) dx[i] += dy[i];
    } else {
      float s = lm_dot(dy, y, C);
      for (int64_t i = 0; i < C; i++) dx[i] = y[i] * (dy[i] - s);
    }
  }
}

void lm_softmax_backward(const float *y, const float *dy, float *dx, int64_t rows, int64_t cols, int logsm) {
  if (cols <= 0) return;
  sm_ctx c = { .y = y, .dy = dy, .out = dx, .rows = rows, .cols = cols, .logsm = logsm };
  lm_parallel_rows(rows, 32768 / cols + 1, sm_bwd, &c);
}

static void xent_fwd(void *vctx, int64_t lo, int64_t hi) {
  sm_ctx *c = vctx;
  const int64_t V = c->cols;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = c->x + r * V;
    float m = lm_max(x, V);
    float ls = logf(lm_exp_shift_sum(x, m, NULL, V));      /* lse = m + ls, ls >= 0 */
    c->lse[r] = m + ls;
    int32_t t = c->t[r];
    if (t == c->ignore) { c->losses[r] = 0.0f; continue; }
    /* logp[t] = (x[t] - m) - ls: x[t] - m is exact when x[t] is near the max, so a small loss
     * keeps its relative accuracy (x[t] - lse would cancel) */
    float loss = -(1.0f - c->smooth) * ((x[t] - m) - ls);
    if (c->smooth != 0.0f) loss -= c->smooth * ((lm_sum(x, V) / (float)V - m) - ls);
    c->losses[r] = loss;
  }
}

void lm_cross_entropy(const float *logits, const int32_t *targets, float *losses, float *lse,
                      int64_t rows, int64_t V, int32_t ignoreIndex, float smoothing) {
  if (V <= 0) return;
  sm_ctx c = { .x = logits, .t = targets, .losses = losses, .lse = lse, .rows = rows, .cols = V,
               .ignore = ignoreIndex, .smooth = smoothing };
  lm_parallel_rows(rows, 32768 / V + 1, xent_fwd, &c);
}

static void xent_bwd(void *vctx, int64_t lo, int64_t hi) {
  sm_ctx *c = vctx;
  const int64_t V = c->cols;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = c->x + r * V;
    float *dx = c->out + r * V;
    int32_t t = c->t[r];
    if (t == c->ignore) { memset(dx, 0, sizeof(float) * (size_t)V); continue; }
    float g = c->dloss[r];
    exp_shift_scale(x, c->lse_in[r], g, dx, V);           /* g * softmax */
    if (c->smooth != 0.0f) {
      float u = g * c->smooth / (float)V;
      for (int64_t i = 0; i < V; i++) dx[i] -= u;
    }
    /* the target entry as g (expm1(x_t - lse) + s (1 - 1/V)): p_t - 1 computed without cancelling
     * when the prediction is confident (p_t near 1) */
    dx[t] = g * (expm1f(x[t] - c->lse_in[r]) + c->smooth * (1.0f - 1.0f / (float)V));
  }
}

void lm_cross_entropy_backward(const float *logits, const int32_t *targets, const float *lse, const float *dloss,
                               float *dlogits, int64_t rows, int64_t V, int32_t ignoreIndex, float smoothing) {
  if (V <= 0) return;
  sm_ctx c = { .x = logits, .t = targets, .lse_in = lse, .dloss = dloss, .out = dlogits, .rows = rows, .cols = V,
               .ignore = ignoreIndex, .smooth = smoothing };
  lm_parallel_rows(rows, 32768 / V + 1, xent_bwd, &c);
}

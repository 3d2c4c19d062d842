/*
 * Row-wise softmax / log-softmax (rows, cols) and cross-entropy of logits (rows, V) against
 * int32 targets, forward and backward. Parallel over rows; each row is handled by one thread
 * in a fixed order (bit-identical for any thread count). exp is the polynomial of vmath.h (AVX2)
 * or vmath512.h (AVX-512); the cross-entropy forward, which only needs the sum of the exps, uses
 * the cheaper table-based lm_z_exp_le0_sum on AVX-512.
 *
 * Memory: on rows of a large vocabulary (2048 x 4096 logits, 32 MB) the forward kernels are
 * bound by reading the input, and the row's exp pass (from L1) left the memory idle; the AVX-512
 * forward loops therefore prefetch the data of the rows a little ahead (8192 floats, at least a
 * row) while they compute, which took the cross-entropy forward from 18 to 38 GB/s and the
 * softmax from 24 to 32 GB/s on one Zen 5 core.
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

#if defined(LUMEN_HAVE_512_PATH)
/* exp_shift_sum_512 for the softmax forward, which also prefetches the first pf_n floats of the
 * input at pfx and of the output at pfo (rows a little ahead, see max_sum_512): same values */
__attribute__((target("avx512f")))
static int64_t exp_shift_sum_pf_512(const float *x, float m, float *out, int64_t n, const float *pfx, float *pfo,
                                    int64_t pf_n, float *sum) {
  __m512 acc = _mm512_setzero_ps(), mv = _mm512_set1_ps(m);
  int64_t i = 0;
  const int64_t npf = pf_n < n ? pf_n : n;
  for (; i + 16 <= npf; i += 16) {
    _mm_prefetch((const char *)(pfx + i), _MM_HINT_T0);
    _mm_prefetch((const char *)(pfo + i), _MM_HINT_T0);
    __m512 e = lm_z_exp_le0(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
    _mm512_storeu_ps(out + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  for (; i + 16 <= n; i += 16) {
    __m512 e = lm_z_exp_le0(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
    _mm512_storeu_ps(out + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  *sum = _mm512_reduce_add_ps(acc);
  return i;
}
#endif

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
      float s;
#if defined(LUMEN_HAVE_512_PATH)
      if (lm_have_avx512()) {
        const int64_t D = C > 8192 ? C : 8192;     /* prefetch distance, as in xent_fwd */
        const int64_t pf_n = (hi - r) * C - D;     /* what lies ahead in this task's rows */
        int64_t i = exp_shift_sum_pf_512(x, m, o, C, pf_n > 0 ? x + D : x, pf_n > 0 ? o + D : o, pf_n, &s);
        for (; i < C; i++) { float e = expf(x[i] - m); o[i] = e; s += e; }
      } else
#endif
      s = lm_exp_shift_sum(x, m, o, C);
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

#if defined(LUMEN_HAVE_512_PATH)
/* Max of a row and sum of exp(x - max) (n >= 16) for the cross-entropy forward; returns how many
 * elements it did (a multiple of 16). The row is read twice (max, then exp), the second time from
 * L1. The kernel is bound by reading the logits once the exp is cheap, so the exp pass also
 * prefetches the first pf_n floats at pf (the data the caller will need a little later): the
 * memory traffic then overlaps the arithmetic instead of alternating with it. */
__attribute__((target("avx512f")))
static int64_t max_sum_512(const float *x, int64_t n, const float *pf, int64_t pf_n, float *mout, float *sout) {
  __m512 m0 = _mm512_loadu_ps(x), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 16;
  for (; i + 64 <= n; i += 64) {
    m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
    m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
    m2 = _mm512_max_ps(m2, _mm512_loadu_ps(x + i + 32));
    m3 = _mm512_max_ps(m3, _mm512_loadu_ps(x + i + 48));
  }
  for (; i + 16 <= n; i += 16) m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
  float m = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
  for (int64_t j = i; j < n; j++) m = x[j] > m ? x[j] : m;
  const __m512 mv = _mm512_set1_ps(m);
  const __m512i tab = lm_z_exp_tab_load();
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  const int64_t npf = pf_n < n ? pf_n : n;
  for (i = 0; i + 32 <= npf; i += 32) {
    _mm_prefetch((const char *)(pf + i), _MM_HINT_T0);
    _mm_prefetch((const char *)(pf + i + 16), _MM_HINT_T0);
    a0 = _mm512_add_ps(a0, lm_z_exp_le0_sum(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv), tab));
    a1 = _mm512_add_ps(a1, lm_z_exp_le0_sum(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), mv), tab));
  }
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_add_ps(a0, lm_z_exp_le0_sum(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv), tab));
    a1 = _mm512_add_ps(a1, lm_z_exp_le0_sum(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), mv), tab));
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_add_ps(a0, lm_z_exp_le0_sum(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv), tab));
  *mout = m;
  *sout = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  return i;
}
#endif

static void xent_fwd(void *vctx, int64_t lo, int64_t hi) {
  sm_ctx *c = vctx;
  const int64_t V = c->cols;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = c->x + r * V;
    float m, s;
#if defined(LUMEN_HAVE_512_PATH)
    if (V >= 16 && lm_have_avx512()) {
      /* prefetch distance (floats) along this task's rows: 2 rows of a 4096 vocabulary, one row
       * of a larger one (rows beyond L1 still land in L2) */
      const int64_t D = V > 8192 ? V : 8192;
      const int64_t pf_n = (hi - r) * V - D;     /* what lies ahead in this task's rows */
      int64_t i = max_sum_512(x, V, pf_n > 0 ? x + D : x, pf_n, &m, &s);
      for (; i < V; i++) s += expf(x[i] - m);
    } else
#endif
    {
      m = lm_max(x, V);
      s = lm_exp_shift_sum(x, m, NULL, V);
    }
    float ls = logf(s);                                    /* lse = m + ls, ls >= 0 */
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

/*
 * Reductions over the middle axis of x viewed as (outer, mid, inner), and the sum of squares.
 * Parallel over output elements (outer x inner blocks); every output element is reduced by one
 * thread in a fixed order, so results do not depend on the thread count. sumSquares
 * accumulates in double over fixed 64K-element chunks summed in order: deterministic too.
 */
#include "vmath.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const float *x; float *out; int32_t *arg; int64_t outer, mid, inner, iblk, nib; } red_ctx;

/* inner == 1: out[o] = sum of a contiguous row (8 lanes x 4 accumulators, then a fixed tree) */
static float row_sum(const float *x, int64_t n) {
  int64_t i = 0;
  float s = 0.0f;
#if defined(LUMEN_AVX2)
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i)); a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16)); a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
  s = lm_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
#endif
  for (; i < n; i++) s += x[i];
  return s;
}

static void sum_task(void *vctx, int64_t t, int tid) {
  red_ctx *c = vctx;
  int64_t o = t / c->nib, ib = t % c->nib;
  int64_t i0 = ib * c->iblk, i1 = i0 + c->iblk < c->inner ? i0 + c->iblk : c->inner;
  const float *x = c->x + o * c->mid * c->inner;
  float *out = c->out + o * c->inner;
  if (c->inner == 1) { out[0] = row_sum(x, c->mid); return; }
  memcpy(out + i0, x + i0, sizeof(float) * (size_t)(i1 - i0));
  for (int64_t m = 1; m < c->mid; m++) {
    const float *xr = x + m * c->inner;
    for (int64_t i = i0; i < i1; i++) out[i] += xr[i];
  }
}

static void plan(red_ctx *c) {
  /* blocks of inner columns: large enough to stream, small enough to give every thread work */
  c->iblk = c->inner;
  int64_t T = lm_get_threads();
  if (c->outer < 2 * T && c->inner >= 512) {
    int64_t want = (2 * T + c->outer - 1) / c->outer;
    c->iblk = ((c->inner + want - 1) / want + 63) & ~(int64_t)63;
  }
  c->nib = (c->inner + c->iblk - 1) / c->iblk;
}

void lm_reduce_sum(const float *x, float *out, int64_t outer, int64_t mid, int64_t inner) {
  if (outer == 0 || inner == 0) return;
  if (mid == 0) { memset(out, 0, sizeof(float) * (size_t)(outer * inner)); return; }
  red_ctx c = { x, out, NULL, outer, mid, inner, 0, 0 };
  plan(&c);
  int64_t tasks = c.outer * c.nib;
  if ((double)outer * (double)mid * (double)inner < 262144.0) for (int64_t t = 0; t < tasks; t++) sum_task(&c, t, 0);
  else lm_parallel(tasks, sum_task, &c);
}

static void max_task(void *vctx, int64_t t, int tid) {
  red_ctx *c = vctx;
  int64_t o = t / c->nib, ib = t % c->nib;
  int64_t i0 = ib * c->iblk, i1 = i0 + c->iblk < c->inner ? i0 + c->iblk : c->inner;
  const float *x = c->x + o * c->mid * c->inner;
  float *out = c->out + o * c->inner;
  int32_t *arg = c->arg + o * c->inner;
  for (int64_t i = i0; i < i1; i++) { out[i] = x[i]; arg[i] = 0; }
  for (int64_t m = 1; m < c->mid; m++) {
    const float *xr = x + m * c->inner;
    for (int64_t i = i0; i < i1; i++) {
      /* first index of the maximum (as the reference backend: strict >, so a NaN is never taken after
       * the first element) */
      if (xr[i] > out[i]) { out[i] = xr[i]; arg[i] = (int32_t)m; }
    }
  }
}

void lm_reduce_max(const float *x, float *out, int32_t *argmax, int64_t outer, int64_t mid, int64_t inner) {
  if (outer == 0 || inner == 0 || mid == 0) return;
  red_ctx c = { x, out, argmax, outer, mid, inner, 0, 0 };
  plan(&c);
  int64_t tasks = c.outer * c.nib;
  if ((double)outer * (double)mid * (double)inner < 262144.0) for (int64_t t = 0; t < tasks; t++) max_task(&c, t, 0);
  else lm_parallel(tasks, max_task, &c);
}

#define SS_CHUNK 65536
typedef struct { const float *x; int64_t n; double *part; } ss_ctx;

static void ss_task(void *vctx, int64_t t, int tid) {
  ss_ctx *c = vctx;
  int64_t lo = t * SS_CHUNK, hi = lo + SS_CHUNK < c->n ? lo + SS_CHUNK : c->n;
  const float *x = c->x;
  int64_t i = lo;
  double s = 0.0;
#if defined(LUMEN_AVX2)
  __m256d a0 = _mm256_setzero_pd(), a1 = a0;
  for (; i + 8 <= hi; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    __m256d lo4 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi4 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a0 = _mm256_fmadd_pd(lo4, lo4, a0); a1 = _mm256_fmadd_pd(hi4, hi4, a1);
  }
  __m256d a = _mm256_add_pd(a0, a1);
  double tmp[4]; _mm256_storeu_pd(tmp, a);
  s = (tmp[0] + tmp[1]) + (tmp[2] + tmp[3]);
#endif
  for (; i < hi; i++) s += (double)x[i] * (double)x[i];
  c->part[t] = s;
}

double lm_sum_squares(const float *x, int64_t n) {
  if (n <= 0) return 0.0;
  int64_t chunks = (n + SS_CHUNK - 1) / SS_CHUNK;
  double stackbuf[64];
  double *part = chunks <= 64 ? stackbuf : malloc(sizeof(double) * (size_t)chunks);
  if (!part) return NAN;
  ss_ctx c = { x, n, part };
  lm_parallel(chunks, ss_task, &c);
  double s = 0.0;
  for (int64_t t = 0; t < chunks; t++) s += part[t];
  if (part != stackbuf) free(part);
  return s;
}

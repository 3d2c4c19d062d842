/*
 * AdamW, in place over n parameters (see src/tensor/backend.ts for the formula). Vectorised with
 * AVX2 (the compiler vectorises the plain loop on other ISAs); elementwise, so bit-identical
 * for any thread count.
 */
#include "lumen.h"
#include <math.h>

typedef struct { float *p; const float *g; float *m, *v; float lr, b1, b2, eps, wd, bc1, bc2, gs; } adam_ctx;

static void adam_range(void *vctx, int64_t lo, int64_t hi) {
  adam_ctx *c = vctx;
  float *p = c->p, *m = c->m, *v = c->v;
  const float *g = c->g;
  const float b1 = c->b1, b2 = c->b2, ob1 = 1.0f - b1, ob2 = 1.0f - b2, ibc1 = 1.0f / c->bc1, ibc2 = 1.0f / c->bc2;
  const float lr = c->lr, eps = c->eps, wd = c->wd, gs = c->gs;
  int64_t i = lo;
#if defined(LUMEN_AVX2)
  const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), vob1 = _mm256_set1_ps(ob1), vob2 = _mm256_set1_ps(ob2);
  const __m256 vibc1 = _mm256_set1_ps(ibc1), vibc2 = _mm256_set1_ps(ibc2), vlr = _mm256_set1_ps(lr);
  const __m256 veps = _mm256_set1_ps(eps), vwd = _mm256_set1_ps(wd), vgs = _mm256_set1_ps(gs);
  for (; i + 8 <= hi; i += 8) {
    __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), vgs);
    __m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vob1, gi));
    __m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(vob2, _mm256_mul_ps(gi, gi)));
    __m256 pi = _mm256_loadu_ps(p + i);
    __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vi, vibc2)), veps);
    __m256 upd = _mm256_add_ps(_mm256_div_ps(_mm256_mul_ps(mi, vibc1), den), _mm256_mul_ps(vwd, pi));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    _mm256_storeu_ps(p + i, _mm256_sub_ps(pi, _mm256_mul_ps(vlr, upd)));
  }
#endif
  for (; i < hi; i++) {
    float gi = g[i] * gs;
    float mi = b1 * m[i] + ob1 * gi;
    float vi = b2 * v[i] + ob2 * (gi * gi);
    m[i] = mi; v[i] = vi;
    p[i] = p[i] - lr * ((mi * ibc1) / (sqrtf(vi * ibc2) + eps) + wd * p[i]);
  }
}

void lm_adamw(float *p, const float *g, float *m, float *v, int64_t n, float lr, float b1, float b2, float eps,
              float wd, float bc1, float bc2, float gradScale) {
  adam_ctx c = { p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gradScale };
  lm_parallel_range(n, 65536, adam_range, &c);
}

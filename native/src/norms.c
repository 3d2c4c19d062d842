/*
 * LayerNorm and RMSNorm over the last axis of (rows, cols), forward and backward.
 *
 * Forward: one task per block of rows; mean and variance in two passes over the row (it is in
 * L1), population variance, rstd = 1/sqrt(var + eps). Backward: dx per row; the weight and
 * bias gradients are reduced over rows in fixed 32-row chunks (partials summed in chunk order),
 * so every result is bit-identical for any thread count.
 */
#include "vmath.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWCHUNK 32

typedef struct {
  const float *x, *w, *b, *mean, *rstd, *dy;
  float *out, *mo, *ro, *dx, *dw, *db;
  float *part;          /* (chunks, 2, cols) partial dw/db */
  int64_t rows, cols; float eps; int rms;
} norm_ctx;

static void ln_fwd_range(void *vctx, int64_t lo, int64_t hi) {
  norm_ctx *c = vctx;
  const int64_t C = c->cols;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = c->x + r * C;
    float *o = c->out + r * C;
    float mean = c->rms ? 0.0f : lm_sum(x, C) / (float)C;
    float var = lm_sumsq_centered(x, mean, C) / (float)C;
    float rs = 1.0f / sqrtf(var + c->eps);
    if (!c->rms) c->mo[r] = mean;
    c->ro[r] = rs;
    const float *w = c->w, *b = c->b;
    if (w && b) for (int64_t i = 0; i < C; i++) o[i] = (x[i] - mean) * rs * w[i] + b[i];
    else if (w) for (int64_t i = 0; i < C; i++) o[i] = (x[i] - mean) * rs * w[i];
    else if (b) for (int64_t i = 0; i < C; i++) o[i] = (x[i] - mean) * rs + b[i];
    else for (int64_t i = 0; i < C; i++) o[i] = (x[i] - mean) * rs;
  }
}

static void norm_fwd(norm_ctx *c) {
  int64_t grain = 65536 / (c->cols + 1) + 1;
  lm_parallel_rows(c->rows, grain, ln_fwd_range, c);
}

void lm_layernorm(const float *x, const float *w, const float *b, float *out, float *mean, float *rstd,
                  int64_t rows, int64_t cols, float eps) {
  norm_ctx c = { .x = x, .w = w, .b = b, .out = out, .mo = mean, .ro = rstd, .rows = rows, .cols = cols, .eps = eps };
  norm_fwd(&c);
}

void lm_rmsnorm(const float *x, const float *w, float *out, float *rstd, int64_t rows, int64_t cols, float eps) {
  norm_ctx c = { .x = x, .w = w, .out = out, .ro = rstd, .rows = rows, .cols = cols, .eps = eps, .rms = 1 };
  norm_fwd(&c);
}

/* Backward pass 1 over one row (see norm_bwd_task); w, pw, pb may be NULL. Sums in a fixed order. */
static void ln_bwd_pass1(const float *x, const float *dy, const float *w, float mean, float rs, int64_t C,
                         float *g, float *xh, float *sg_out, float *sgx_out, float *pw, float *pb) {
  int64_t i = 0;
  float sg = 0.0f, sgx = 0.0f;
#if defined(LUMEN_AVX2)
  __m256 ag = _mm256_setzero_ps(), agx = _mm256_setzero_ps(), mv = _mm256_set1_ps(mean), rv = _mm256_set1_ps(rs);
  for (; i + 8 <= C; i += 8) {
    __m256 d = _mm256_loadu_ps(dy + i);
    __m256 h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), rv);
    __m256 gv = w ? _mm256_mul_ps(d, _mm256_loadu_ps(w + i)) : d;
    _mm256_storeu_ps(xh + i, h);
    _mm256_storeu_ps(g + i, gv);
    ag = _mm256_add_ps(ag, gv);
    agx = _mm256_fmadd_ps(gv, h, agx);
    if (pw) _mm256_storeu_ps(pw + i, _mm256_fmadd_ps(d, h, _mm256_loadu_ps(pw + i)));
    if (pb) _mm256_storeu_ps(pb + i, _mm256_add_ps(_mm256_loadu_ps(pb + i), d));
  }
  sg = lm_hsum(ag); sgx = lm_hsum(agx);
#endif
  for (; i < C; i++) {
    float h = (x[i] - mean) * rs, gv = w ? dy[i] * w[i] : dy[i];
    xh[i] = h; g[i] = gv; sg += gv; sgx += gv * h;
    if (pw) pw[i] += dy[i] * h;
    if (pb) pb[i] += dy[i];
  }
  *sg_out = sg; *sgx_out = sgx;
}

/* Backward pass 2: dx = rs (g - sg - xh sgx). */
static void ln_bwd_pass2(const float *g, const float *xh, float rs, float sg, float sgx, int64_t C, float *dx) {
  int64_t i = 0;
#if defined(LUMEN_AVX2)
  __m256 rv = _mm256_set1_ps(rs), sv = _mm256_set1_ps(sg), xv = _mm256_set1_ps(sgx);
  for (; i + 8 <= C; i += 8) {
    __m256 t = _mm256_fnmadd_ps(_mm256_loadu_ps(xh + i), xv, _mm256_sub_ps(_mm256_loadu_ps(g + i), sv));
    _mm256_storeu_ps(dx + i, _mm256_mul_ps(rv, t));
  }
#endif
  for (; i < C; i++) dx[i] = rs * (g[i] - sg - xh[i] * sgx);
}

/* one chunk of ROWCHUNK rows: dx, and partial dw/db into part[chunk] */
static void norm_bwd_task(void *vctx, int64_t t, int tid) {
  norm_ctx *c = vctx;
  const int64_t C = c->cols;
  int64_t lo = t * ROWCHUNK, hi = lo + ROWCHUNK < c->rows ? lo + ROWCHUNK : c->rows;
  /* partials of this chunk; when no partial buffer could be allocated, the caller runs the
   * chunks serially and they accumulate straight into dw/db */
  float *pw = c->part ? c->part + t * 2 * C : c->dw, *pb = c->part ? pw + C : c->db;
  if (c->part) memset(pw, 0, sizeof(float) * 2 * (size_t)C);
  float *g = lm_scratch(2, sizeof(float) * (size_t)C * 2);
  float *xh = g + C;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = c->x + r * C, *dy = c->dy + r * C;
    float *dx = c->dx + r * C;
    float mean = c->rms ? 0.0f : c->mean[r], rs = c->rstd[r];
    /* one pass over x and dy: xh = (x - mean) rstd and g = dy w (kept in L1 scratch), the row sums
     * of g and g xh, and the dw/db partials; then dx = rstd (g - mean(g) - xh mean(g xh)) */
    float sg, sgx;
    ln_bwd_pass1(x, dy, c->w, mean, rs, C, g, xh, &sg, &sgx, pw, c->rms ? NULL : pb);
    sg = c->rms ? 0.0f : sg / (float)C;
    sgx /= (float)C;
    ln_bwd_pass2(g, xh, rs, sg, sgx, C, dx);
  }
}

static void reduce_parts(void *vctx, int64_t lo, int64_t hi) {
  norm_ctx *c = vctx;
  const int64_t C = c->cols, chunks = (c->rows + ROWCHUNK - 1) / ROWCHUNK;
  for (int64_t t = 0; t < chunks; t++) {
    const float *pw = c->part + t * 2 * C, *pb = pw + C;
    if (c->dw) for (int64_t i = lo; i < hi; i++) c->dw[i] += pw[i];
    if (c->db) for (int64_t i = lo; i < hi; i++) c->db[i] += pb[i];
  }
}

static int norm_bwd(norm_ctx *c) {
  int64_t chunks = (c->rows + ROWCHUNK - 1) / ROWCHUNK;
  if (chunks == 0) return 0;
  if (c->dw || c->db) {
    c->part = malloc(sizeof(float) * 2 * (size_t)c->cols * (size_t)chunks);
    if (!c->part) { for (int64_t t = 0; t < chunks; t++) norm_bwd_task(c, t, 0); return 0; }
  }
  if (c->rows * c->cols < 65536) for (int64_t t = 0; t < chunks; t++) norm_bwd_task(c, t, 0);
  else lm_parallel(chunks, norm_bwd_task, c);
  if (c->part) {
    lm_parallel_range(c->cols, 2048 / (chunks + 1) + 64, reduce_parts, c);
    free(c->part);
  }
  return 0;
}

void lm_layernorm_backward(const float *x, const float *w, const float *mean, const float *rstd, const float *dy,
                           float *dx, float *dw, float *db, int64_t rows, int64_t cols) {
  norm_ctx c = { .x = x, .w = w, .mean = mean, .rstd = rstd, .dy = dy, .dx = dx, .dw = dw, .db = db,
                 .rows = rows, .cols = cols };
  norm_bwd(&c);
}

void lm_rmsnorm_backward(const float *x, const float *w, const float *rstd, const float *dy,
                         float *dx, float *dw, int64_t rows, int64_t cols) {
  norm_ctx c = { .x = x, .w = w, .rstd = rstd, .dy = dy, .dx = dx, .dw = dw, .rows = rows, .cols = cols, .rms = 1 };
  norm_bwd(&c);
}

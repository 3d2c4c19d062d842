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
    /* g = dy * w, xh = (x - mean) * rstd */
    for (int64_t i = 0; i < C; i++) xh[i] = (x[i] - mean) * rs;
    if (c->w) for (int64_t i = 0; i < C; i++) g[i] = dy[i] * c->w[i];
    else memcpy(g, dy, sizeof(float) * (size_t)C);
    float sg = c->rms ? 0.0f : lm_sum(g, C) / (float)C;
    float sgx = lm_dot(g, xh, C) / (float)C;
    for (int64_t i = 0; i < C; i++) dx[i] = rs * (g[i] - sg - xh[i] * sgx);
    if (pw) for (int64_t i = 0; i < C; i++) pw[i] += dy[i] * xh[i];
    if (pb && !c->rms) for (int64_t i = 0; i < C; i++) pb[i] += dy[i];
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

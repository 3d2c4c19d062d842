/*
 * Embedding lookup and its backward, and rotary position embedding.
 *
 * embeddingBackward parallelises over blocks of columns: each thread walks all ids in order
 * for its columns, so there are no races and the sums run in id order (deterministic).
 * RoPE computes each position's angles in double (positions reach thousands of radians, where
 * float32 angles would lose ~1e-4), then rotates the (d, d + D/2) pairs in float.
 */
#include "lumen.h"
#include <math.h>
#include <string.h>

typedef struct { const float *table; const int32_t *ids; float *out; int64_t n, dim; } emb_ctx;

static void emb_rows(void *vctx, int64_t lo, int64_t hi) {
  emb_ctx *c = vctx;
  for (int64_t i = lo; i < hi; i++)
    memcpy(c->out + i * c->dim, c->table + (int64_t)c->ids[i] * c->dim, sizeof(float) * (size_t)c->dim);
}

void lm_embedding(const float *table, const int32_t *ids, float *out, int64_t n, int64_t dim) {
  emb_ctx c = { table, ids, out, n, dim };
  lm_parallel_rows(n, 262144 / (dim + 1) + 1, emb_rows, &c);
}

static void emb_bwd_cols(void *vctx, int64_t lo, int64_t hi) {
  emb_ctx *c = vctx;
  for (int64_t i = 0; i < c->n; i++) {
    float *d = c->out + (int64_t)c->ids[i] * c->dim;
    const float *g = c->table + i * c->dim;
    for (int64_t j = lo; j < hi; j++) d[j] += g[j];
  }
}

void lm_embedding_backward(const float *dout, const int32_t *ids, float *dtable, int64_t n, int64_t dim) {
  emb_ctx c = { dout, ids, dtable, n, dim };
  if (n * dim < 262144 || dim < 128) emb_bwd_cols(&c, 0, dim);
  else lm_parallel_range(dim, 64, emb_bwd_cols, &c);
}

typedef struct { const float *x; float *out; const int32_t *pos; int64_t T, H, D; double base; int inverse; } rope_ctx;

static void rope_rows(void *vctx, int64_t lo, int64_t hi) {
  rope_ctx *c = vctx;
  const int64_t H = c->H, D = c->D, half = D / 2;
  float *cs = lm_scratch(3, sizeof(float) * (size_t)D);
  float *sn = cs + half;
  for (int64_t r = lo; r < hi; r++) {          /* r indexes (n, t) */
    double p = (double)c->pos[r];
    for (int64_t d = 0; d < half; d++) {
      double ang = p * pow(c->base, -2.0 * (double)d / (double)D);
      cs[d] = (float)cos(ang);
      sn[d] = (float)(c->inverse ? -sin(ang) : sin(ang));
    }
    for (int64_t h = 0; h < H; h++) {
      const float *x = c->x + (r * H + h) * D;
      float *o = c->out + (r * H + h) * D;
      for (int64_t d = 0; d < half; d++) {
        float a = x[d], b = x[d + half];
        o[d] = a * cs[d] - b * sn[d];
        o[d + half] = b * cs[d] + a * sn[d];
      }
    }
  }
}

void lm_rope(const float *x, float *out, const int32_t *pos, int64_t N, int64_t T, int64_t H, int64_t D,
             double base, int inverse) {
  rope_ctx c = { x, out, pos, T, H, D, base, inverse };
  lm_parallel_rows(N * T, 65536 / (H * D + 1) + 1, rope_rows, &c);
}

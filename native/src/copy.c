/*
 * Data movement: the n-d strided copy (permute, slice, concat and their backward passes), dtype
 * casts, and a parallel memcpy used as the bandwidth yardstick of the benchmark.
 *
 * stridedCopy first drops size-1 dims and merges dims that are contiguous in both source and
 * destination, so the usual patterns become a few long rows: a slice or concat is one memcpy
 * per row, a (B,T,H,D) <-> (B,H,T,D) permute copies rows of D. When the innermost dim is
 * strided on one side (a 2-d transpose), 32x32 tiles keep both sides in cache.
 */
#include "lumen.h"
#include <math.h>
#include <string.h>

#define MAXRANK 16

typedef struct {
  const char *src; char *dst;           /* byte pointers; elements are 4 bytes */
  int64_t ss[MAXRANK], ds[MAXRANK], shape[MAXRANK];
  int rank, acc, isInt;
  int64_t rows;                         /* product of shape[0..rank-2] */
} sc_ctx;

static void row_copy(const sc_ctx *c, const char *s, int64_t sst, char *d, int64_t dst, int64_t n) {
  if (!c->acc) {
    if (sst == 1 && dst == 1) { memmove(d, s, 4 * (size_t)n); return; }
    const uint32_t *sp = (const uint32_t *)s; uint32_t *dp = (uint32_t *)d;
    for (int64_t i = 0; i < n; i++) dp[i * dst] = sp[i * sst];
  } else if (c->isInt) {
    const int32_t *sp = (const int32_t *)s; int32_t *dp = (int32_t *)d;
    for (int64_t i = 0; i < n; i++) dp[i * dst] = (int32_t)((uint32_t)dp[i * dst] + (uint32_t)sp[i * sst]);
  } else {
    const float *sp = (const float *)s; float *dp = (float *)d;
    if (sst == 1 && dst == 1) for (int64_t i = 0; i < n; i++) dp[i] += sp[i];
    else for (int64_t i = 0; i < n; i++) dp[i * dst] += sp[i * sst];
  }
}

static void offsets(const sc_ctx *c, int64_t r, int64_t *so, int64_t *dso) {
  int64_t rem = r, a = 0, b = 0;
  for (int d = c->rank - 2; d >= 0; d--) {
    int64_t i = rem % c->shape[d]; rem /= c->shape[d];
    a += i * c->ss[d]; b += i * c->ds[d];
  }
  *so = a; *dso = b;
}

static void copy_rows(void *vctx, int64_t lo, int64_t hi) {
  sc_ctx *c = vctx;
  int L = c->rank - 1;
  for (int64_t r = lo; r < hi; r++) {
    int64_t so, dso;
    offsets(c, r, &so, &dso);
    row_copy(c, c->src + 4 * so, c->ss[L], c->dst + 4 * dso, c->ds[L], c->shape[L]);
  }
}

static void copy_1d(void *vctx, int64_t lo, int64_t hi) {
  sc_ctx *c = vctx;
  row_copy(c, c->src + 4 * lo * c->ss[0], c->ss[0], c->dst + 4 * lo * c->ds[0], c->ds[0], hi - lo);
}

/* Last two dims form a transpose (one side strided innermost): tiles over (rows of dim L-1). */
#define TB 32
static void copy_tiles(void *vctx, int64_t lo, int64_t hi) {
  sc_ctx *c = vctx;
  int L = c->rank - 1, P = c->rank - 2;
  int64_t nP = c->shape[P], nL = c->shape[L];
  int64_t pblocks = (nP + TB - 1) / TB;
  /* task unit: (outer row over dims < P) x block of dim P */
  for (int64_t u = lo; u < hi; u++) {
    int64_t outer = u / pblocks, pb = u % pblocks;
    int64_t rem = outer, so = 0, dso = 0;
    for (int d = P - 1; d >= 0; d--) {
      int64_t i = rem % c->shape[d]; rem /= c->shape[d];
      so += i * c->ss[d]; dso += i * c->ds[d];
    }
    int64_t p0 = pb * TB, p1 = p0 + TB < nP ? p0 + TB : nP;
    for (int64_t l0 = 0; l0 < nL; l0 += TB) {
      int64_t l1 = l0 + TB < nL ? l0 + TB : nL;
      for (int64_t p = p0; p < p1; p++)
        row_copy(c, c->src + 4 * (so + p * c->ss[P] + l0 * c->ss[L]), c->ss[L],
                 c->dst + 4 * (dso + p * c->ds[P] + l0 * c->ds[L]), c->ds[L], l1 - l0);
    }
  }
}

void lm_strided_copy(const void *src, const int64_t *ss, void *dst, const int64_t *ds,
                     const int64_t *shape, int rank, int accumulate, int isInt) {
  sc_ctx c = { .src = src, .dst = dst, .acc = accumulate, .isInt = isInt };
  int r = 0;
  int64_t total = 1;
  for (int d = 0; d < rank; d++) {
    total *= shape[d];
    if (shape[d] == 1) continue;
    if (r > 0 && c.ss[r - 1] == ss[d] * shape[d] && c.ds[r - 1] == ds[d] * shape[d]) {
      c.shape[r - 1] *= shape[d]; c.ss[r - 1] = ss[d]; c.ds[r - 1] = ds[d];
      continue;
    }
    c.shape[r] = shape[d]; c.ss[r] = ss[d]; c.ds[r] = ds[d]; r++;
  }
  if (total == 0) return;
  if (r == 0) { c.shape[0] = 1; c.ss[0] = c.ds[0] = 1; r = 1; }
  c.rank = r;
  int L = r - 1;
  int64_t grainElems = 262144;
  if (r == 1) {  /* one long row, split into chunks */
    if (c.shape[0] < grainElems * 2) row_copy(&c, c.src, c.ss[0], c.dst, c.ds[0], c.shape[0]);
    else lm_parallel_range(c.shape[0], grainElems, copy_1d, &c);
    return;
  }
  c.rows = 1;
  for (int d = 0; d < L; d++) c.rows *= c.shape[d];
  int transpose = (c.ss[L] != 1 || c.ds[L] != 1) && c.shape[L] >= TB && c.shape[L - 1] >= TB;
  if (transpose) {
    int64_t units = c.rows / c.shape[L - 1] * ((c.shape[L - 1] + TB - 1) / TB);
    int64_t grain = grainElems / (TB * c.shape[L]) + 1;
    if (total < grainElems) copy_tiles(&c, 0, units);
    else lm_parallel_rows(units, grain, copy_tiles, &c);
  } else {
    int64_t grain = grainElems / c.shape[L] + 1;
    if (total < grainElems) copy_rows(&c, 0, c.rows);
    else lm_parallel_rows(c.rows, grain, copy_rows, &c);
  }
}

/* ---------------------------------------------------------------- casts */

typedef struct { const void *src; void *dst; } cast_ctx;

/* JavaScript's ToInt32 (what storing a number into an Int32Array does): truncate, wrap mod 2^32,
 * NaN and infinities give 0. */
static inline int32_t to_int32(float x) {
  if (x > -2147483648.0f && x < 2147483648.0f) return (int32_t)x;
  if (!isfinite(x)) return 0;
  double m = fmod((double)x, 4294967296.0);     /* x is an integer here (|x| >= 2^31 > 2^24) */
  if (m < 0) m += 4294967296.0;
  return (int32_t)(uint32_t)m;
}

static void f2i_range(void *vctx, int64_t lo, int64_t hi) {
  cast_ctx *c = vctx;
  const float *s = c->src; int32_t *d = c->dst;
  for (int64_t i = lo; i < hi; i++) d[i] = to_int32(s[i]);
}
static void i2f_range(void *vctx, int64_t lo, int64_t hi) {
  cast_ctx *c = vctx;
  const int32_t *s = c->src; float *d = c->dst;
  for (int64_t i = lo; i < hi; i++) d[i] = (float)s[i];
}
void lm_cast_f32_i32(const float *src, int32_t *dst, int64_t n) {
  cast_ctx c = { src, dst };
  lm_parallel_range(n, 262144, f2i_range, &c);
}
void lm_cast_i32_f32(const int32_t *src, float *dst, int64_t n) {
  cast_ctx c = { src, dst };
  lm_parallel_range(n, 262144, i2f_range, &c);
}

static void memcpy_range(void *vctx, int64_t lo, int64_t hi) {
  cast_ctx *c = vctx;
  memcpy((float *)c->dst + lo, (const float *)c->src + lo, sizeof(float) * (size_t)(hi - lo));
}
void lm_copy(const float *src, float *dst, int64_t n) {
  cast_ctx c = { src, dst };
  lm_parallel_range(n, 262144, memcpy_range, &c);
}

/*
 * N-API glue: one JavaScript function per kernel. Each entry validates everything it is given —
 * argument types, typed-array element types, integer sizes, offsets and the minimum length
 * every buffer must have for the sizes passed, index ranges (embedding ids, targets, positions)
 * — and throws a JS error naming the kernel and the problem instead of touching memory out of
 * range. Typed arrays are used in place (napi_get_typedarray_info): no copies.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "lumen.h"

int lm_gemm_select(const char *name);

#define MAXARGS 24
#define BIG ((int64_t)1 << 60)

typedef struct {
  napi_env env;
  napi_value argv[MAXARGS];
  size_t argc;
  const char *fn;
  int failed;
} A;

static void fail(A *c, const char *fmt, ...) {
  if (c->failed) return;
  c->failed = 1;
  char msg[512];
  int n = snprintf(msg, sizeof msg, "native %s: ", c->fn);
  va_list ap; va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  napi_throw_range_error(c->env, "ERR_LUMEN_NATIVE", msg);
}

static int start(A *c, napi_env env, napi_callback_info info, const char *fn, size_t want) {
  c->env = env; c->fn = fn; c->failed = 0; c->argc = MAXARGS;
  napi_get_cb_info(env, info, &c->argc, c->argv, NULL, NULL);
  if (c->argc < want) { fail(c, "expected %zu arguments, got %zu", want, c->argc); return 0; }
  return 1;
}

/* saturating arithmetic for size checks */
static int64_t mulc(int64_t a, int64_t b) {
  if (a <= 0 || b <= 0) return 0;
  if (a > BIG / b) return BIG;
  return a * b;
}
static int64_t addc(int64_t a, int64_t b) { int64_t s = a + b; return s > BIG ? BIG : s; }

static double num(A *c, int i, const char *name) {
  if (c->failed) return 0;
  double d;
  if (napi_get_value_double(c->env, c->argv[i], &d) != napi_ok) { fail(c, "%s must be a number", name); return 0; }
  return d;
}

/* an integer >= lo (and < 2^53) */
static int64_t integer(A *c, int i, const char *name, int64_t lo) {
  double d = num(c, i, name);
  if (c->failed) return 0;
  if (!(d == floor(d)) || d < (double)lo || d > 9007199254740992.0) {
    fail(c, "%s must be an integer >= %lld, got %g", name, (long long)lo, d);
    return 0;
  }
  return (int64_t)d;
}

static int boolean(A *c, int i, const char *name) {
  if (c->failed) return 0;
  bool b;
  if (napi_get_value_bool(c->env, c->argv[i], &b) != napi_ok) { fail(c, "%s must be a boolean", name); return 0; }
  return b;
}

static int is_null(A *c, int i) {
  napi_valuetype t;
  if (napi_typeof(c->env, c->argv[i], &t) != napi_ok) return 0;
  return t == napi_null || t == napi_undefined;
}

enum { F32, I32 };

/* A typed array of the given kind with at least `need` elements; NULL (no error) when nullable and null. */
static void *arr(A *c, int i, const char *name, int kind, int64_t need, int nullable) {
  if (c->failed) return NULL;
  if (nullable && is_null(c, i)) return NULL;
  bool is_ta = false;
  napi_is_typedarray(c->env, c->argv[i], &is_ta);
  if (!is_ta) { fail(c, "%s must be a %s", name, kind == F32 ? "Float32Array" : "Int32Array"); return NULL; }
  napi_typedarray_type type; size_t len; void *data; napi_value ab; size_t off;
  napi_get_typedarray_info(c->env, c->argv[i], &type, &len, &data, &ab, &off);
  if (kind == F32 && type != napi_float32_array) { fail(c, "%s must be float32 data (a Float32Array)", name); return NULL; }
  if (kind == I32 && type != napi_int32_array) { fail(c, "%s must be int32 data (an Int32Array)", name); return NULL; }
  if ((int64_t)len < need) {
    fail(c, "%s has %zu elements but the sizes given need at least %lld", name, len, (long long)need);
    return NULL;
  }
  if (len > 0 && data == NULL) { fail(c, "%s has no backing memory (detached buffer?)", name); return NULL; }
  return data;
}

/* an array of non-negative integers (shape) or integers (strides), length <= 16 */
static int int_list(A *c, int i, const char *name, int64_t *out, int64_t lo) {
  if (c->failed) return 0;
  bool isarr = false;
  napi_is_array(c->env, c->argv[i], &isarr);
  if (!isarr) { fail(c, "%s must be an array of integers", name); return 0; }
  uint32_t n;
  napi_get_array_length(c->env, c->argv[i], &n);
  if (n > 16) { fail(c, "%s has %u dims; at most 16 are supported", name, n); return 0; }
  for (uint32_t k = 0; k < n; k++) {
    napi_value v; double d;
    napi_get_element(c->env, c->argv[i], k, &v);
    if (napi_get_value_double(c->env, v, &d) != napi_ok || d != floor(d) || d < (double)lo || fabs(d) > 4.0e15) {
      fail(c, "%s[%u] must be an integer%s", name, k, lo == 0 ? " >= 0" : "");
      return 0;
    }
    out[k] = (int64_t)d;
  }
  return (int)n;
}

static napi_value undef(napi_env env) { napi_value u; napi_get_undefined(env, &u); return u; }
static napi_value number(napi_env env, double d) { napi_value v; napi_create_double(env, d, &v); return v; }

#define BEGIN(NAME, N) A c_; A *c = &c_; if (!start(c, env, info, NAME, N)) return NULL;
#define CHECK() if (c->failed) return NULL;

/* ---------------------------------------------------------------- threads, info */

static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  BEGIN("setThreads", 1);
  int64_t n = integer(c, 0, "n", 1); CHECK();
  if (n > 256) { fail(c, "n must be <= 256, got %lld", (long long)n); return NULL; }
  lm_set_threads((int)n);
  return number(env, lm_get_threads());
}
static napi_value js_get_threads(napi_env env, napi_callback_info info) { return number(env, lm_get_threads()); }

static napi_value js_info(napi_env env, napi_callback_info info) {
  napi_value o, v;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, lm_isa(), NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, o, "isa", v);
  napi_create_string_utf8(env, lm_gemm_kernel_name(), NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, o, "gemm", v);
  napi_set_named_property(env, o, "threads", number(env, lm_get_threads()));
  return o;
}

static napi_value js_gemm_select(napi_env env, napi_callback_info info) {
  BEGIN("gemmKernel", 1);
  char name[32]; size_t len;
  if (napi_get_value_string_utf8(env, c->argv[0], name, sizeof name, &len) != napi_ok) { fail(c, "name must be a string"); return NULL; }
  napi_value r; napi_get_boolean(env, lm_gemm_select(name), &r);
  return r;
}

/* ---------------------------------------------------------------- matmul */

static napi_value js_matmul(napi_env env, napi_callback_info info) {
  BEGIN("matmul", 17);
  int64_t aOff = integer(c, 1, "aOffset", 0), sA = integer(c, 2, "strideA", 0);
  int64_t bOff = integer(c, 4, "bOffset", 0), sB = integer(c, 5, "strideB", 0);
  int64_t cOff = integer(c, 7, "outOffset", 0), sC = integer(c, 8, "strideOut", 0);
  int64_t batch = integer(c, 9, "batch", 0), m = integer(c, 10, "m", 0), n = integer(c, 11, "n", 0), k = integer(c, 12, "k", 0);
  int tA = boolean(c, 13, "transA"), tB = boolean(c, 14, "transB");
  double alpha = num(c, 15, "alpha");
  int acc = boolean(c, 16, "accumulate");
  CHECK();
  if (batch > 1 && sC < m * n) { fail(c, "strideOut %lld < m*n = %lld: batches of the output would overlap", (long long)sC, (long long)(m * n)); return NULL; }
  int64_t nb = batch > 0 ? batch - 1 : 0;
  int64_t needA = batch && m && k ? addc(addc(aOff, mulc(nb, sA)), mulc(m, k)) : 0;
  int64_t needB = batch && n && k ? addc(addc(bOff, mulc(nb, sB)), mulc(k, n)) : 0;
  int64_t needC = batch && m && n ? addc(addc(cOff, mulc(nb, sC)), mulc(m, n)) : 0;
  float *a = arr(c, 0, "a", F32, needA, 0), *b = arr(c, 3, "b", F32, needB, 0), *o = arr(c, 6, "out", F32, needC, 0);
  CHECK();
  lm_gemm_args g = { a + aOff, sA, b + bOff, sB, o + cOff, sC, batch, m, n, k, tA, tB, (float)alpha, acc };
  lm_gemm(&g);
  return undef(env);
}

/* ---------------------------------------------------------------- elementwise */

static int op_code(A *c, int i, int count) {
  int64_t op = integer(c, i, "op", 0);
  if (!c->failed && op >= count) fail(c, "unknown op code %lld", (long long)op);
  return (int)op;
}

static napi_value js_unary(napi_env env, napi_callback_info info) {
  BEGIN("unary", 4);
  int op = op_code(c, 0, LM_UNARY_COUNT);
  int64_t n = integer(c, 3, "n", 0);
  float *x = arr(c, 1, "x", F32, n, 0), *o = arr(c, 2, "out", F32, n, 0);
  CHECK();
  lm_unary(op, x, o, n);
  return undef(env);
}

static napi_value js_unary_backward(napi_env env, napi_callback_info info) {
  BEGIN("unaryBackward", 7);
  int op = op_code(c, 0, LM_UNARY_COUNT);
  int64_t n = integer(c, 5, "n", 0);
  int acc = boolean(c, 6, "accumulate");
  float *x = arr(c, 1, "x", F32, n, 0), *y = arr(c, 2, "y", F32, n, 0);
  float *dy = arr(c, 3, "dy", F32, n, 0), *dx = arr(c, 4, "dx", F32, n, 0);
  CHECK();
  lm_unary_backward(op, x, y, dy, dx, n, acc);
  return undef(env);
}

/* max index reached (+1) by strides over shape from 0; strides of broadcast inputs are >= 0 */
static int64_t extent(const int64_t *strides, const int64_t *shape, int rank, int64_t *minOff) {
  int64_t hi = 0, lo = 0;
  for (int d = 0; d < rank; d++) {
    if (shape[d] == 0) { *minOff = 0; return 0; }
    int64_t span = mulc(shape[d] - 1, strides[d] < 0 ? -strides[d] : strides[d]);
    if (strides[d] >= 0) hi = addc(hi, span); else lo -= span;
  }
  *minOff = lo;
  return addc(hi, 1);
}

static napi_value js_binary(napi_env env, napi_callback_info info) {
  BEGIN("binary", 7);
  int op = op_code(c, 0, LM_BINARY_COUNT);
  int64_t as[16], bs[16], shape[16];
  int ra = int_list(c, 2, "aStrides", as, 0), rb = int_list(c, 4, "bStrides", bs, 0), rank = int_list(c, 6, "shape", shape, 0);
  CHECK();
  if (ra != rank || rb != rank) { fail(c, "aStrides (%d), bStrides (%d) and shape (%d) must have the same length", ra, rb, rank); return NULL; }
  int64_t lo, total = 1;
  for (int d = 0; d < rank; d++) total = mulc(total, shape[d]);
  if (rank > 0 && total == 0) total = 0;
  int64_t needA = extent(as, shape, rank, &lo), needB = extent(bs, shape, rank, &lo);
  float *a = arr(c, 1, "a", F32, needA, 0), *b = arr(c, 3, "b", F32, needB, 0), *o = arr(c, 5, "out", F32, total, 0);
  CHECK();
  if (total > 0) lm_binary(op, a, as, b, bs, o, shape, rank);
  return undef(env);
}

static napi_value js_scalar(napi_env env, napi_callback_info info) {
  BEGIN("scalar", 6);
  int op = op_code(c, 0, LM_BINARY_COUNT);
  double s = num(c, 2, "s");
  int64_t n = integer(c, 4, "n", 0);
  int rev = boolean(c, 5, "reverse");
  float *x = arr(c, 1, "x", F32, n, 0), *o = arr(c, 3, "out", F32, n, 0);
  CHECK();
  lm_scalar(op, x, (float)s, o, n, rev);
  return undef(env);
}

static napi_value js_axpy(napi_env env, napi_callback_info info) {
  BEGIN("axpy", 4);
  double alpha = num(c, 0, "alpha");
  int64_t n = integer(c, 3, "n", 0);
  float *x = arr(c, 1, "x", F32, n, 0), *y = arr(c, 2, "y", F32, n, 0);
  CHECK();
  lm_axpy((float)alpha, x, y, n);
  return undef(env);
}

static napi_value js_dropout(napi_env env, napi_callback_info info) {
  BEGIN("dropout", 7);
  int64_t n = integer(c, 3, "n", 0);
  double p = num(c, 4, "p");
  double seed = num(c, 5, "seed");
  int64_t offset = integer(c, 6, "offset", 0);
  float *x = arr(c, 0, "x", F32, n, 0), *o = arr(c, 1, "out", F32, n, 0), *mk = arr(c, 2, "mask", F32, n, 0);
  CHECK();
  if (!(p >= 0.0 && p <= 1.0)) { fail(c, "p must be in [0, 1], got %g", p); return NULL; }
  /* JavaScript ToUint32 of the seed, as rng.ts does with `seed ^ ...` */
  double sm = fmod(trunc(isfinite(seed) ? seed : 0.0), 4294967296.0);
  if (sm < 0) sm += 4294967296.0;
  lm_dropout(x, o, mk, n, p, (uint32_t)sm, (double)offset);
  return undef(env);
}

static napi_value js_adamw(napi_env env, napi_callback_info info) {
  BEGIN("adamw", 13);
  int64_t n = integer(c, 4, "n", 0);
  double h[8];
  const char *names[8] = { "lr", "b1", "b2", "eps", "wd", "bc1", "bc2", "gradScale" };
  for (int i = 0; i < 8; i++) h[i] = num(c, 5 + i, names[i]);
  float *p = arr(c, 0, "p", F32, n, 0), *g = arr(c, 1, "g", F32, n, 0), *m = arr(c, 2, "m", F32, n, 0), *v = arr(c, 3, "v", F32, n, 0);
  CHECK();
  lm_adamw(p, g, m, v, n, (float)h[0], (float)h[1], (float)h[2], (float)h[3], (float)h[4], (float)h[5], (float)h[6], (float)h[7]);
  return undef(env);
}

/* ---------------------------------------------------------------- reductions */

static napi_value js_reduce_sum(napi_env env, napi_callback_info info) {
  BEGIN("reduceSum", 5);
  int64_t o = integer(c, 2, "outer", 0), m = integer(c, 3, "mid", 0), in = integer(c, 4, "inner", 0);
  float *x = arr(c, 0, "x", F32, mulc(mulc(o, m), in), 0), *out = arr(c, 1, "out", F32, mulc(o, in), 0);
  CHECK();
  lm_reduce_sum(x, out, o, m, in);
  return undef(env);
}

static napi_value js_reduce_max(napi_env env, napi_callback_info info) {
  BEGIN("reduceMax", 6);
  int64_t o = integer(c, 3, "outer", 0), m = integer(c, 4, "mid", 0), in = integer(c, 5, "inner", 0);
  float *x = arr(c, 0, "x", F32, mulc(mulc(o, m), in), 0), *out = arr(c, 1, "out", F32, mulc(o, in), 0);
  int32_t *am = arr(c, 2, "argmax", I32, mulc(o, in), 0);
  CHECK();
  if (m == 0 && o * in > 0) { fail(c, "cannot take the max over an empty axis (mid = 0)"); return NULL; }
  lm_reduce_max(x, out, am, o, m, in);
  return undef(env);
}

static napi_value js_sum_squares(napi_env env, napi_callback_info info) {
  BEGIN("sumSquares", 2);
  int64_t n = integer(c, 1, "n", 0);
  float *x = arr(c, 0, "x", F32, n, 0);
  CHECK();
  return number(env, lm_sum_squares(x, n));
}

/* ---------------------------------------------------------------- softmax, norms, loss */

static napi_value js_softmax(napi_env env, napi_callback_info info) {
  BEGIN("softmax", 5);
  int64_t r = integer(c, 2, "rows", 0), k = integer(c, 3, "cols", 0);
  int lg = boolean(c, 4, "log");
  float *x = arr(c, 0, "x", F32, mulc(r, k), 0), *o = arr(c, 1, "out", F32, mulc(r, k), 0);
  CHECK();
  lm_softmax(x, o, r, k, lg);
  return undef(env);
}

static napi_value js_softmax_backward(napi_env env, napi_callback_info info) {
  BEGIN("softmaxBackward", 6);
  int64_t r = integer(c, 3, "rows", 0), k = integer(c, 4, "cols", 0);
  int lg = boolean(c, 5, "log");
  int64_t need = mulc(r, k);
  float *y = arr(c, 0, "y", F32, need, 0), *dy = arr(c, 1, "dy", F32, need, 0), *dx = arr(c, 2, "dx", F32, need, 0);
  CHECK();
  lm_softmax_backward(y, dy, dx, r, k, lg);
  return undef(env);
}

static napi_value js_layernorm(napi_env env, napi_callback_info info) {
  BEGIN("layerNorm", 9);
  int64_t r = integer(c, 6, "rows", 0), k = integer(c, 7, "cols", 0);
  double eps = num(c, 8, "eps");
  int64_t need = mulc(r, k);
  float *x = arr(c, 0, "x", F32, need, 0), *w = arr(c, 1, "weight", F32, k, 1), *b = arr(c, 2, "bias", F32, k, 1);
  float *o = arr(c, 3, "out", F32, need, 0), *mean = arr(c, 4, "mean", F32, r, 0), *rstd = arr(c, 5, "rstd", F32, r, 0);
  CHECK();
  if (k == 0 && r > 0) { fail(c, "cols must be > 0"); return NULL; }
  lm_layernorm(x, w, b, o, mean, rstd, r, k, (float)eps);
  return undef(env);
}

static napi_value js_layernorm_backward(napi_env env, napi_callback_info info) {
  BEGIN("layerNormBackward", 10);
  int64_t r = integer(c, 8, "rows", 0), k = integer(c, 9, "cols", 0);
  int64_t need = mulc(r, k);
  float *x = arr(c, 0, "x", F32, need, 0), *w = arr(c, 1, "weight", F32, k, 1);
  float *mean = arr(c, 2, "mean", F32, r, 0), *rstd = arr(c, 3, "rstd", F32, r, 0), *dy = arr(c, 4, "dy", F32, need, 0);
  float *dx = arr(c, 5, "dx", F32, need, 0), *dw = arr(c, 6, "dweight", F32, k, 1), *db = arr(c, 7, "dbias", F32, k, 1);
  CHECK();
  lm_layernorm_backward(x, w, mean, rstd, dy, dx, dw, db, r, k);
  return undef(env);
}

static napi_value js_rmsnorm(napi_env env, napi_callback_info info) {
  BEGIN("rmsNorm", 7);
  int64_t r = integer(c, 4, "rows", 0), k = integer(c, 5, "cols", 0);
  double eps = num(c, 6, "eps");
  int64_t need = mulc(r, k);
  float *x = arr(c, 0, "x", F32, need, 0), *w = arr(c, 1, "weight", F32, k, 1);
  float *o = arr(c, 2, "out", F32, need, 0), *rstd = arr(c, 3, "rstd", F32, r, 0);
  CHECK();
  if (k == 0 && r > 0) { fail(c, "cols must be > 0"); return NULL; }
  lm_rmsnorm(x, w, o, rstd, r, k, (float)eps);
  return undef(env);
}

static napi_value js_rmsnorm_backward(napi_env env, napi_callback_info info) {
  BEGIN("rmsNormBackward", 8);
  int64_t r = integer(c, 6, "rows", 0), k = integer(c, 7, "cols", 0);
  int64_t need = mulc(r, k);
  float *x = arr(c, 0, "x", F32, need, 0), *w = arr(c, 1, "weight", F32, k, 1), *rstd = arr(c, 2, "rstd", F32, r, 0);
  float *dy = arr(c, 3, "dy", F32, need, 0), *dx = arr(c, 4, "dx", F32, need, 0), *dw = arr(c, 5, "dweight", F32, k, 1);
  CHECK();
  lm_rmsnorm_backward(x, w, rstd, dy, dx, dw, r, k);
  return undef(env);
}

static int check_targets(A *c, const int32_t *t, int64_t rows, int64_t V, int32_t ignore) {
  for (int64_t r = 0; r < rows; r++)
    if (t[r] != ignore && (t[r] < 0 || t[r] >= V)) {
      fail(c, "targets[%lld] = %d is outside [0, %lld) and is not the ignore index %d", (long long)r, t[r], (long long)V, ignore);
      return 0;
    }
  return 1;
}

static napi_value js_xent(napi_env env, napi_callback_info info) {
  BEGIN("crossEntropy", 8);
  int64_t r = integer(c, 4, "rows", 0), V = integer(c, 5, "V", 0);
  double ig = num(c, 6, "ignoreIndex"), sm = num(c, 7, "smoothing");
  float *x = arr(c, 0, "logits", F32, mulc(r, V), 0);
  int32_t *t = arr(c, 1, "targets", I32, r, 0);
  float *losses = arr(c, 2, "losses", F32, r, 0), *lse = arr(c, 3, "lse", F32, r, 0);
  CHECK();
  if (V == 0 && r > 0) { fail(c, "V must be > 0"); return NULL; }
  if (!check_targets(c, t, r, V, (int32_t)ig)) return NULL;
  lm_cross_entropy(x, t, losses, lse, r, V, (int32_t)ig, (float)sm);
  return undef(env);
}

static napi_value js_xent_backward(napi_env env, napi_callback_info info) {
  BEGIN("crossEntropyBackward", 9);
  int64_t r = integer(c, 5, "rows", 0), V = integer(c, 6, "V", 0);
  double ig = num(c, 7, "ignoreIndex"), sm = num(c, 8, "smoothing");
  float *x = arr(c, 0, "logits", F32, mulc(r, V), 0);
  int32_t *t = arr(c, 1, "targets", I32, r, 0);
  float *lse = arr(c, 2, "lse", F32, r, 0), *dl = arr(c, 3, "dloss", F32, r, 0), *dx = arr(c, 4, "dlogits", F32, mulc(r, V), 0);
  CHECK();
  if (!check_targets(c, t, r, V, (int32_t)ig)) return NULL;
  lm_cross_entropy_backward(x, t, lse, dl, dx, r, V, (int32_t)ig, (float)sm);
  return undef(env);
}

/* ---------------------------------------------------------------- lookup, rope */

static int check_ids(A *c, const int32_t *ids, int64_t n, int64_t rows, const char *what) {
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= rows) {
      fail(c, "%s[%lld] = %d is outside [0, %lld)", what, (long long)i, ids[i], (long long)rows);
      return 0;
    }
  return 1;
}

static size_t ta_len(napi_env env, napi_value v) {
  napi_typedarray_type t; size_t len; void *d; napi_value ab; size_t off;
  napi_get_typedarray_info(env, v, &t, &len, &d, &ab, &off);
  return len;
}

static napi_value js_embedding(napi_env env, napi_callback_info info) {
  BEGIN("embedding", 5);
  int64_t n = integer(c, 3, "n", 0), dim = integer(c, 4, "dim", 1);
  float *table = arr(c, 0, "table", F32, dim, 0);
  int32_t *ids = arr(c, 1, "ids", I32, n, 0);
  float *o = arr(c, 2, "out", F32, mulc(n, dim), 0);
  CHECK();
  if (!check_ids(c, ids, n, (int64_t)ta_len(env, c->argv[0]) / dim, "ids")) return NULL;
  lm_embedding(table, ids, o, n, dim);
  return undef(env);
}

static napi_value js_embedding_backward(napi_env env, napi_callback_info info) {
  BEGIN("embeddingBackward", 5);
  int64_t n = integer(c, 3, "n", 0), dim = integer(c, 4, "dim", 1);
  float *dout = arr(c, 0, "dout", F32, mulc(n, dim), 0);
  int32_t *ids = arr(c, 1, "ids", I32, n, 0);
  float *dt = arr(c, 2, "dtable", F32, dim, 0);
  CHECK();
  if (!check_ids(c, ids, n, (int64_t)ta_len(env, c->argv[2]) / dim, "ids")) return NULL;
  lm_embedding_backward(dout, ids, dt, n, dim);
  return undef(env);
}

static napi_value js_rope(napi_env env, napi_callback_info info) {
  BEGIN("rope", 9);
  int64_t N = integer(c, 3, "N", 0), T = integer(c, 4, "T", 0), H = integer(c, 5, "H", 0), D = integer(c, 6, "D", 0);
  double base = num(c, 7, "base");
  int inv = boolean(c, 8, "inverse");
  CHECK();
  if (D % 2 != 0) { fail(c, "D must be even, got %lld", (long long)D); return NULL; }
  int64_t need = mulc(mulc(mulc(N, T), H), D);
  float *x = arr(c, 0, "x", F32, need, 0), *o = arr(c, 1, "out", F32, need, 0);
  int32_t *pos = arr(c, 2, "positions", I32, mulc(N, T), 0);
  CHECK();
  if (!(base > 0)) { fail(c, "base must be > 0, got %g", base); return NULL; }
  lm_rope(x, o, pos, N, T, H, D, base, inv);
  return undef(env);
}

/* ---------------------------------------------------------------- attention */

static int attn_common(A *c, lm_attn_args *a) {
  a->B = integer(c, 5, "B", 0); a->Tq = integer(c, 6, "Tq", 0); a->Tk = integer(c, 7, "Tk", 0);
  a->Hq = integer(c, 8, "Hq", 1); a->Hkv = integer(c, 9, "Hkv", 1); a->D = integer(c, 10, "D", 1);
  a->kvBatchStride = integer(c, 11, "kvBatchStride", 0);
  a->scale = (float)num(c, 12, "scale");
  a->causal = boolean(c, 13, "causal");
  a->maskBatchStride = integer(c, 15, "maskBatchStride", 0);
  a->maskHeadStride = integer(c, 16, "maskHeadStride", 0);
  if (c->failed) return 0;
  if (a->Hq % a->Hkv != 0) { fail(c, "Hq (%lld) must be a multiple of Hkv (%lld)", (long long)a->Hq, (long long)a->Hkv); return 0; }
  int64_t kvrow = mulc(mulc(a->Tk, a->Hkv), a->D);
  if (a->B > 1 && a->kvBatchStride < kvrow) {
    fail(c, "kvBatchStride %lld < Tk*Hkv*D = %lld", (long long)a->kvBatchStride, (long long)kvrow); return 0;
  }
  if (a->causal && a->Tq > a->Tk) { fail(c, "causal attention needs Tq (%lld) <= Tk (%lld)", (long long)a->Tq, (long long)a->Tk); return 0; }
  int64_t qn = mulc(mulc(mulc(a->B, a->Tq), a->Hq), a->D);
  int64_t kvn = a->B && a->Tk ? addc(mulc(a->B - 1, a->kvBatchStride), kvrow) : 0;
  a->q = arr(c, 0, "q", F32, qn, 0); a->k = arr(c, 1, "k", F32, kvn, 0); a->v = arr(c, 2, "v", F32, kvn, 0);
  a->out = arr(c, 3, "out", F32, qn, 0);
  a->lse = arr(c, 4, "lse", F32, mulc(mulc(a->B, a->Hq), a->Tq), 0);
  int64_t mneed = a->B && a->Tq && a->Tk
    ? addc(addc(mulc(a->B - 1, a->maskBatchStride), mulc(a->Hq - 1, a->maskHeadStride)), mulc(a->Tq, a->Tk)) : 0;
  a->mask = arr(c, 14, "mask", F32, mneed, 1);
  return !c->failed;
}

static napi_value js_attention(napi_env env, napi_callback_info info) {
  BEGIN("attention", 17);
  lm_attn_args a; memset(&a, 0, sizeof a);
  if (!attn_common(c, &a)) return NULL;
  lm_attention(&a);
  return undef(env);
}

/* element k of the JS array argument i, a Float32Array with at least `need` elements */
static float *f32_element(A *c, int i, const char *name, uint32_t k, int64_t need) {
  if (c->failed) return NULL;
  napi_value v; bool is_ta = false;
  napi_get_element(c->env, c->argv[i], k, &v);
  napi_is_typedarray(c->env, v, &is_ta);
  if (!is_ta) { fail(c, "%s[%u] must be a Float32Array", name, k); return NULL; }
  napi_typedarray_type type; size_t len; void *data; napi_value ab; size_t off;
  napi_get_typedarray_info(c->env, v, &type, &len, &data, &ab, &off);
  if (type != napi_float32_array) { fail(c, "%s[%u] must be a Float32Array", name, k); return NULL; }
  if ((int64_t)len < need) { fail(c, "%s[%u] has %zu elements but needs at least %lld", name, k, len, (long long)need); return NULL; }
  if (len > 0 && data == NULL) { fail(c, "%s[%u] has no backing memory (detached buffer?)", name, k); return NULL; }
  return data;
}

/* attentionDecode(q, knew, vnew, out, lse, kcaches[], vcaches[], meta Int32Array [row, n, start]*, Hq, Hkv, D, scale) */
static napi_value js_attention_decode(napi_env env, napi_callback_info info) {
  BEGIN("attentionDecode", 12);
  int64_t Hq = integer(c, 8, "Hq", 1), Hkv = integer(c, 9, "Hkv", 1), D = integer(c, 10, "D", 1);
  float scale = (float)num(c, 11, "scale");
  CHECK();
  if (Hq % Hkv != 0) { fail(c, "Hq (%lld) must be a multiple of Hkv (%lld)", (long long)Hq, (long long)Hkv); return NULL; }
  bool ka = false, va = false;
  napi_is_array(env, c->argv[5], &ka); napi_is_array(env, c->argv[6], &va);
  if (!ka || !va) { fail(c, "kcaches and vcaches must be arrays of Float32Array"); return NULL; }
  uint32_t nk, nv;
  napi_get_array_length(env, c->argv[5], &nk); napi_get_array_length(env, c->argv[6], &nv);
  if (nk != nv) { fail(c, "kcaches has %u entries, vcaches %u", nk, nv); return NULL; }
  const int32_t *meta = arr(c, 7, "meta", I32, mulc(3, nk), 0);
  CHECK();
  lm_decode_item *items = calloc(nk ? nk : 1, sizeof *items);
  if (!items) { fail(c, "out of memory"); return NULL; }
  int64_t rows = 0, kv = mulc(Hkv, D);
  for (uint32_t i = 0; i < nk && !c->failed; i++) {
    int64_t row = meta[3 * i], n = meta[3 * i + 1], start = meta[3 * i + 2];
    if (row < 0 || n < 1 || start < 0) { fail(c, "item %u: row %lld, n %lld, start %lld (need row >= 0, n >= 1, start >= 0)", i, (long long)row, (long long)n, (long long)start); break; }
    items[i].kcache = f32_element(c, 5, "kcaches", i, mulc(start + n, kv));
    items[i].vcache = f32_element(c, 6, "vcaches", i, mulc(start + n, kv));
    items[i].row = row; items[i].n = n; items[i].start = start;
    if (row + n > rows) rows = row + n;
  }
  const float *q = arr(c, 0, "q", F32, mulc(mulc(rows, Hq), D), 0);
  const float *kn = arr(c, 1, "knew", F32, mulc(rows, kv), 0), *vn = arr(c, 2, "vnew", F32, mulc(rows, kv), 0);
  float *out = arr(c, 3, "out", F32, mulc(mulc(rows, Hq), D), 0);
  float *lse = arr(c, 4, "lse", F32, mulc(rows, Hq), 0);
  if (c->failed) { free(items); return NULL; }
  lm_attention_decode(q, kn, vn, out, lse, items, nk, Hq, Hkv, D, scale);
  free(items);
  return undef(env);
}

static napi_value js_attention_backward(napi_env env, napi_callback_info info) {
  BEGIN("attentionBackward", 21);
  lm_attn_args a; memset(&a, 0, sizeof a);
  if (!attn_common(c, &a)) return NULL;
  int64_t qn = mulc(mulc(mulc(a.B, a.Tq), a.Hq), a.D), kvn = mulc(mulc(mulc(a.B, a.Tk), a.Hkv), a.D);
  a.dout = arr(c, 17, "dout", F32, qn, 0);
  a.dq = arr(c, 18, "dq", F32, qn, 0);
  a.dk = arr(c, 19, "dk", F32, kvn, 0);
  a.dv = arr(c, 20, "dv", F32, kvn, 0);
  CHECK();
  lm_attention_backward(&a);
  return undef(env);
}

/* ---------------------------------------------------------------- copies, casts */

static napi_value js_strided_copy(napi_env env, napi_callback_info info) {
  BEGIN("stridedCopy", 8);
  int64_t ss[16], ds[16], shape[16];
  int64_t sOff = integer(c, 1, "srcOffset", 0), dOff = integer(c, 4, "dstOffset", 0);
  int rs = int_list(c, 2, "srcStrides", ss, -BIG), rd = int_list(c, 5, "dstStrides", ds, -BIG), rank = int_list(c, 6, "shape", shape, 0);
  int acc = boolean(c, 7, "accumulate");
  CHECK();
  if (rs != rank || rd != rank) { fail(c, "srcStrides (%d), dstStrides (%d) and shape (%d) must have the same length", rs, rd, rank); return NULL; }
  int64_t smin, dmin;
  int64_t sext = extent(ss, shape, rank, &smin), dext = extent(ds, shape, rank, &dmin);
  if (sext > 0 && sOff + smin < 0) { fail(c, "srcOffset %lld with negative strides reaches index %lld", (long long)sOff, (long long)(sOff + smin)); return NULL; }
  if (dext > 0 && dOff + dmin < 0) { fail(c, "dstOffset %lld with negative strides reaches index %lld", (long long)dOff, (long long)(dOff + dmin)); return NULL; }
  napi_typedarray_type st = napi_float32_array, dt = napi_float32_array;
  bool ta = false;
  napi_is_typedarray(env, c->argv[0], &ta);
  if (ta) { size_t l; void *d; napi_value ab; size_t o; napi_get_typedarray_info(env, c->argv[0], &st, &l, &d, &ab, &o); }
  int kind = st == napi_int32_array ? I32 : F32;
  void *src = arr(c, 0, "src", kind, sext ? addc(sOff, sext) : 0, 0);
  void *dst = arr(c, 3, "dst", kind, dext ? addc(dOff, dext) : 0, 0);
  CHECK();
  (void)dt;
  if (sext == 0) return undef(env);
  lm_strided_copy((const char *)src + 4 * sOff, ss, (char *)dst + 4 * dOff, ds, shape, rank, acc, kind == I32);
  return undef(env);
}

static napi_value js_cast(napi_env env, napi_callback_info info) {
  BEGIN("cast", 3);
  int64_t n = integer(c, 2, "n", 0);
  CHECK();
  bool ta = false;
  napi_typedarray_type st = napi_float32_array;
  napi_is_typedarray(env, c->argv[0], &ta);
  if (ta) { size_t l; void *d; napi_value ab; size_t o; napi_get_typedarray_info(env, c->argv[0], &st, &l, &d, &ab, &o); }
  if (st == napi_int32_array) {
    int32_t *s = arr(c, 0, "src", I32, n, 0);
    float *d = arr(c, 1, "dst", F32, n, 0);
    CHECK();
    lm_cast_i32_f32(s, d, n);
  } else {
    float *s = arr(c, 0, "src", F32, n, 0);
    int32_t *d = arr(c, 1, "dst", I32, n, 0);
    CHECK();
    lm_cast_f32_i32(s, d, n);
  }
  return undef(env);
}

static napi_value js_copy(napi_env env, napi_callback_info info) {
  BEGIN("copy", 3);
  int64_t n = integer(c, 2, "n", 0);
  float *s = arr(c, 0, "src", F32, n, 0), *d = arr(c, 1, "dst", F32, n, 0);
  CHECK();
  lm_copy(s, d, n);
  return undef(env);
}

/* ---------------------------------------------------------------- module */

static napi_value init(napi_env env, napi_value exports) {
  const char *t = getenv("LUMEN_THREADS");
  if (lm_get_threads() == 1 && t && atoi(t) > 0) lm_set_threads(atoi(t));
  struct { const char *name; napi_callback fn; } fns[] = {
    { "setThreads", js_set_threads }, { "getThreads", js_get_threads }, { "info", js_info },
    { "gemmKernel", js_gemm_select }, { "matmul", js_matmul },
    { "unary", js_unary }, { "unaryBackward", js_unary_backward }, { "binary", js_binary }, { "scalar", js_scalar },
    { "axpy", js_axpy }, { "dropout", js_dropout }, { "adamw", js_adamw },
    { "reduceSum", js_reduce_sum }, { "reduceMax", js_reduce_max }, { "sumSquares", js_sum_squares },
    { "softmax", js_softmax }, { "softmaxBackward", js_softmax_backward },
    { "layerNorm", js_layernorm }, { "layerNormBackward", js_layernorm_backward },
    { "rmsNorm", js_rmsnorm }, { "rmsNormBackward", js_rmsnorm_backward },
    { "crossEntropy", js_xent }, { "crossEntropyBackward", js_xent_backward },
    { "embedding", js_embedding }, { "embeddingBackward", js_embedding_backward }, { "rope", js_rope },
    { "attention", js_attention }, { "attentionBackward", js_attention_backward }, { "attentionDecode", js_attention_decode },
    { "stridedCopy", js_strided_copy }, { "cast", js_cast }, { "copy", js_copy },
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

/*
 * Scaled dot-product attention on the (B, T, H, D) layout, with GQA, a causal offset for
 * decoding (Tq < Tk), an optional additive mask, and the saved log-sum-exp.
 *
 * Both passes work on blocks of QB = 64 query rows of one head and use the GEMM microkernels
 * (lm_gemm_serial with row strides, so Q, K, V, dO are read in place in their (B, T, H, D)
 * buffers); the scores of a block (QB x Tk) live in a thread-local buffer (512 KB at Tk = 2048).
 *
 * Forward: one task per (batch, query head, query block): S = scale Q K^T (+ mask, causal -inf),
 * row softmax (max-shifted exp, AVX2) -> lse, O = P V.
 *
 * Backward: one task per (batch, KV head): it walks the query heads of its group and their query
 * blocks, recomputing P = exp(S - lse) from the saved lse, and accumulates dK, dV of its KV head
 * privately — no races, a fixed summation order (deterministic for any thread count):
 *   dP = dO V^T, Delta_i = sum_j P_ij dP_ij, dS = P (dP - Delta) scale,
 *   dQ = dS K, dK += dS^T Q, dV += P^T dO.
 *
 * A query row with no visible key (all masked) gets output 0, lse -inf and zero gradients.
 */
#include "vmath.h"
#include <math.h>
#include <string.h>
#include <stdlib.h>

#define QB 64

static inline int64_t visible_end(const lm_attn_args *a, int64_t i) {
  if (!a->causal) return a->Tk;
  int64_t e = a->Tk - a->Tq + i + 1;
  return e < 0 ? 0 : e > a->Tk ? a->Tk : e;
}

/* C (m x n, row stride ldc) = alpha op(A) op(B) (+ C) on this thread */
static void mm(const float *A, int64_t lda, int transA, const float *B, int64_t ldb, int transB, float *C, int64_t ldc,
               int64_t m, int64_t n, int64_t k, float alpha, int accumulate) {
  lm_gemm_args g = { A, 0, B, 0, C, 0, 1, m, n, k, transA, transB, alpha, accumulate, lda, ldb, ldc };
  lm_gemm_serial(&g);
}

/* Scores of query rows [i0, i1) of head h against keys [0, jend) into S (row stride lds),
 * with mask and causal limit applied (-inf beyond a row's visible end). */
static void scores(const lm_attn_args *a, int64_t b, int64_t h, int64_t kvh, int64_t i0, int64_t i1, int64_t jend,
                   float *S, int64_t lds) {
  const int64_t D = a->D;
  const float *q = a->q + ((b * a->Tq + i0) * a->Hq + h) * D;
  const float *k = a->k + b * a->kvBatchStride + kvh * D;
  mm(q, a->Hq * D, 0, k, a->Hkv * D, 1, S, lds, i1 - i0, jend, D, a->scale, 0);
  for (int64_t i = i0; i < i1; i++) {
    float *s = S + (i - i0) * lds;
    if (a->mask) {
      const float *mrow = a->mask + b * a->maskBatchStride + h * a->maskHeadStride + i * a->Tk;
      for (int64_t j = 0; j < jend; j++) s[j] += mrow[j];
    }
    for (int64_t j = visible_end(a, i); j < jend; j++) s[j] = -INFINITY;
  }
}

static void attn_fwd_task(void *vctx, int64_t t, int tid) {
  const lm_attn_args *a = vctx;
  const int64_t nqb = (a->Tq + QB - 1) / QB, D = a->D, group = a->Hq / a->Hkv;
  const int64_t b = t / (a->Hq * nqb), rem = t % (a->Hq * nqb), h = rem / nqb, qb = rem % nqb;
  const int64_t kvh = h / group, i0 = qb * QB, i1 = i0 + QB < a->Tq ? i0 + QB : a->Tq;
  const int64_t jend = visible_end(a, i1 - 1), lds = jend + 8;
  float *out0 = a->out + ((b * a->Tq + i0) * a->Hq + h) * D;
  if (jend == 0) {                       /* no query row of the block sees a key */
    for (int64_t i = i0; i < i1; i++) {
      memset(out0 + (i - i0) * a->Hq * D, 0, sizeof(float) * (size_t)D);
      a->lse[(b * a->Hq + h) * a->Tq + i] = -INFINITY;
    }
    return;
  }
  float *S = lm_scratch(3, sizeof(float) * (size_t)(QB * lds));
  scores(a, b, h, kvh, i0, i1, jend, S, lds);
  for (int64_t i = i0; i < i1; i++) {
    float *s = S + (i - i0) * lds;
    float m = lm_max(s, jend);
    float *lse = a->lse + (b * a->Hq + h) * a->Tq + i;
    if (m == -INFINITY) { memset(s, 0, sizeof(float) * (size_t)jend); *lse = -INFINITY; continue; }
    float sum = lm_exp_shift_sum(s, m, s, jend);
    *lse = m + logf(sum);
    float inv = 1.0f / sum;
    for (int64_t j = 0; j < jend; j++) s[j] *= inv;
  }
  mm(S, lds, 0, a->v + b * a->kvBatchStride + kvh * D, a->Hkv * D, 0, out0, a->Hq * D, i1 - i0, D, jend, 1.0f, 0);
}

void lm_attention(const lm_attn_args *a) {
  if (a->B == 0 || a->Tq == 0 || a->Hq == 0 || a->D == 0) return;
  int64_t nqb = (a->Tq + QB - 1) / QB;
  lm_parallel(a->B * a->Hq * nqb, attn_fwd_task, (void *)a);
}

/* ---- many decoding sequences in one parallel region: task t is task t - first[i] of item i */
typedef struct { lm_attn_args *args; int64_t *first; int64_t nitems; } decode_ctx;

static void attn_decode_task(void *vctx, int64_t t, int tid) {
  const decode_ctx *x = vctx;
  int64_t lo = 0, hi = x->nitems - 1;        /* the last item whose first task is <= t */
  while (lo < hi) { int64_t mid = (lo + hi + 1) / 2; if (x->first[mid] <= t) lo = mid; else hi = mid - 1; }
  attn_fwd_task(&x->args[lo], t - x->first[lo], tid);
}

void lm_attention_decode(const float *q, const float *knew, const float *vnew, float *out, float *lse,
                         const lm_decode_item *items, int64_t nitems, int64_t Hq, int64_t Hkv, int64_t D, float scale) {
  if (nitems <= 0 || Hq == 0 || D == 0) return;
  lm_attn_args *args = calloc((size_t)nitems, sizeof *args);
  int64_t *first = calloc((size_t)nitems, sizeof *first);
  if (!args || !first) { free(args); free(first); return; }
  const int64_t kv = Hkv * D;
  int64_t tasks = 0;
  for (int64_t i = 0; i < nitems; i++) {
    const lm_decode_item *it = &items[i];
    memcpy(it->kcache + it->start * kv, knew + it->row * kv, sizeof(float) * (size_t)(it->n * kv));
    memcpy(it->vcache + it->start * kv, vnew + it->row * kv, sizeof(float) * (size_t)(it->n * kv));
    lm_attn_args *a = &args[i];
    a->q = q + it->row * Hq * D; a->out = out + it->row * Hq * D; a->lse = lse + it->row * Hq;
    a->k = it->kcache; a->v = it->vcache;
    a->B = 1; a->Tq = it->n; a->Tk = it->start + it->n; a->Hq = Hq; a->Hkv = Hkv; a->D = D;
    a->scale = scale; a->causal = 1;
    first[i] = tasks;
    tasks += Hq * ((it->n + QB - 1) / QB);
  }
  decode_ctx x = { args, first, nitems };
  lm_parallel(tasks, attn_decode_task, &x);
  free(args); free(first);
}

static void attn_bwd_task(void *vctx, int64_t t, int tid) {
  const lm_attn_args *a = vctx;
  const int64_t D = a->D, group = a->Hq / a->Hkv, Tk = a->Tk, nqb = (a->Tq + QB - 1) / QB;
  const int64_t b = t / a->Hkv, kvh = t % a->Hkv;
  const int64_t ldkv = a->Hkv * D, ldq = a->Hq * D, lds = Tk + 8;
  float *dk = a->dk + (b * Tk * a->Hkv + kvh) * D, *dv = a->dv + (b * Tk * a->Hkv + kvh) * D;
  const float *kb = a->k + b * a->kvBatchStride + kvh * D, *vb = a->v + b * a->kvBatchStride + kvh * D;
  float *P = lm_scratch(3, sizeof(float) * (size_t)(2 * QB * lds));
  float *dP = P + QB * lds;
  for (int64_t j = 0; j < Tk; j++) {     /* this task owns the dk/dv rows (b, *, kvh) */
    memset(dk + j * ldkv, 0, sizeof(float) * (size_t)D);
    memset(dv + j * ldkv, 0, sizeof(float) * (size_t)D);
  }
  for (int64_t h = kvh * group; h < (kvh + 1) * group; h++) {
    for (int64_t qb = 0; qb < nqb; qb++) {
      const int64_t i0 = qb * QB, i1 = i0 + QB < a->Tq ? i0 + QB : a->Tq, rows = i1 - i0;
      const int64_t jend = visible_end(a, i1 - 1);
      const int64_t row0 = ((b * a->Tq + i0) * a->Hq + h) * D;
      float *dq = a->dq + row0;
      const float *q = a->q + row0, *dO = a->dout + row0;
      if (jend == 0) {
        for (int64_t i = 0; i < rows; i++) memset(dq + i * ldq, 0, sizeof(float) * (size_t)D);
        continue;
      }
      scores(a, b, h, kvh, i0, i1, jend, P, lds);
      mm(dO, ldq, 0, vb, ldkv, 1, dP, lds, rows, jend, D, 1.0f, 0);            /* dP = dO V^T */
      for (int64_t i = 0; i < rows; i++) {
        float *p = P + i * lds, *dp = dP + i * lds;
        float lse = a->lse[(b * a->Hq + h) * a->Tq + i0 + i];
        if (lse == -INFINITY) {            /* nothing visible: no gradient */
          memset(p, 0, sizeof(float) * (size_t)jend); memset(dp, 0, sizeof(float) * (size_t)jend);
          continue;
        }
        lm_exp_shift_sum(p, lse, p, jend);  /* P = exp(S - lse) */
        float delta = lm_dot(p, dp, jend);
        for (int64_t j = 0; j < jend; j++) dp[j] = p[j] * (dp[j] - delta) * a->scale;   /* dS */
      }
      mm(dP, lds, 0, kb, ldkv, 0, dq, ldq, rows, D, jend, 1.0f, 0);            /* dQ = dS K */
      mm(dP, lds, 1, q, ldq, 0, dk, ldkv, jend, D, rows, 1.0f, 1);             /* dK += dS^T Q */
      mm(P, lds, 1, dO, ldq, 0, dv, ldkv, jend, D, rows, 1.0f, 1);             /* dV += P^T dO */
    }
  }
}

void lm_attention_backward(const lm_attn_args *a) {
  if (a->B == 0 || a->Hkv == 0 || a->D == 0) return;
  lm_parallel(a->B * a->Hkv, attn_bwd_task, (void *)a);
}

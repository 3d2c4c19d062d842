/*
 * Single-precision GEMM: C = alpha op(A) op(B) (+ C), batched, row-major.
 *
 * Structure (the Goto/BLIS scheme, with packing hoisted over the whole of k):
 *   for jc in N by NCB (NCB: packed B of k x NCB stays under ~12 MB, in L3):
 *     pack op(B)[:, jc] into KC x NR column panels, per KC slice    <- threads take panels
 *     for ic in M by MC:                                            <- threads take row blocks
 *       pack op(A)[ic, :] into MR x KC row panels, per KC slice (each slice ~190 KB, in L2)
 *       for pc in K by KC:  for jr by NR:  for ir by MR:
 *         microkernel: an MR x NR tile of C in registers, C += alpha A_panel B_panel
 * Both packings read their source along its contiguous axis (whole rows), which keeps the
 * hardware prefetchers streaming; transposes are absorbed by the packing. Edges are zero-padded
 * in the panels and the microkernel writes the valid part only. With several threads, B is
 * packed once into a shared buffer and row blocks of A are split among threads, so no operand
 * is packed twice; a batch of at least T products runs one product per thread instead.
 *
 * Microkernels: AVX-512 12x32 (24 zmm accumulators), AVX2+FMA 6x16 (12 ymm accumulators), NEON
 * 8x12 on arm64 (24 q-register accumulators), and a portable 4x16 C kernel. The x86 kernels carry
 * target attributes and are chosen at run time from the CPU, so one build runs anywhere.
 *
 * Determinism: every element of C is the sum over k in the same order (KC blocks in turn, FMA
 * chains inside a block) whichever task computes it, so results do not depend on the thread
 * count. They do depend on the microkernel (its FMA contraction), i.e. on the CPU.
 */
#include "lumen.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LM_X86 1
#endif

typedef void (*ukr_fn)(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, float alpha, int beta);

typedef struct {
  const char *name;
  int MR, NR, MC, KC, NC;
  ukr_fn ukr;
} kernel_t;

/* ---------------------------------------------------------------- portable microkernel */

#define GMR 4
#define GNR 16
static void ukr_generic(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, float alpha, int beta) {
  float acc[GMR][GNR];
  memset(acc, 0, sizeof acc);
  for (int64_t p = 0; p < kc; p++) {
    const float *a = A + p * GMR, *b = B + p * GNR;
    for (int i = 0; i < GMR; i++) {
      float ai = a[i];
      for (int j = 0; j < GNR; j++) acc[i][j] += ai * b[j];
    }
  }
  for (int i = 0; i < GMR; i++)
    for (int j = 0; j < GNR; j++)
      C[i * ldc + j] = alpha * acc[i][j] + (beta ? C[i * ldc + j] : 0.0f);
}

#if defined(__aarch64__)
/* ---------------------------------------------------------------- NEON 8x12 (arm64) */
#include <arm_neon.h>
#define NMR 8
#define NNR 12
static void ukr_neon(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, float alpha, int beta) {
  float32x4_t acc[NMR][3];
  for (int i = 0; i < NMR; i++) acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.0f);
  for (int64_t p = 0; p < kc; p++) {
    float32x4_t b0 = vld1q_f32(B), b1 = vld1q_f32(B + 4), b2 = vld1q_f32(B + 8);
    for (int i = 0; i < NMR; i++) {
      acc[i][0] = vfmaq_n_f32(acc[i][0], b0, A[i]);
      acc[i][1] = vfmaq_n_f32(acc[i][1], b1, A[i]);
      acc[i][2] = vfmaq_n_f32(acc[i][2], b2, A[i]);
    }
    A += NMR; B += NNR;
  }
  for (int i = 0; i < NMR; i++) {
    float *cr = C + i * ldc;
    for (int q = 0; q < 3; q++) {
      float32x4_t r = vmulq_n_f32(acc[i][q], alpha);
      if (beta) r = vaddq_f32(r, vld1q_f32(cr + 4 * q));
      vst1q_f32(cr + 4 * q, r);
    }
  }
}
#endif

#if defined(LM_X86)
/* ---------------------------------------------------------------- AVX2 + FMA 6x16 */

__attribute__((target("avx2,fma")))
static void ukr_avx2(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, float alpha, int beta) {
  if (beta) for (int r = 0; r < 6; r++) { _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0); _mm_prefetch((const char *)(C + r * ldc + 8), _MM_HINT_T0); }
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t p = 0; p < kc; p++) {
    __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
    __m256 a;
    a = _mm256_broadcast_ss(A + 0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(A + 1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(A + 2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(A + 3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(A + 4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(A + 5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    A += 6; B += 16;
  }
  __m256 al = _mm256_set1_ps(alpha);
#define ST2(r, x0, x1) do { float *cr = C + (r) * ldc; \
    if (beta) { _mm256_storeu_ps(cr, _mm256_fmadd_ps(x0, al, _mm256_loadu_ps(cr))); \
                _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(x1, al, _mm256_loadu_ps(cr + 8))); } \
    else { _mm256_storeu_ps(cr, _mm256_mul_ps(x0, al)); _mm256_storeu_ps(cr + 8, _mm256_mul_ps(x1, al)); } } while (0)
  ST2(0, c00, c01); ST2(1, c10, c11); ST2(2, c20, c21); ST2(3, c30, c31); ST2(4, c40, c41); ST2(5, c50, c51);
#undef ST2
}

/* ---------------------------------------------------------------- AVX-512 12x32 */

__attribute__((target("avx512f")))
static void ukr_avx512(int64_t kc, const float *A, const float *B, float *C, int64_t ldc, float alpha, int beta) {
  /* fetch the C tile now: it is read at the end, and across KC slices it is usually not in L1/L2 */
  if (beta) for (int r = 0; r < 12; r++) { _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T0); _mm_prefetch((const char *)(C + r * ldc + 16), _MM_HINT_T0); }
  __m512 z = _mm512_setzero_ps();
  __m512 c0a = z, c0b = z, c1a = z, c1b = z, c2a = z, c2b = z, c3a = z, c3b = z, c4a = z, c4b = z, c5a = z, c5b = z;
  __m512 c6a = z, c6b = z, c7a = z, c7b = z, c8a = z, c8b = z, c9a = z, c9b = z, cAa = z, cAb = z, cBa = z, cBb = z;
  for (int64_t p = 0; p < kc; p++) {
    __m512 b0 = _mm512_load_ps(B), b1 = _mm512_load_ps(B + 16);
    __m512 a;
#define R(i, x, y) a = _mm512_set1_ps(A[i]); x = _mm512_fmadd_ps(a, b0, x); y = _mm512_fmadd_ps(a, b1, y);
    R(0, c0a, c0b) R(1, c1a, c1b) R(2, c2a, c2b) R(3, c3a, c3b) R(4, c4a, c4b) R(5, c5a, c5b)
    R(6, c6a, c6b) R(7, c7a, c7b) R(8, c8a, c8b) R(9, c9a, c9b) R(10, cAa, cAb) R(11, cBa, cBb)
#undef R
    A += 12; B += 32;
  }
  __m512 al = _mm512_set1_ps(alpha);
#define ST(r, x0, x1) do { float *cr = C + (r) * ldc; \
    if (beta) { _mm512_storeu_ps(cr, _mm512_fmadd_ps(x0, al, _mm512_loadu_ps(cr))); \
                _mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(x1, al, _mm512_loadu_ps(cr + 16))); } \
    else { _mm512_storeu_ps(cr, _mm512_mul_ps(x0, al)); _mm512_storeu_ps(cr + 16, _mm512_mul_ps(x1, al)); } } while (0)
  ST(0, c0a, c0b); ST(1, c1a, c1b); ST(2, c2a, c2b); ST(3, c3a, c3b); ST(4, c4a, c4b); ST(5, c5a, c5b);
  ST(6, c6a, c6b); ST(7, c7a, c7b); ST(8, c8a, c8b); ST(9, c9a, c9b); ST(10, cAa, cAb); ST(11, cBa, cBb);
#undef ST
}
#endif

static const kernel_t K_GENERIC = { "generic 4x16", GMR, GNR, 128, 256, 4096, ukr_generic };
#if defined(__aarch64__)
static const kernel_t K_NEON = { "neon 8x12", NMR, NNR, 128, 256, 4092, ukr_neon };
#endif
#if defined(LM_X86)
static const kernel_t K_AVX2 = { "avx2+fma 6x16", 6, 16, 120, 256, 4096, ukr_avx2 };
static const kernel_t K_AVX512 = { "avx512f 12x32", 12, 32, 192, 256, 4096, ukr_avx512 };
#endif

static const kernel_t *active = NULL;
#if defined(LM_X86)
/* LUMEN_GEMM_SMALL_M=0 turns the unpacked few-rows path off (for comparisons); on by default. */
static int small_m_enabled = -1;
static int getenv_small_m_enabled(void) {
  if (small_m_enabled < 0) { const char *e = getenv("LUMEN_GEMM_SMALL_M"); small_m_enabled = !(e && e[0] == '0'); }
  return small_m_enabled;
}
#endif

static const kernel_t *pick_kernel(void) {
  if (active) return active;
  const kernel_t *k = &K_GENERIC;
#if defined(__aarch64__)
  const char *forced = getenv("LUMEN_GEMM_KERNEL");
  if (!forced || strcmp(forced, "generic") != 0) k = &K_NEON;
#endif
#if defined(LM_X86)
  __builtin_cpu_init();
  const char *force = getenv("LUMEN_GEMM_KERNEL");
  const char *no512 = getenv("LUMEN_NO_AVX512");
  int want512 = (!force || strcmp(force, "avx512") == 0) && !(no512 && no512[0] == '1');
  int want2 = !force || strcmp(force, "avx2") == 0 || want512;
  if (want512 && __builtin_cpu_supports("avx512f")) k = &K_AVX512;
  else if (want2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) k = &K_AVX2;
#endif
  active = k;
  return k;
}

const char *lm_gemm_kernel_name(void) { return pick_kernel()->name; }

/** Selects the microkernel by name prefix ("avx512", "avx2", "generic"); returns 0 if unavailable. */
int lm_gemm_select(const char *name) {
#if defined(LM_X86)
  __builtin_cpu_init();
  if (strcmp(name, "avx512") == 0) { if (!__builtin_cpu_supports("avx512f")) return 0; active = &K_AVX512; return 1; }
  if (strcmp(name, "avx2") == 0) {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    active = &K_AVX2; return 1;
  }
#endif
#if defined(__aarch64__)
  if (strcmp(name, "neon") == 0) { active = &K_NEON; return 1; }
#endif
  if (strcmp(name, "generic") == 0) { active = &K_GENERIC; return 1; }
  return 0;
}

/* ---------------------------------------------------------------- packing
 *
 * Packed layout, for a block of rows (A) or columns (B) over the whole of k: one sub-block per
 * KC slice of k (stride `bstride` floats), inside it panels of MR rows (NR columns) stored
 * k-major: Ap[slice][panel][p][i], Bp[slice][panel][p][j]. Panels are zero-padded to MR / NR.
 *
 * The source is always read along its contiguous axis over the whole of k (or the whole row
 * block), never column-panel by column-panel: walking a row-major matrix 128 bytes at a time
 * with a stride of a full row defeats the prefetchers and the TLB, and was 4x slower. */

/* memcpy of n floats with the panel widths as compile-time sizes (inlined moves, no call) */
static inline void copy_small(float *d, const float *s, int n) {
  switch (n) {
    case 4: memcpy(d, s, 16); return;
    case 6: memcpy(d, s, 24); return;
    case 8: memcpy(d, s, 32); return;
    case 12: memcpy(d, s, 48); return;
    case 16: memcpy(d, s, 64); return;
    case 32: memcpy(d, s, 128); return;
    default: memcpy(d, s, sizeof(float) * (size_t)n); return;
  }
}

/* A full (R x 8) tile, R a compile-time constant after inlining: rows i of the source (element
 * (i, p) at s[i*rs + p]) become dst[p*R + i]. */
static inline __attribute__((always_inline)) void transpose_fixed(const float *s, int64_t rs, float *dst, const int R) {
  float t[32][8];
  for (int i = 0; i < R; i++) memcpy(t[i], s + i * rs, sizeof(float) * 8);
  for (int p = 0; p < 8; p++)
    for (int i = 0; i < R; i++) dst[p * R + i] = t[i][p];
}

/* Copies a (rows x np) tile, rows <= 32, np <= 8, source element (i, p) at s[i*rs + p], into
 * dst[p*ld + i]. */
static inline void transpose_tile(const float *s, int64_t rs, int rows, int np, float *dst, int ld) {
  if (np == 8 && rows == ld) {
    switch (rows) {
      case 4: transpose_fixed(s, rs, dst, 4); return;
      case 6: transpose_fixed(s, rs, dst, 6); return;
      case 8: transpose_fixed(s, rs, dst, 8); return;
      case 12: transpose_fixed(s, rs, dst, 12); return;
      case 16: transpose_fixed(s, rs, dst, 16); return;
      case 32: transpose_fixed(s, rs, dst, 32); return;
      default: break;
    }
  }
  float t[32][8];
  for (int i = 0; i < rows; i++)
    for (int p = 0; p < np; p++) t[i][p] = s[i * rs + p];
  for (int p = 0; p < np; p++)
    for (int i = 0; i < rows; i++) dst[p * ld + i] = t[i][p];
}

/* source rows packed at a time, per panel (see pack_at_rows) */
#define PACK_P 8
static void pack_at_rows(const float *src, int64_t cs, int64_t mc, int64_t kc, int64_t p0, int64_t p1, int MR, float *blk);

/* Rows [0, mc) x k of op(A): element (i, p) at src[i*rs + p*cs]; either rs == 1 or cs == 1. */
static void pack_a_full(const float *src, int64_t rs, int64_t cs, int64_t mc, int64_t k, int MR, int64_t KC,
                        int64_t bstride, float *dst) {
  const int64_t npan = (mc + MR - 1) / MR;
  for (int64_t pc = 0; pc < k; pc += KC) {
    int64_t kc = k - pc < KC ? k - pc : KC;
    float *blk = dst + (pc / KC) * bstride;
    if (cs == 1) {                                  /* A row-major: rows are contiguous in k */
      for (int64_t r = 0; r < npan; r++) {
        int rows = (int)(mc - r * MR < MR ? mc - r * MR : MR);
        float *pan = blk + r * MR * kc;
        for (int64_t p0 = 0; p0 < kc; p0 += 8) {
          int np = (int)(kc - p0 < 8 ? kc - p0 : 8);
          transpose_tile(src + r * MR * rs + pc + p0, rs, rows, np, pan + p0 * MR, MR);
          if (rows < MR) for (int p = 0; p < np; p++) memset(pan + (p0 + p) * MR + rows, 0, sizeof(float) * (size_t)(MR - rows));
        }
      }
    } else {                                        /* A transposed: columns of op(A) contiguous in i */
      pack_at_rows(src + pc * cs, cs, mc, kc, 0, kc, MR, blk);
    }
  }
}

/* Transposed A (op(A) element (i, p) at src[p*cs + i]), k-rows [p0, p1) of one KC slice of kc
 * rows, all mc rows of op(A): into the slice's panels at blk. PACK_P source rows at a time, panel
 * by panel: writing one MR-float piece of every panel per source row instead puts each panel's
 * partial cache line at a stride of MR·kc floats (6 KB for 6 x 256, or 16 KB), which lands all
 * panels in the same few L1 sets; lines were evicted half written and packing ran at 1-2 GB/s. */
static void pack_at_rows(const float *src, int64_t cs, int64_t mc, int64_t kc, int64_t p0, int64_t p1, int MR, float *blk) {
  const int64_t npan = (mc + MR - 1) / MR;
  for (int64_t q0 = p0; q0 < p1; q0 += PACK_P) {
    int64_t q1 = q0 + PACK_P < p1 ? q0 + PACK_P : p1;
    for (int64_t r = 0; r < npan; r++) {
      int rows = (int)(mc - r * MR < MR ? mc - r * MR : MR);
      for (int64_t p = q0; p < q1; p++) {
        float *d = blk + r * MR * kc + p * MR;
        copy_small(d, src + p * cs + r * MR, rows);
        if (rows < MR) memset(d + rows, 0, sizeof(float) * (size_t)(MR - rows));
      }
    }
  }
}

/* Columns [0, nc) x k of op(B): element (p, j) at src[p*rs + j*cs]; either cs == 1 or rs == 1.
 * They become panels q0, q0+1, ... of the packed block (so threads can pack disjoint panels). */
static void pack_b_full(const float *src, int64_t rs, int64_t cs, int64_t k, int64_t nc, int NR, int64_t KC,
                        int64_t bstride, float *dst, int64_t q0) {
  const int64_t npan = (nc + NR - 1) / NR;
  for (int64_t pc = 0; pc < k; pc += KC) {
    int64_t kc = k - pc < KC ? k - pc : KC;
    float *blk = dst + (pc / KC) * bstride + q0 * NR * kc;   /* panels q0.. of this slice */
    if (cs == 1) {                                  /* B row-major: PACK_P whole rows of B at a time */
      for (int64_t p0 = 0; p0 < kc; p0 += PACK_P) {
        int64_t p1 = p0 + PACK_P < kc ? p0 + PACK_P : kc;
        for (int64_t q = 0; q < npan; q++) {
          int cols = (int)(nc - q * NR < NR ? nc - q * NR : NR);
          for (int64_t p = p0; p < p1; p++) {
            float *d = blk + q * NR * kc + p * NR;
            copy_small(d, src + (pc + p) * rs + q * NR, cols);
            if (cols < NR) memset(d + cols, 0, sizeof(float) * (size_t)(NR - cols));
          }
        }
      }
    } else {                                        /* B transposed: rows of B^T contiguous in k */
      for (int64_t q = 0; q < npan; q++) {
        int cols = (int)(nc - q * NR < NR ? nc - q * NR : NR);
        float *pan = blk + q * NR * kc;
        for (int64_t p0 = 0; p0 < kc; p0 += 8) {
          int np = (int)(kc - p0 < 8 ? kc - p0 : 8);
          transpose_tile(src + q * NR * cs + pc + p0, cs, cols, np, pan + p0 * NR, NR);
          if (cols < NR) for (int p = 0; p < np; p++) memset(pan + (p0 + p) * NR + cols, 0, sizeof(float) * (size_t)(NR - cols));
        }
      }
    }
  }
}

/* ---------------------------------------------------------------- driver */

typedef struct { const lm_gemm_args *g; const kernel_t *K; } gemm_ctx;

static int64_t round_up(int64_t x, int64_t q) { return (x + q - 1) / q * q; }

/* packed B of one column block is kept under this many floats (it lives in L3) */
#define B_BUDGET ((int64_t)3 << 20)
/* a transposed A is packed whole, once, when it takes at most this many floats (see pack_at_task) */
#define AT_BUDGET ((int64_t)8 << 20)

/* All rows of op(A) packed once: slice s, panel r at p + s*bstride + r*MR*kc(s). */
typedef struct { const float *p; int64_t bstride; } packed_a;

/* Rows [m0, m1) x columns [jc, jc + nc) of C (batch item bi) against B already packed in Bp:
 * packs A one MC block of rows at a time (over the whole of k) and runs the microkernels. */
static void gemm_rows(const lm_gemm_args *g, const kernel_t *K, int64_t bi, int64_t m0, int64_t m1,
                      int64_t jc, int64_t nc, const float *Bp, int64_t bstrideB, const packed_a *PA) {
  const int MR = K->MR, NR = K->NR;
  const float *A = g->a + bi * g->strideA;
  float *C = g->c + bi * g->strideC;
  const int64_t m = g->m, k = g->k, ldc = g->ldc ? g->ldc : g->n;
  const int64_t lda = g->lda ? g->lda : (g->transA ? m : k);
  const int64_t ars = g->transA ? 1 : lda, acs = g->transA ? lda : 1;   /* element (i, p) of op(A) */
  const int64_t KC = K->KC, MC = K->MC;
  const int64_t nslices = (k + KC - 1) / KC;
  const int64_t bstrideA = PA ? PA->bstride : round_up(MC, MR) * KC;
  float *Ap = PA ? NULL : lm_scratch(1, sizeof(float) * (size_t)(bstrideA * nslices));
  float tile[32 * 32] __attribute__((aligned(64)));
  for (int64_t ic = m0; ic < m1; ic += MC) {
    int64_t mc = m1 - ic < MC ? m1 - ic : MC;
    if (!PA) pack_a_full(A + ic * ars, ars, acs, mc, k, MR, KC, bstrideA, Ap);
    for (int64_t pc = 0; pc < k; pc += KC) {
      int64_t kc = k - pc < KC ? k - pc : KC;
      int beta = pc > 0 || g->accumulate;
      /* with A packed whole, this block's panels start at panel ic / MR of the slice */
      const float *As = PA ? PA->p + (pc / KC) * bstrideA + (ic / MR) * MR * kc : Ap + (pc / KC) * bstrideA;
      const float *Bs = Bp + (pc / KC) * bstrideB;
      for (int64_t jr = 0; jr < nc; jr += NR) {
        int64_t nr = nc - jr < NR ? nc - jr : NR;
        const float *bp = Bs + (jr / NR) * NR * kc;
        for (int64_t ir = 0; ir < mc; ir += MR) {
          int64_t mr = mc - ir < MR ? mc - ir : MR;
          const float *ap = As + (ir / MR) * MR * kc;
          float *c = C + (ic + ir) * ldc + jc + jr;
          if (mr == MR && nr == NR) {
            K->ukr(kc, ap, bp, c, ldc, g->alpha, beta);
          } else {
            if (beta)
              for (int64_t i = 0; i < mr; i++) memcpy(tile + i * NR, c + i * ldc, sizeof(float) * (size_t)nr);
            K->ukr(kc, ap, bp, tile, NR, g->alpha, beta);
            for (int64_t i = 0; i < mr; i++) memcpy(c + i * ldc, tile + i * NR, sizeof(float) * (size_t)nr);
          }
        }
      }
    }
  }
}

static int64_t block_cols(const kernel_t *K, int64_t k) {
  int64_t nslices = (k + K->KC - 1) / K->KC;
  int64_t NCB = (B_BUDGET / (nslices * K->KC)) / K->NR * K->NR;
  if (NCB < K->NR) NCB = K->NR;
  return NCB > K->NC ? K->NC : NCB;
}

static void zero_or_keep(const lm_gemm_args *g, int64_t bi) {   /* k == 0: C = 0 (+ C) */
  const int64_t ldc = g->ldc ? g->ldc : g->n;
  if (!g->accumulate)
    for (int64_t i = 0; i < g->m; i++) memset(g->c + bi * g->strideC + i * ldc, 0, sizeof(float) * (size_t)g->n);
}

/* row and column strides of op(B)'s element (p, j) */
static inline void b_strides(const lm_gemm_args *g, int64_t *brs, int64_t *bcs) {
  const int64_t ldb = g->ldb ? g->ldb : (g->transB ? g->k : g->n);
  *brs = g->transB ? 1 : ldb;
  *bcs = g->transB ? ldb : 1;
}

/* ---- a transposed A packed whole, once, in units of PACK_P rows of k (KC is a multiple of
 * PACK_P, so a unit lies in one slice). Per MC block, the packing would read MC floats of every
 * source row (for dW = X^T dY: a few hundred bytes of each row of X, rows kilobytes apart, a new
 * page almost every row), once per block and column block; whole, it reads each row once and in
 * full. dW products have a small m and a large k; timed alone on one thread, this packing had
 * taken up to 40% of such a product. */
typedef struct { const lm_gemm_args *g; const kernel_t *K; int64_t bi, units, tasks; float *dst; int64_t bstride; } pack_at_ctx;

static void pack_at_task(void *vctx, int64_t t, int tid) {
  pack_at_ctx *x = vctx;
  const lm_gemm_args *g = x->g;
  const int64_t KC = x->K->KC, k = g->k, lda = g->lda ? g->lda : g->m;
  const float *A = g->a + x->bi * g->strideA;
  for (int64_t u = x->units * t / x->tasks; u < x->units * (t + 1) / x->tasks; u++) {
    int64_t p = u * PACK_P, s = p / KC, pc = s * KC, kc = k - pc < KC ? k - pc : KC;
    int64_t p1 = p - pc + PACK_P < kc ? p - pc + PACK_P : kc;
    pack_at_rows(A + pc * lda, lda, g->m, kc, p - pc, p1, x->K->MR, x->dst + s * x->bstride);
  }
}

/* Packs op(A) whole when it is transposed and fits AT_BUDGET, on T threads; 0 otherwise. */
static int pack_a_whole(const lm_gemm_args *g, const kernel_t *K, int64_t bi, int T, packed_a *PA) {
  if (!g->transA) return 0;
  const int64_t bstride = round_up(g->m, K->MR) * K->KC, nslices = (g->k + K->KC - 1) / K->KC;
  if (bstride * nslices > AT_BUDGET) return 0;
  float *dst = lm_scratch(4, sizeof(float) * (size_t)(bstride * nslices));
  if (!dst) return 0;
  int64_t units = (g->k + PACK_P - 1) / PACK_P, tasks = T > 1 ? 4 * T : 1;
  if (tasks > units) tasks = units;
  pack_at_ctx x = { g, K, bi, units, tasks, dst, bstride };
  if (T > 1) lm_parallel(tasks, pack_at_task, &x);
  else pack_at_task(&x, 0, 0);
  PA->p = dst; PA->bstride = bstride;
  return 1;
}

/* ---- few rows (m <= SMALL_M, as in decoding one token per sequence): no packing. Packing B
 * read and wrote the whole of B for every product, and the microkernel then read it again; for
 * a 1-row product that ran at 6-7 GB/s of weights. Here B is read once, in place. Each element
 * of C is computed as the FMA microkernels compute it (a chain of FMAs from zero over each KC
 * slice, in order of p; then C = acc * alpha, or C += acc * alpha by one FMA for later slices
 * and when accumulating), so a row's result does not depend on how many rows the product has
 * nor on which path computed it. Only for the AVX2 and AVX-512 kernels (both KC = 256); the
 * portable and NEON kernels keep the packed path. */
#define SMALL_M 8
#if defined(LM_X86)
typedef struct { const lm_gemm_args *g; int64_t bi, KC, jblocks, tasks; } small_ctx;

/* element (i, p) of op(A) */
static inline float a_at(const float *A, int64_t ars, int64_t acs, int64_t i, int64_t p) { return A[i * ars + p * acs]; }

__attribute__((target("avx2,fma")))
static void small_store(const lm_gemm_args *g, float *C, int64_t ldc, int m, int64_t j0, int nj, const __m256 *acc, float alpha, int beta) {
  const __m256 al = _mm256_set1_ps(alpha);
  for (int i = 0; i < m; i++) {
    float *cr = C + i * ldc + j0;
    if (nj == 8) {
      _mm256_storeu_ps(cr, beta ? _mm256_fmadd_ps(acc[i], al, _mm256_loadu_ps(cr)) : _mm256_mul_ps(acc[i], al));
    } else {
      float t[8] __attribute__((aligned(32)));
      for (int r = 0; r < nj; r++) t[r] = cr[r];
      __m256 v = beta ? _mm256_fmadd_ps(acc[i], al, _mm256_load_ps(t)) : _mm256_mul_ps(acc[i], al);
      _mm256_store_ps(t, v);
      for (int r = 0; r < nj; r++) cr[r] = t[r];
    }
  }
}

/* op(B) = B^T (B is n x k, rows contiguous along p): 8 rows of B, 8 values of p at a time,
 * transposed in registers so that each vector holds columns j0..j0+7 of op(B) at one p. Each
 * accumulator is one chain of FMAs (4-5 cycles each), so JB column blocks are in flight at once
 * for few rows; M and JB are compile-time constants, which keeps the accumulators in registers. */
__attribute__((target("avx2,fma"), always_inline))
static inline void tb_load_cols(const float *B, int64_t ldb, int64_t j0, int nj, int64_t p, __m256 col[8]) {
  const __m256 zero = _mm256_setzero_ps();
  __m256 r0, r1, r2, r3, r4, r5, r6, r7;
#define ROW(r, v) v = (r) < nj ? _mm256_loadu_ps(B + (j0 + (r)) * ldb + p) : zero;
  ROW(0, r0) ROW(1, r1) ROW(2, r2) ROW(3, r3) ROW(4, r4) ROW(5, r5) ROW(6, r6) ROW(7, r7)
#undef ROW
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5), t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE), s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE), s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  col[0] = _mm256_permute2f128_ps(s0, s4, 0x20); col[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  col[2] = _mm256_permute2f128_ps(s2, s6, 0x20); col[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  col[4] = _mm256_permute2f128_ps(s0, s4, 0x31); col[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  col[6] = _mm256_permute2f128_ps(s2, s6, 0x31); col[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Column blocks [jb0, jb0 + JB) (the last may be partial), M rows, all KC slices; TB: op(B) = B^T
 * (B is n x k: 8 rows at a time, 8 values of p, transposed in registers), else op(B) = B (k x n:
 * one vector of 8 columns per p). M, JB and TB are compile-time constants at every call. */
__attribute__((target("avx2,fma"), always_inline))
static inline void small_blocks(const lm_gemm_args *g, const float *A, int64_t ars, int64_t acs, const float *B, int64_t ldb,
                                float *C, int64_t ldc, int64_t KC, int64_t jb0, const int M, const int JB, const int TB) {
  const int64_t k = g->k, n = g->n;
  int nj[4];
  for (int b = 0; b < JB; b++) { int64_t r = n - (jb0 + b) * 8; nj[b] = r >= 8 ? 8 : r > 0 ? (int)r : 0; }
  for (int64_t pc = 0; pc < k; pc += KC) {
    const int64_t pe = k - pc < KC ? k : pc + KC;
    __m256 acc[4][SMALL_M];
    for (int b = 0; b < JB; b++) for (int i = 0; i < M; i++) acc[b][i] = _mm256_setzero_ps();
    int64_t p = pc;
    if (TB) {
      for (; p + 8 <= pe; p += 8) {
        for (int b = 0; b < JB; b++) {
          __m256 col[8];
          tb_load_cols(B, ldb, (jb0 + b) * 8, nj[b], p, col);
          for (int i = 0; i < M; i++)
            for (int q = 0; q < 8; q++) acc[b][i] = _mm256_fmadd_ps(_mm256_set1_ps(a_at(A, ars, acs, i, p + q)), col[q], acc[b][i]);
        }
      }
    }
    for (; p < pe; p++) {   /* op(B) = B: every p; B^T: the last k mod 8 of the slice */
      for (int b = 0; b < JB; b++) {
        __m256 bv;
        if (!TB && nj[b] == 8) bv = _mm256_loadu_ps(B + p * ldb + (jb0 + b) * 8);
        else {
          float v[8] __attribute__((aligned(32))) = { 0 };
          for (int r = 0; r < nj[b]; r++) v[r] = TB ? B[((jb0 + b) * 8 + r) * ldb + p] : B[p * ldb + (jb0 + b) * 8 + r];
          bv = _mm256_load_ps(v);
        }
        for (int i = 0; i < M; i++) acc[b][i] = _mm256_fmadd_ps(_mm256_set1_ps(a_at(A, ars, acs, i, p)), bv, acc[b][i]);
      }
    }
    for (int b = 0; b < JB; b++) if (nj[b] > 0) small_store(g, C, ldc, M, (jb0 + b) * 8, nj[b], acc[b], g->alpha, pc > 0 || g->accumulate);
  }
}

/* Column blocks [b0, b1) of a small-m product: JB blocks at a time (more for fewer rows), each
 * call with compile-time M and JB. */
#define SMALL_CASE(m_, jb_, TB) \
  case (m_) * 8 + (jb_): small_blocks(g, A, ars, acs, B, ldb, C, ldc, x->KC, j, m_, jb_, TB); break;
#define SMALL_DISPATCH(TB)                                                                            \
  do {                                                                                               \
    const int JB = g->m <= 2 ? 4 : g->m <= 4 ? 2 : 1;                                                  \
    for (int64_t jb = b0; jb < b1; jb += JB) {                                                       \
      const int one = jb + JB > b1; /* fewer than JB blocks left: one at a time */                  \
      for (int64_t j = jb; j < (one ? b1 : jb + 1); j++) {                                           \
        switch (g->m * 8 + (one ? 1 : JB)) {                                                         \
          SMALL_CASE(1, 4, TB) SMALL_CASE(2, 4, TB) SMALL_CASE(3, 2, TB) SMALL_CASE(4, 2, TB)           \
          SMALL_CASE(1, 1, TB) SMALL_CASE(2, 1, TB) SMALL_CASE(3, 1, TB) SMALL_CASE(4, 1, TB)           \
          SMALL_CASE(5, 1, TB) SMALL_CASE(6, 1, TB) SMALL_CASE(7, 1, TB) SMALL_CASE(8, 1, TB)           \
        }                                                                                            \
      }                                                                                              \
    }                                                                                                \
  } while (0)

#define SMALL_TASK(name, TB, ldb_default)                                                            \
  __attribute__((target("avx2,fma"))) static void name(void *vctx, int64_t t, int tid) {            \
    small_ctx *x = vctx;                                                                             \
    const lm_gemm_args *g = x->g;                                                                    \
    const int64_t k = g->k, n = g->n, ldc = g->ldc ? g->ldc : n;                                     \
    const int64_t lda = g->lda ? g->lda : (g->transA ? g->m : k), ldb = g->ldb ? g->ldb : (ldb_default); \
    const int64_t ars = g->transA ? 1 : lda, acs = g->transA ? lda : 1;                              \
    const float *A = g->a + x->bi * g->strideA, *B = g->b + x->bi * g->strideB;                      \
    float *C = g->c + x->bi * g->strideC;                                                            \
    const int64_t b0 = x->jblocks * t / x->tasks, b1 = x->jblocks * (t + 1) / x->tasks;              \
    SMALL_DISPATCH(TB);                                                                              \
  }
SMALL_TASK(small_task_tb, 1, k)
SMALL_TASK(small_task_nb, 0, n)
#endif

static int small_m_path(const kernel_t *K) {
#if defined(LM_X86)
  return (K == &K_AVX2 || K == &K_AVX512) && getenv_small_m_enabled();
#else
  (void)K; return 0;
#endif
}

/* Batch item bi of a product with m <= SMALL_M, on T threads (column blocks split among them). */
static void gemm_small(const lm_gemm_args *g, const kernel_t *K, int64_t bi, int T) {
#if defined(LM_X86)
  if (g->k == 0) { zero_or_keep(g, bi); return; }
  small_ctx x = { g, bi, K->KC, (g->n + 7) / 8, 1 };
  /* threads only where each gets at least ~256 KB of B: waking the pool costs ~10 us */
  int64_t want = g->n * g->k / (64 * 1024);
  if (T > 1 && want > 1) {
    x.tasks = want < 4 * T ? want : 4 * T;
    if (x.tasks > x.jblocks) x.tasks = x.jblocks;
    lm_parallel(x.tasks, g->transB ? small_task_tb : small_task_nb, &x);
  } else if (g->transB) small_task_tb(&x, 0, 0);
  else small_task_nb(&x, 0, 0);
#else
  (void)g; (void)K; (void)bi; (void)T;
#endif
}

/* One whole product (batch item bi) on the calling thread. */
static void gemm_serial(const lm_gemm_args *g, const kernel_t *K, int64_t bi) {
  if (g->m <= SMALL_M && small_m_path(K)) { gemm_small(g, K, bi, 1); return; }
  if (g->k == 0) { zero_or_keep(g, bi); return; }
  const int64_t k = g->k, KC = K->KC, nslices = (k + KC - 1) / KC;
  int64_t brs, bcs;
  b_strides(g, &brs, &bcs);
  const int64_t NCB = block_cols(K, k), bstrideB = round_up(NCB, K->NR) * KC;
  float *Bp = lm_scratch(0, sizeof(float) * (size_t)(bstrideB * nslices));
  const float *B = g->b + bi * g->strideB;
  packed_a PA;
  int whole = pack_a_whole(g, K, bi, 1, &PA);
  for (int64_t jc = 0; jc < g->n; jc += NCB) {
    int64_t nc = g->n - jc < NCB ? g->n - jc : NCB;
    pack_b_full(B + jc * bcs, brs, bcs, k, nc, K->NR, KC, bstrideB, Bp, 0);
    gemm_rows(g, K, bi, 0, g->m, jc, nc, Bp, bstrideB, whole ? &PA : NULL);
  }
}

/* ---- one product on all threads: B packed once into a shared buffer (threads take disjoint
 * panels), then threads take blocks of rows, each packing its own rows of A. No operand is
 * packed twice. */
typedef struct {
  const lm_gemm_args *g; const kernel_t *K; int64_t bi;
  int64_t jc, nc, bstrideB; float *Bp;
  int64_t panels_per_task, mblocks, mtasks;   /* row task t: MR-blocks [mblocks t / mtasks, mblocks (t+1) / mtasks) */
  const packed_a *PA;                          /* A packed whole, or NULL (each task packs its rows) */
} shared_ctx;

static void shared_pack_task(void *vctx, int64_t t, int tid) {
  shared_ctx *x = vctx;
  const lm_gemm_args *g = x->g;
  const int64_t NR = x->K->NR, k = g->k;
  int64_t brs, bcs;
  b_strides(g, &brs, &bcs);
  int64_t q0 = t * x->panels_per_task, c0 = q0 * NR, c1 = c0 + x->panels_per_task * NR;
  if (c1 > x->nc) c1 = x->nc;
  if (c0 >= c1) return;
  pack_b_full(g->b + x->bi * g->strideB + (x->jc + c0) * bcs, brs, bcs, k, c1 - c0, (int)NR, x->K->KC, x->bstrideB, x->Bp, q0);
}

static void shared_rows_task(void *vctx, int64_t t, int tid) {
  shared_ctx *x = vctx;
  const int64_t MR = x->K->MR;
  int64_t m0 = x->mblocks * t / x->mtasks * MR, m1 = x->mblocks * (t + 1) / x->mtasks * MR;
  if (m1 > x->g->m) m1 = x->g->m;
  if (m0 < m1) gemm_rows(x->g, x->K, x->bi, m0, m1, x->jc, x->nc, x->Bp, x->bstrideB, x->PA);
}

static void gemm_shared(const lm_gemm_args *g, const kernel_t *K, int64_t bi, int T) {
  if (g->k == 0) { zero_or_keep(g, bi); return; }
  const int64_t k = g->k, KC = K->KC, nslices = (k + KC - 1) / KC, NR = K->NR, MR = K->MR;
  const int64_t NCB = block_cols(K, k), bstrideB = round_up(NCB, NR) * KC;
  packed_a PA;
  int whole = pack_a_whole(g, K, bi, T, &PA);
  shared_ctx x = { g, K, bi, 0, 0, bstrideB, lm_scratch(0, sizeof(float) * (size_t)(bstrideB * nslices)), 0, 0, 0, whole ? &PA : NULL };
  /* Row tasks: whole MR blocks, at most MC rows each, a multiple of T of them (each thread's
   * first share is then the same number of rows: MC-sized tasks with a short last one left 12%
   * of a 1024-row product idle on one of 2 threads), and up to 4 per thread when there are rows
   * enough (>= 96 rows each: every task streams all of packed B, which for a large k lives in
   * L3): a worker that starts late or is descheduled leaves tasks the others can take, not one
   * half of the product. */
  x.mblocks = (g->m + MR - 1) / MR;
  int64_t mtasks = (x.mblocks * MR + K->MC - 1) / K->MC, fine = x.mblocks * MR / 96;
  if (fine > 4 * T) fine = 4 * T;
  if (mtasks < fine) mtasks = fine;
  mtasks = round_up(mtasks, T);
  if (mtasks > x.mblocks) mtasks = x.mblocks;
  x.mtasks = mtasks;
  for (int64_t jc = 0; jc < g->n; jc += NCB) {
    x.jc = jc;
    x.nc = g->n - jc < NCB ? g->n - jc : NCB;
    int64_t npan = (x.nc + NR - 1) / NR;
    x.panels_per_task = (npan + T - 1) / T;
    lm_parallel((npan + x.panels_per_task - 1) / x.panels_per_task, shared_pack_task, &x);
    lm_parallel(mtasks, shared_rows_task, &x);
  }
}

static void gemm_task(void *vctx, int64_t t, int tid) {
  gemm_ctx *x = vctx;
  gemm_serial(x->g, x->K, t);
}

void lm_gemm_serial(const lm_gemm_args *g) {
  if (g->m <= 0 || g->n <= 0) return;
  gemm_serial(g, pick_kernel(), 0);
}

void lm_gemm(const lm_gemm_args *g) {
  if (g->batch <= 0 || g->m <= 0 || g->n <= 0) return;
  const kernel_t *K = pick_kernel();
  int T = lm_get_threads();
  double flops = 2.0 * (double)g->m * (double)g->n * (double)(g->k > 0 ? g->k : 1);
  /* below ~8 MFLOP (~40 us) waking the pool (~10 us) and packing per thread do not pay */
  if (T > 1 && g->batch >= T && flops * (double)g->batch > 8.0e6) {
    /* many products: one per task, each on one thread */
    gemm_ctx x = { g, K };
    lm_parallel(g->batch, gemm_task, &x);
  } else if (g->m <= SMALL_M && small_m_path(K)) {
    for (int64_t bi = 0; bi < g->batch; bi++) gemm_small(g, K, bi, T);
  } else if (T > 1 && flops > 8.0e6) {
    for (int64_t bi = 0; bi < g->batch; bi++) gemm_shared(g, K, bi, T);
  } else {
    for (int64_t bi = 0; bi < g->batch; bi++) gemm_serial(g, K, bi);
  }
}

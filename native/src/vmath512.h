/*
 * AVX-512 versions of the vmath.h exp kernels, for CPUs that have it (chosen at run time with
 * lm_have_avx512(); the build itself targets AVX2). Same reduction and polynomial as vmath.h
 * (Cody-Waite, fitted degree 5), same error bound (< 2.5e-7); 2^n is applied by vscalefps.
 * On cores with full-width 512-bit units this doubles the throughput of the exp-bound row
 * kernels (softmax, cross-entropy, GELU); elsewhere it is never called.
 */
#ifndef LUMEN_VMATH512_H
#define LUMEN_VMATH512_H
#include "lumen.h"
#include "vmath.h"
#include <stdlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LUMEN_HAVE_512_PATH 1
#include <immintrin.h>

/** Whether the CPU runs AVX-512F (checked once); LUMEN_NO_AVX512=1 turns the AVX-512 paths off
 * (to run the AVX2 code of CPUs without it, e.g. in tests). */
static inline int lm_have_avx512(void) {
  static int have = -1;
  if (have < 0) {
    __builtin_cpu_init();
    const char *off = getenv("LUMEN_NO_AVX512");
    have = __builtin_cpu_supports("avx512f") && !(off && off[0] == '1') ? 1 : 0;
  }
  return have;
}

#define LM512 __attribute__((target("avx512f"), always_inline)) static inline

/* exp(x) on the whole float range: x clamped to [-104, 89] (exp is 0 / +inf beyond in float32),
 * x = n ln2 + r, exp(r) by the fitted degree-5 polynomial of vmath.h (LM_EXP_C*),
 * and 2^n applied with vscalefps, which also produces the denormals, the 0 below ~-103.3 and
 * the +inf above ~88.72 exactly (so no masks are needed). NaN propagates. */
LM512 __m512 lm_z_exp(__m512 x) {
  __m512 xc = _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_min_ps(_mm512_set1_ps(89.0f), x));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(LM_EXP_C5);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LM_EXP_C4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LM_EXP_C3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LM_EXP_C2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

/* the max-shifted softmax case (x <= 0) needs nothing else */
LM512 __m512 lm_z_exp_le0(__m512 x) { return lm_z_exp(x); }

/* exp(x) for x <= 0 with a 16-entry table: x = (16 k + j) ln2/16 + r, |r| <= ln2/32, so
 * exp(x) = 2^k 2^(j/16) exp(r), exp(r) by its degree-3 Taylor polynomial (truncation error
 * r^4/24 < 1e-8). n = 16 k + j comes from the 1.5 2^23 rounding trick, so the low bits of s hold
 * n: vpermd picks 2^(j/16) with its low 4 bits, and n << 19 = (k << 23) + (j << 19) adds k to
 * the exponent (the table entries are stored minus j << 19). Six FMA-unit operations where
 * lm_z_exp needs eight: 1.5x the throughput (2.6 instead of 3.9 cycles per vector on Zen 5).
 * Max relative error against double exp: 1.7e-7 on [-10, 0] (lm_z_exp: 1.8e-7), 3.8e-7 on
 * [-87, 0] (ln2/16 in one float: an error of 1.2e-10 n). Inputs below -87 give
 * exp(-87) = 1.6e-38 instead of something smaller (or 0 for -inf): meant for sums of exp that
 * include exp(0) = 1 (log-sum-exp), where such terms cannot count; NaN propagates. */
static const uint32_t lm_exp2_16ths[16] __attribute__((aligned(64))) = {
  0x3f800000u, 0x3f7daac3u, 0x3f7b95c2u, 0x3f79c3d3u, 0x3f7837f0u, 0x3f76f532u, 0x3f75fed7u, 0x3f75583fu,
  0x3f7504f3u, 0x3f7508a4u, 0x3f75672au, 0x3f76248cu, 0x3f7744fdu, 0x3f78ccdfu, 0x3f7ac0c7u, 0x3f7d257du };
LM512 __m512i lm_z_exp_tab_load(void) { return _mm512_load_si512((const void *)lm_exp2_16ths); }
LM512 __m512 lm_z_exp_le0_sum(__m512 x, __m512i tab) {
  const __m512 magic = _mm512_set1_ps(12582912.0f);  /* 1.5 2^23 */
  __m512 d = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);
  __m512 s = _mm512_fmadd_ps(d, _mm512_set1_ps(23.083120654223414f), magic);   /* magic + n, n = rint(16 x / ln2) */
  __m512 r = _mm512_fnmadd_ps(_mm512_sub_ps(s, magic), _mm512_set1_ps(0.043321698784996581f), d);
  __m512 p = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  __m512i si = _mm512_castps_si512(s);
  __m512i sc = _mm512_add_epi32(_mm512_permutexvar_epi32(si, tab), _mm512_slli_epi32(si, 19));
  return _mm512_mul_ps(p, _mm512_castsi512_ps(sc));
}

LM512 __m512 lm_z_sigmoid(__m512 x) {
  __m512 e = lm_z_exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}
#undef LM512
#endif
#endif

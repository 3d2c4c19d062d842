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

LM512 __m512 lm_z_sigmoid(__m512 x) {
  __m512 e = lm_z_exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}
#undef LM512
#endif
#endif

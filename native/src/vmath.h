/*
 * Vectorised transcendental functions for the elementwise, softmax and attention kernels.
 *
 * exp(x): x = n ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2 into a float-exact high
 * part and a low part), exp(r) by a degree-5 polynomial fitted for relative error (1.1e-7, see
 * lm_v_exp_poly), then scaled by 2^n through the exponent bits. Max relative error against
 * double-precision exp: < 2.5e-7 (checked over [-87, 88]); below -87.3 it returns 0 (the float32
 * result would be denormal), above 88.72 +inf, NaN stays NaN.
 *
 * expm1(x) for x <= 0 (used by tanh): the degree-7 Taylor polynomial of exp(r) - 1 (truncation
 * error |r|^8/8! < 5e-9) for |x| < ln2/2 (no cancellation), exp(x) - 1 beyond (result <= -0.29, so the subtraction loses
 * at most one ulp). tanh(x) = -sign(x) e / (2 + e) with e = expm1(-2|x|): relative error
 * < 5e-7 everywhere, exact sign and tanh(0) = 0.
 *
 * The scalar versions (other CPUs, loop tails) call libm's expf / expm1f.
 */
#ifndef LUMEN_VMATH_H
#define LUMEN_VMATH_H
#include "lumen.h"
#include <math.h>

static inline float lm_expf(float x) { return expf(x); }
static inline float lm_tanhf(float x) {
  float e = expm1f(-2.0f * fabsf(x));
  float t = -e / (2.0f + e);
  return x < 0 ? -t : t;
}
static inline float lm_sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* exp(r) for |r| <= ln2/2: 1 + r + r^2 (C2 + r (C3 + r (C4 + r C5))), coefficients fitted here
 * (least squares on relative error, iteratively reweighted towards minimax): max relative
 * error of the polynomial 1.1e-7; with rounding the exp below stays within ~2.5e-7. */
#define LM_EXP_C2 0.49999186396598816f
#define LM_EXP_C3 0.16667091846466064f
#define LM_EXP_C4 0.04189583659172058f
#define LM_EXP_C5 0.008316218852996826f

#if defined(LUMEN_AVX2)
#define LM_LN2_HI 0.693145751953125f
#define LM_LN2_LO 1.428606765330187e-06f

/* exp(r) - 1 for |r| <= ln2/2: r + r^2/2! + ... + r^7/7!, Horner form. */
static inline __m256 lm_v_expm1_poly(__m256 r) {
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  return _mm256_mul_ps(p, r);
}

static inline __m256 lm_v_exp_poly(__m256 r) {
  __m256 p = _mm256_set1_ps(LM_EXP_C5);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LM_EXP_C4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LM_EXP_C3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LM_EXP_C2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  return _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
}

static inline __m256 lm_v_exp(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.7228f), lo = _mm256_set1_ps(-87.33654f);
  __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  __m256 xc = _mm256_min_ps(hi, x);               /* NaN propagates (second operand) */
  xc = _mm256_max_ps(lo, xc);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LM_LN2_HI), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LM_LN2_LO), r);
  __m256 p = lm_v_exp_poly(r);
  /* 2^n in two halves so that n = 128 (x near 88.72) does not overflow the exponent field */
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), over);
  return _mm256_andnot_ps(under, y);
}

/* exp(x) for x <= 0 (or NaN), as in max-shifted softmax: no overflow path, a single 2^n scale
 * (n in [-126, 0]); same polynomial and accuracy as lm_v_exp; below -87.3 it returns 0. */
static inline __m256 lm_v_exp_le0(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);
  __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  __m256 xc = _mm256_max_ps(lo, x);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LM_LN2_HI), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LM_LN2_LO), r);
  __m256 p = lm_v_exp_poly(r);
  __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, s));
}

/* expm1(x) for x <= 0 */
static inline __m256 lm_v_expm1_neg(__m256 x) {
  __m256 small = _mm256_cmp_ps(x, _mm256_set1_ps(-0.34657359f), _CMP_GE_OQ);
  __m256 a = lm_v_expm1_poly(x);
  __m256 b = _mm256_sub_ps(lm_v_exp(x), _mm256_set1_ps(1.0f));
  return _mm256_blendv_ps(b, a, small);
}

static inline __m256 lm_v_tanh(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 ax = _mm256_andnot_ps(sign, x);
  __m256 e = lm_v_expm1_neg(_mm256_mul_ps(_mm256_set1_ps(-2.0f), ax));
  __m256 t = _mm256_div_ps(e, _mm256_add_ps(_mm256_set1_ps(2.0f), e));   /* = -tanh|x| */
  /* flip: result = sign(x) * (-t) */
  return _mm256_xor_ps(_mm256_xor_ps(t, sign), _mm256_and_ps(x, sign));
}

static inline __m256 lm_v_sigmoid(__m256 x) {
  __m256 e = lm_v_exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* horizontal helpers */
static inline float lm_hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
static inline float lm_hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
#endif

/** Dot product of n floats (8 independent accumulators on AVX2; a fixed order, deterministic). */
static inline float lm_dot(const float *a, const float *b, int64_t n) {
  int64_t i = 0;
  float s = 0.0f;
#if defined(LUMEN_AVX2)
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  s = lm_hsum(_mm256_add_ps(acc0, acc1));
#endif
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/** Sum of n floats (fixed order). */
static inline float lm_sum(const float *x, int64_t n) {
  int64_t i = 0;
  float s = 0.0f;
#if defined(LUMEN_AVX2)
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) { a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i)); a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8)); }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
  s = lm_hsum(_mm256_add_ps(a0, a1));
#endif
  for (; i < n; i++) s += x[i];
  return s;
}

/** Sum of (x[i] - c)^2. */
static inline float lm_sumsq_centered(const float *x, float c, int64_t n) {
  int64_t i = 0;
  float s = 0.0f;
#if defined(LUMEN_AVX2)
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), cv = _mm256_set1_ps(c);
  for (; i + 16 <= n; i += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), cv), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), cv);
    a0 = _mm256_fmadd_ps(d0, d0, a0); a1 = _mm256_fmadd_ps(d1, d1, a1);
  }
  for (; i + 8 <= n; i += 8) { __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), cv); a0 = _mm256_fmadd_ps(d0, d0, a0); }
  s = lm_hsum(_mm256_add_ps(a0, a1));
#endif
  for (; i < n; i++) { float d = x[i] - c; s += d * d; }
  return s;
}

/** Maximum of n >= 1 floats (NaN-propagation is not guaranteed). */
static inline float lm_max(const float *x, int64_t n) {
  int64_t i = 0;
  float m = x[0];
#if defined(LUMEN_AVX2)
  if (n >= 8) {
    __m256 a = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= n; i += 8) a = _mm256_max_ps(a, _mm256_loadu_ps(x + i));
    m = lm_hmax(a);
  }
#endif
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

/** y[i] += alpha * x[i]. */
static inline void lm_axpy_row(float *y, float alpha, const float *x, int64_t n) {
  int64_t i = 0;
#if defined(LUMEN_AVX2)
  __m256 al = _mm256_set1_ps(alpha);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(al, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; i++) y[i] += alpha * x[i];
}
#endif

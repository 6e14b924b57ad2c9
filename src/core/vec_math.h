// AVX2 + FMA vector maths for the elementwise kernels: exp and the standard normal CDF, 8 floats at a time.
// Every function has a scalar twin used for loop tails, computing the same formula in the same order, so a
// vectorised kernel gives the same values whatever the alignment of its span (and whatever the thread split).
//
// Accuracy (measured against double-precision std::exp / std::erfc over dense grids, tests/kernels/
// fast_kernels_test.cpp):
//  - exp: Cephes' expf scheme (round x/ln2, Cody-Waite reduction, degree-6 polynomial): <= 2 ulp relative for
//    x in [-87.3, 88]; below -87.3 it returns 0 (std::exp: a denormal < 1.2e-38), above 88 it returns exp(88)
//    (our callers only pass x <= 0: shifted softmax scores, -a^2 + P(t)).
//  - normal_cdf(x) = 0.5 erfc(-x/sqrt2) with erfc from Numerical Recipes' Chebyshev fit, erfc(a) =
//    t exp(-a^2 + P(t)), t = 1/(1+a/2): fractional error < 1.2e-7 everywhere. With exp and the rounding of
//    the float argument -a^2 + P (which grows with a^2), the CDF (and GELU = x CDF) has a RELATIVE error
//    below 6e-7 + 1.2e-7 x^2, also in the negative tail where 1 + erf(z) written directly would cancel (there
//    the std::erf form has an absolute error ~6e-8, i.e. no correct digit once Phi < 1e-7).
// Inputs are finite: NaN in, an unspecified value out (the model never produces NaN activations unless the
// weights are NaN, which the trainer detects on the loss).
#pragma once

#include "core/simd.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace bertfit {
namespace vec {

constexpr float kExpHi = 88.0f, kExpLo = -87.3365447504f;
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

inline __m256 exp_ps(__m256 x) {
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(kExpLo), _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpLo)), _mm256_set1_ps(kExpHi));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kP0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
  const __m256 r2 = _mm256_mul_ps(r, r);
  const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
  // 2^n as a float's exponent field: n is in [-126, 127] after the clamp (a normal number).
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 out = _mm256_mul_ps(e, _mm256_castsi256_ps(bits));
  return _mm256_andnot_ps(under, out);
}

inline float exp_scalar(float x) {
  if (x < kExpLo) return 0.0f;
  x = std::fmin(x, kExpHi);
  const float n = std::nearbyint(x * kLog2e);
  float r = std::fma(-n, kLn2Hi, x);
  r = std::fma(-n, kLn2Lo, r);
  float p = kP0;
  p = std::fma(p, r, kP1);
  p = std::fma(p, r, kP2);
  p = std::fma(p, r, kP3);
  p = std::fma(p, r, kP4);
  p = std::fma(p, r, kP5);
  const float e = std::fma(p, r * r, r) + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return e * scale;
}

// Numerical Recipes erfc coefficients (erfcc): P(t) = -a^2 - 1.26551223 + t(1.00002368 + t(...)).
constexpr float kE[10] = {-1.26551223f, 1.00002368f,  0.37409196f, 0.09678418f,  -0.18628806f,
                          0.27886807f,  -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
constexpr float kInvSqrt2 = 0.70710678118654752440f;

// erfc(a) for a >= 0, and exp(-a^2) (the GELU derivative needs the normal density too).
inline __m256 erfc_pos_ps(__m256 a) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f), a, one));
  __m256 p = _mm256_set1_ps(kE[9]);
  for (int i = 8; i >= 0; --i) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(kE[i]));
  return _mm256_mul_ps(t, exp_ps(_mm256_fnmadd_ps(a, a, p)));
}

inline float erfc_pos_scalar(float a) {
  const float t = 1.0f / std::fma(0.5f, a, 1.0f);
  float p = kE[9];
  for (int i = 8; i >= 0; --i) p = std::fma(p, t, kE[i]);
  return t * exp_scalar(std::fma(-a, a, p));
}

// Standard normal CDF Phi(x) = 0.5 erfc(-x / sqrt 2).
inline __m256 normal_cdf_ps(__m256 x) {
  const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(kInvSqrt2));
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
  const __m256 half_erfc = _mm256_mul_ps(_mm256_set1_ps(0.5f), erfc_pos_ps(a));
  const __m256 pos = _mm256_sub_ps(_mm256_set1_ps(1.0f), half_erfc);
  return _mm256_blendv_ps(half_erfc, pos, _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GE_OQ));
}

inline float normal_cdf_scalar(float x) {
  const float z = x * kInvSqrt2;
  const float half_erfc = 0.5f * erfc_pos_scalar(std::fabs(z));
  return z >= 0.0f ? 1.0f - half_erfc : half_erfc;
}

constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

// The GELU derivative Phi(x) + x phi(x), given cdf = Phi(x) (computed once when GELU itself is needed too).
inline __m256 gelu_derivative_ps(__m256 x, __m256 cdf) {
  const __m256 pdf = _mm256_mul_ps(_mm256_set1_ps(kInvSqrt2Pi),
                                   vec::exp_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(-0.5f), x), x)));
  return _mm256_fmadd_ps(x, pdf, cdf);
}

inline float gelu_derivative_scalar(float x, float cdf) {
  const float pdf = kInvSqrt2Pi * exp_scalar(-0.5f * x * x);
  return std::fma(x, pdf, cdf);
}

// Horizontal sums in a fixed order (lanes 0..7 pairwise), used by row reductions.
inline float hsum_ps(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
inline float hmax_ps(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_max_ps(lo, hi);
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

}  // namespace vec
}  // namespace bertfit

// AVX-512 twins of core/vec_math.h's exp, normal CDF and GELU derivative, 16 floats at a time: the same
// formulas, the same IEEE operations in the same order, so they return the same bits as the AVX2 versions
// (tested in tests/kernels/fast_kernels_test.cpp). Only for kernels that check core/cpu_features.h's
// use_avx512() first.
#pragma once

#include "core/simd.h"

#include "core/vec_math.h"

#define BERTFIT_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))

namespace bertfit {
namespace vec {

BERTFIT_AVX512 inline __m512 exp_ps512(__m512 x) {
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpLo), _CMP_LT_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kExpLo)), _mm512_set1_ps(kExpHi));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kP0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP5));
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(static_cast<__mmask16>(~under), e, _mm512_castsi512_ps(bits));
}

BERTFIT_AVX512 inline __m512 erfc_pos_ps512(__m512 a) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.5f), a, one));
  __m512 p = _mm512_set1_ps(kE[9]);
  for (int i = 8; i >= 0; --i) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(kE[i]));
  return _mm512_mul_ps(t, exp_ps512(_mm512_fnmadd_ps(a, a, p)));
}

BERTFIT_AVX512 inline __m512 normal_cdf_ps512(__m512 x) {
  const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(kInvSqrt2));
  const __m512 a = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), z);
  const __m512 half_erfc = _mm512_mul_ps(_mm512_set1_ps(0.5f), erfc_pos_ps512(a));
  const __m512 pos = _mm512_sub_ps(_mm512_set1_ps(1.0f), half_erfc);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ), half_erfc, pos);
}

BERTFIT_AVX512 inline __m512 gelu_derivative_ps512(__m512 x, __m512 cdf) {
  const __m512 pdf = _mm512_mul_ps(_mm512_set1_ps(kInvSqrt2Pi),
                                   exp_ps512(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(-0.5f), x), x)));
  return _mm512_fmadd_ps(x, pdf, cdf);
}

}  // namespace vec
}  // namespace bertfit

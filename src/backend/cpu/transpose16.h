// Shared by the AVX-512 kernels (gemm_nt_small.cpp, gemm_packed.cpp, gemm_bf16.cpp, kernels/head_gemm.cpp):
// the target attribute of their AVX-512 functions, 16-lane masks and an in-register 16 x 16 transpose (for
// packing and for transposed stores).
#pragma once

#include <cstdint>

#include "core/simd.h"

#ifndef BERTFIT_AVX512
#define BERTFIT_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#endif

namespace bertfit {

// Lanes [0, n) of 16 set (n clamped to 0..16).
inline __mmask16 mask16(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

// In-register transpose of a 16 x 16 float block: r[i] holds row i before, column i after.
BERTFIT_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int g = 0; g < 2; ++g)
    for (int j = 0; j < 4; ++j) {
      t[8 * g + j] = _mm512_shuffle_f32x4(r[8 * g + j], r[8 * g + 4 + j], 0x88);
      t[8 * g + 4 + j] = _mm512_shuffle_f32x4(r[8 * g + j], r[8 * g + 4 + j], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
  }
}

}  // namespace bertfit

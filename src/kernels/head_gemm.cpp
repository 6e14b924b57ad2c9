#include "kernels/head_gemm.h"

#include "core/simd.h"

#include <algorithm>

#include "backend/cpu/gemm.h"
#include "backend/cpu/transpose16.h"
#include "core/cpu_features.h"
#include "core/vec_math512.h"  // BERTFIT_AVX512

namespace bertfit {

namespace {

constexpr int kRows = 6;  // rows of C per register tile
constexpr int kVecs = 4;  // 16-float vectors per tile row: 64 columns
constexpr int kCols = 16 * kVecs;

// C[MR x 16*NV] (the last vector masked by last_mask) = alpha * sum_k a(i, k) B[k, :] + beta * C, with a(i,
// k) = A[i * a_row + k * a_k]: A or A^T with any strides, each element broadcast from where it lies.
template <int MR, int NV>
BERTFIT_AVX512 void tile(int64_t K, float alpha, const float* A, int64_t a_row, int64_t a_k, const float* B,
                         int64_t ldb, float beta, float* C, int64_t ldc, __mmask16 last_mask) {
  // Fixed-size loops, fully unrolled so that the MR x NV accumulators live in registers (GCC keeps them on
  // the stack otherwise, even at -O3, which halves the speed).
  __m512 acc[MR][NV];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B + k * ldb;
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j)
      bv[j] = j == NV - 1 ? _mm512_maskz_loadu_ps(last_mask, b + 16 * j) : _mm512_loadu_ps(b + 16 * j);
    const float* a = A + k * a_k;
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * a_row]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(ai, bv[j], acc[i][j]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      const __mmask16 m = j == NV - 1 ? last_mask : static_cast<__mmask16>(0xFFFF);
      float* c = C + i * ldc + 16 * j;
      __m512 r = alpha == 1.0f ? acc[i][j] : _mm512_mul_ps(va, acc[i][j]);
      if (beta == 1.0f)
        r = _mm512_add_ps(_mm512_maskz_loadu_ps(m, c), r);
      else if (beta != 0.0f)  // beta == 0: C is written, never read (it may hold garbage or NaN)
        r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c), r);
      _mm512_mask_storeu_ps(c, m, r);
    }
}

using TileFn = void (*)(int64_t, float, const float*, int64_t, int64_t, const float*, int64_t, float, float*,
                        int64_t, __mmask16);

template <int MR>
constexpr TileFn tile_for(int nv) {
  return nv == 1 ? tile<MR, 1> : nv == 2 ? tile<MR, 2> : nv == 3 ? tile<MR, 3> : tile<MR, 4>;
}
TileFn pick(int mr, int nv) {
  switch (mr) {
    case 1:
      return tile_for<1>(nv);
    case 2:
      return tile_for<2>(nv);
    case 3:
      return tile_for<3>(nv);
    case 4:
      return tile_for<4>(nv);
    case 5:
      return tile_for<5>(nv);
    default:
      return tile_for<6>(nv);
  }
}

BERTFIT_AVX512 void head_gemm_avx512(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha,
                                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                                     float* C, int64_t ldc) {
  const int64_t a_row = trans_a ? 1 : lda, a_k = trans_a ? lda : 1;
  for (int64_t n0 = 0; n0 < N; n0 += kCols) {
    const int64_t width = std::min<int64_t>(kCols, N - n0);
    const int nv = static_cast<int>((width + 15) / 16);
    const int last = static_cast<int>(width - 16 * (nv - 1));
    const __mmask16 mask = mask16(last);
    for (int64_t m0 = 0; m0 < M; m0 += kRows) {
      const int mr = static_cast<int>(std::min<int64_t>(kRows, M - m0));
      pick(mr, nv)(K, alpha, A + m0 * a_row, a_row, a_k, B + n0, ldb, beta, C + m0 * ldc + n0, ldc, mask);
    }
  }
}

// bt[k * N + n] = B[n * ldb + k] for the N x K block B, by 16 x 16 blocks transposed in registers (the same
// values as a scalar copy; the scalar loop took about a fifth of the QK^T product's time).
BERTFIT_AVX512 void transpose_block(const float* B, int64_t ldb, int64_t N, int64_t K, float* bt) {
  for (int64_t n = 0; n < N; n += 16) {
    const int64_t rows = std::min<int64_t>(16, N - n);
    const __mmask16 nm = mask16(rows);
    for (int64_t k = 0; k < K; k += 16) {
      const int64_t kn = std::min<int64_t>(16, K - k);
      const __mmask16 km = mask16(kn);
      __m512 r[16];
      for (int64_t i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(km, B + (n + i) * ldb + k) : _mm512_setzero_ps();
      transpose16(r);  // r[j]: column k + j of the block's rows n .. n + 15
      for (int64_t j = 0; j < kn; ++j) _mm512_mask_storeu_ps(bt + (k + j) * N + n, nm, r[j]);
    }
  }
}

}  // namespace

void head_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (!use_avx512() || (trans_b && K * N > kHeadGemmMaxTransposed)) {
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (trans_b) {
    // op(B) = B^T: B is [N, K]; copy it to a K x N block (rows of B read contiguously).
    alignas(64) float bt[kHeadGemmMaxTransposed];
    transpose_block(B, ldb, N, K, bt);
    head_gemm_avx512(trans_a, M, N, K, alpha, A, lda, bt, N, beta, C, ldc);
    return;
  }
  head_gemm_avx512(trans_a, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace bertfit

// head_gemm (the per-head attention products) against the double-accumulating gemm_reference, over the
// operand layouts attention uses (A or A^T, B or B^T, row strides wider than the matrices, as in
// qkv[B,T,3C]), tails in every dimension, alpha and beta.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/cpu_features.h"
#include "core/rng.h"
#include "kernels/head_gemm.h"

namespace bertfit {
namespace {

std::vector<float> uniform(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(2.0 * rng.uniform() - 1.0);
  return v;
}

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
};

void check(const Case& c) {
  // Stored shapes with padding columns, as the attention kernels read heads out of [T, 3C] rows.
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K, lda = a_cols + 5;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N, ldb = b_cols + 3, ldc = c.N + 7;
  const auto A = uniform(a_rows * lda, 1), B = uniform(b_rows * ldb, 2), C0 = uniform(c.M * ldc, 3);
  std::vector<float> C = C0, ref = C0, absA(A.size()), absB(B.size()), bound(c.M * ldc, 0.0f);
  head_gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
  gemm_reference(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, ref.data(), ldc);
  for (size_t i = 0; i < A.size(); ++i) absA[i] = std::fabs(A[i]);
  for (size_t i = 0; i < B.size(); ++i) absB[i] = std::fabs(B[i]);
  gemm_reference(c.ta, c.tb, c.M, c.N, c.K, 1.0f, absA.data(), lda, absB.data(), ldb, 0.0f, bound.data(),
                 ldc);
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      const int64_t i = m * ldc + n;
      // A float FMA chain of K terms: |error| <= K eps sum_k |a b| (Higham's bound for recursive summation,
      // FMA or not), times |alpha|, plus one rounding each for alpha, beta C and the final add.
      const double tol =
          (c.K + 3) * FLT_EPSILON * (std::fabs(c.alpha) * bound[i] + std::fabs(c.beta * C0[i])) + FLT_MIN;
      ASSERT_LE(std::fabs(C[i] - ref[i]), tol) << "m " << m << " n " << n;
    }
  // Columns outside N (ldc padding) are untouched.
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = c.N; n < ldc; ++n) ASSERT_EQ(C[m * ldc + n], C0[m * ldc + n]);
}

TEST(HeadGemm, MatchesTheReferenceOnAttentionLayoutsAndTails) {
  const Case cases[] = {
      {false, true, 128, 128, 64, 0.125f, 0.0f},  // scores = Q K^T / sqrt(64)
      {false, false, 128, 64, 128, 1.0f, 0.0f},   // ctx = P V, dQ = dS K
      {true, false, 128, 64, 128, 1.0f, 0.0f},    // dV = P^T dO, dK = dS^T Q
      {false, true, 128, 128, 64, 1.0f, 0.0f},    // dP = dO V^T
      {false, false, 37, 70, 13, 0.5f, 1.0f},     // tails: 6-row tiles, a 16-column tail, beta = 1
      {true, true, 5, 17, 33, -2.0f, 0.25f},      // both transposed, general beta
      {false, true, 50, 45, 70, 1.0f, 0.0f},      // B^T's 16 x 16 blocks with row and k tails (varlen)
      {false, false, 1, 1, 1, 1.0f, 0.0f},
      {true, false, 64, 200, 40, 1.0f, 0.0f},  // several 64-column blocks
      {false, false, 7, 9, 0, 1.0f, 0.5f},     // K = 0: C = beta C
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "ta " << c.ta << " tb " << c.tb << " " << c.M << "x" << c.N << "x"
                                      << c.K << " alpha " << c.alpha << " beta " << c.beta);
    check(c);
  }
}

TEST(HeadGemm, BetaZeroIgnoresNaNInC) {
  const int64_t M = 8, N = 20, K = 4;
  const auto A = uniform(M * K, 4), B = uniform(K * N, 5);
  std::vector<float> C(M * N, std::nanf("")), ref(M * N, 0.0f);
  head_gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
  gemm_reference(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, ref.data(), N);
  for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(C[i], ref[i], 1e-5) << i;  // K = 4 terms of |ab| <= 1
}

TEST(HeadGemm, TheFallbackWithoutAvx512IsTheSameContract) {
  set_max_isa(Isa::AVX2);
  check({false, true, 40, 50, 30, 0.125f, 0.0f});
  check({true, false, 40, 50, 30, 1.0f, 1.0f});
  set_max_isa(Isa::AVX512);
}

// head_gemm keeps gemm()'s contract (backend/cpu/gemm.h): the same FMA chain and epilogue, so its bits are
// gemm_packed's, with AVX-512 and on the AVX2 fallback alike -- attention's results do not depend on the ISA.
TEST(HeadGemm, SameBitsAsGemmPackedOnBothInstructionSets) {
  const Case cases[] = {{false, true, 128, 128, 64, 0.125f, 0.0f},
                        {false, false, 37, 70, 13, 0.5f, 1.0f},
                        {true, true, 5, 17, 33, -2.0f, 0.25f},
                        {true, false, 64, 200, 40, 1.0f, 0.0f}};
  for (Isa isa : {Isa::AVX512, Isa::AVX2}) {
    set_max_isa(isa);
    for (const Case& c : cases) {
      SCOPED_TRACE(::testing::Message() << "avx512 " << use_avx512() << " ta " << c.ta << " tb " << c.tb
                                        << " " << c.M << "x" << c.N << "x" << c.K);
      const int64_t lda = (c.ta ? c.M : c.K) + 5, ldb = (c.tb ? c.K : c.N) + 3, ldc = c.N + 7;
      const auto A = uniform((c.ta ? c.K : c.M) * lda, 1), B = uniform((c.tb ? c.N : c.K) * ldb, 2);
      std::vector<float> C = uniform(c.M * ldc, 3), G = C;
      head_gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
      gemm_packed(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, G.data(), ldc);
      EXPECT_EQ(std::memcmp(C.data(), G.data(), C.size() * sizeof(float)), 0);
    }
  }
  set_max_isa(Isa::AVX512);
}

}  // namespace
}  // namespace bertfit

// gemm_packed (the engine's GEMM) against gemm_reference (double accumulation) within a derived bound, and
// bit for bit against a scalar emulation of its contract (backend/cpu/gemm.h): every transpose combination,
// sizes around the tiles (AVX-512 12 x 32, AVX2 6 x 16), the row blocks (AVX-512 96, AVX2 144) and the K
// chunks (AVX-512 1024, AVX2 256),
// strides, alpha and beta (beta = 0 with NaN in C); and the determinism the contract promises: AVX-512 and
// AVX2 bitwise equal, 1 and 2 threads bitwise equal (column and row splits), inside a parallel region, a row
// or a column block computed alone equal to the same outputs inside a big product, op(A) read in place equal
// to op(A) packed, and gemm_nt_small's bits for a linear layer.
#include "backend/cpu/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/gemm_nt_small.h"
#include "core/cpu_features.h"
#include "core/rng.h"
#include "core/threading.h"
#include "gemm_test_util.h"

namespace bertfit {
namespace {

using test::bitwise_equal;
using test::randn;

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  int64_t pad;  // extra elements per row of A, B and C (strides)
  float alpha, beta;
  bool bias = false;  // gemm_packed_bias with a random bias row
};

// Operands of a case as stored: A is [M][K] (or [K][M] transposed), B is [K][N] (or [N][K]), C is [M][N],
// each row padded by c.pad.
struct Operands {
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, C, bias;
};

Operands make(const Case& c, uint64_t seed) {
  Operands o;
  o.lda = (c.ta ? c.M : c.K) + c.pad;
  o.ldb = (c.tb ? c.K : c.N) + c.pad;
  o.ldc = c.N + c.pad;
  o.A = randn(static_cast<size_t>((c.ta ? c.K : c.M) * o.lda), seed);
  o.B = randn(static_cast<size_t>((c.tb ? c.N : c.K) * o.ldb), seed + 1);
  o.C = randn(static_cast<size_t>(c.M * o.ldc), seed + 2);
  o.bias = randn(static_cast<size_t>(c.N), seed + 3);
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = c.N; n < o.ldc; ++n) o.C[m * o.ldc + n] = 12345.0f;  // padding: must stay untouched
    // beta = 0 must ignore C, not multiply it by 0: NaN would survive that.
    if (c.beta == 0.0f)
      for (int64_t n = 0; n < c.N; ++n) o.C[m * o.ldc + n] = std::numeric_limits<float>::quiet_NaN();
  }
  return o;
}

std::vector<float> run_packed(const Case& c, const Operands& o) {
  std::vector<float> C = o.C;
  if (c.bias)
    gemm_packed_bias(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, o.bias.data(),
                     c.beta, C.data(), o.ldc);
  else
    gemm_packed(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta, C.data(),
                o.ldc);
  return C;
}

// The contract of gemm.h written as plain scalar code: one float FMA chain over k from 0, then alpha, then
// + bias, then fma(beta, C, x). (std::fma and a lone multiply: nothing here that -ffp-contract could fuse.)
std::vector<float> run_contract(const Case& c, const Operands& o) {
  std::vector<float> C = o.C;
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < c.K; ++k) {
        const float a = c.ta ? o.A[k * o.lda + m] : o.A[m * o.lda + k];
        const float b = c.tb ? o.B[n * o.ldb + k] : o.B[k * o.ldb + n];
        acc = std::fma(a, b, acc);
      }
      float x = c.alpha == 1.0f ? acc : c.alpha * acc;
      if (c.bias) x = x + o.bias[n];
      float& y = C[m * o.ldc + n];
      y = c.beta == 0.0f ? x : std::fma(c.beta, y, x);
    }
  return C;
}

::testing::Message describe(const Case& c) {
  return ::testing::Message() << "ta=" << c.ta << " tb=" << c.tb << " M=" << c.M << " N=" << c.N
                              << " K=" << c.K << " pad=" << c.pad << " alpha=" << c.alpha
                              << " beta=" << c.beta << " bias=" << c.bias;
}

// gemm_packed's C against gemm_reference's. Tolerance: the exact value is E = alpha S_ab + bias + beta C0
// with S_ab = sum_k a_k b_k. gemm_packed rounds K times in its FMA chain, once in alpha * acc, once adding
// the bias and once in the final fma: K + 3 roundings; the reference here is gemm_reference with beta = 1 on
// float(bias + beta C0) (2 roundings), which sums in double (error <= gamma_K in double ~ K 2^-53, below one
// float rounding for any K here), then rounds float(alpha * acc) and the final sum: 4 float roundings plus
// that one. Higham's bound for a recursive sum of products gives |result - E| <= gamma_n (|alpha| S + |bias|
// + |beta C0|) with gamma_n = n u / (1 - n u), u = 2^-24 and S = sum_k |a_k b_k|; n = K + 8 covers both
// results' roundings together. A rigorous worst case, so a correct kernel cannot fail it, while a lost,
// doubled or misplaced product (error ~ |a b| ~ S / K, > 10x the bound at K = 300) cannot pass it.
void check_against_reference(const Case& c, const Operands& o, const std::vector<float>& got) {
  std::vector<float> R = o.C;
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      float& r = R[m * o.ldc + n];
      r = (c.beta == 0.0f ? 0.0f : c.beta * r) + (c.bias ? o.bias[n] : 0.0f);
    }
  gemm_reference(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, 1.0f, R.data(),
                 o.ldc);
  const double u = std::ldexp(1.0, -24), nr = static_cast<double>(c.K + 8);
  const double gamma = nr * u / (1.0 - nr * u);
  int bad = 0;
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = 0; n < c.N; ++n) {
      double S = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const float a = c.ta ? o.A[k * o.lda + m] : o.A[m * o.lda + k];
        const float b = c.tb ? o.B[n * o.ldb + k] : o.B[k * o.ldb + n];
        S += std::fabs(static_cast<double>(a) * b);
      }
      const double bound = gamma * (std::fabs(c.alpha) * S + (c.bias ? std::fabs(o.bias[n]) : 0.0) +
                                    (c.beta == 0.0f ? 0.0 : std::fabs(c.beta * o.C[m * o.ldc + n])));
      const double g = got[m * o.ldc + n], w = R[m * o.ldc + n];
      if (!(std::fabs(g - w) <= bound) && bad++ < 5)
        ADD_FAILURE() << "C[" << m << "," << n << "] = " << g << ", reference " << w << ", bound " << bound;
    }
    for (int64_t n = c.N; n < o.ldc; ++n)
      if (got[m * o.ldc + n] != 12345.0f && bad++ < 5)
        ADD_FAILURE() << "padding C[" << m << "," << n << "] written";
  }
  EXPECT_EQ(bad, 0);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  // Sizes: 1, 5 (inside one tile), 17 (AVX2 16-column tile + 1), 63/64/65 (around two AVX-512 32-column
  // panels and the 12- and 6-row tiles' multiples), 97 and 145 (AVX-512's 96-row block + 1, AVX2's 144 + 1),
  // 300 (several of each, K past AVX2's 256-long chunk: the partial sums are stored and reloaded), 1100 (K
  // past AVX-512's 1024-long chunk); 600 x 4100: op(B) over the 8 MiB packing budget, so its columns are
  // packed and multiplied in two blocks (and K in five AVX-512 chunks).
  const int64_t shapes[][3] = {{1, 1, 1},     {5, 3, 7},      {1, 65, 300},   {17, 1, 64},   {63, 64, 65},
                               {64, 65, 63},  {65, 17, 5},    {145, 33, 300}, {13, 300, 17}, {300, 63, 257},
                               {7, 129, 513}, {97, 40, 1100}, {13, 600, 4100}};
  const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, -2.0f}, {-1.5f, 0.0f}};
  int i = 0;
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t) {
      // A bias on 2 of every 5 cases: across the shapes it meets every transpose and (alpha, beta) pair.
      out.push_back({(t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], i % 3 == 1 ? 3 : 0, ab[i % 4][0],
                     ab[i % 4][1], i % 5 < 2});
      ++i;
    }
  return out;
}

// Runs every case under the instruction set the CPU allows (AVX-512 here when present) and capped to AVX2.
TEST(Gemm, MatchesReferenceAndContractOnEveryTransposeSizeStrideAlphaBeta) {
  uint64_t seed = 1;
  for (Isa isa : {Isa::AVX512, Isa::AVX2}) {
    set_max_isa(isa);
    for (const Case& c : cases()) {
      SCOPED_TRACE(describe(c) << " avx512=" << use_avx512());
      const Operands o = make(c, seed += 10);
      const std::vector<float> got = run_packed(c, o);
      check_against_reference(c, o, got);
      EXPECT_TRUE(bitwise_equal(got, run_contract(c, o)));
    }
  }
  set_max_isa(Isa::AVX512);
}

TEST(Gemm, Avx512AndAvx2BitwiseEqual) {
  set_max_isa(Isa::AVX512);
  if (!use_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  // Shapes past every block of both kernels (K chunks of 256 and 1024, 96- and 144-row blocks), all
  // transposes.
  uint64_t seed = 1000;
  for (int t = 0; t < 4; ++t)
    for (const Case& c : {Case{(t & 1) != 0, (t & 2) != 0, 301, 133, 1100, 1, 0.25f, 1.0f},
                          Case{(t & 1) != 0, (t & 2) != 0, 40, 500, 100, 0, 1.0f, 0.0f}}) {
      SCOPED_TRACE(describe(c));
      const Operands o = make(c, seed += 10);
      set_max_isa(Isa::AVX512);
      const std::vector<float> a = run_packed(c, o);
      set_max_isa(Isa::AVX2);
      const std::vector<float> b = run_packed(c, o);
      set_max_isa(Isa::AVX512);
      EXPECT_TRUE(bitwise_equal(a, b));
    }
}

TEST(Gemm, OneAndTwoThreadsBitwiseEqualAndInsideAParallelRegion) {
  const int saved = num_threads();
  uint64_t seed = 2000;
  // Wide C (the threads split columns) and tall C (too few column panels: they split rows); large enough
  // (M N K >= 2^21) to run in parallel.
  for (const Case& c :
       {Case{false, true, 200, 700, 300, 0, 1.0f, 1.0f}, Case{true, false, 900, 20, 400, 2, 0.5f, 0.0f}}) {
    SCOPED_TRACE(describe(c));
    const Operands o = make(c, seed += 10);
    set_num_threads(1);
    const std::vector<float> c1 = run_packed(c, o);
    set_num_threads(2);
    const std::vector<float> c2 = run_packed(c, o);
    EXPECT_TRUE(bitwise_equal(c1, c2));
    std::vector<float> cin = o.C;
    // Inside a parallel region (here in a worker) the call runs serially in that thread.
    parallel_region(
        [&](const Team& team) {
          if (team.thread() == team.size() - 1)
            gemm_packed(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta,
                        cin.data(), o.ldc);
        },
        true, 2);
    EXPECT_TRUE(bitwise_equal(c1, cin));
  }
  set_num_threads(saved);
}

TEST(Gemm, ARowOrAColumnBlockAloneGivesTheSameBitsAsInsideTheProduct) {
  for (int t = 0; t < 4; ++t) {
    const Case c{(t & 1) != 0, (t & 2) != 0, 150, 100, 600, 0, 1.0f, 1.0f};
    SCOPED_TRACE(describe(c));
    const Operands o = make(c, 3000 + t);
    const std::vector<float> whole = run_packed(c, o);
    // Each row alone (M = 1: row m of op(A) starts at A + m (transposed) or A + m * lda).
    std::vector<float> rows = o.C;
    for (int64_t m = 0; m < c.M; ++m)
      gemm_packed(c.ta, c.tb, 1, c.N, c.K, c.alpha, o.A.data() + (c.ta ? m : m * o.lda), o.lda, o.B.data(),
                  o.ldb, c.beta, rows.data() + m * o.ldc, o.ldc);
    EXPECT_TRUE(bitwise_equal(whole, rows));
    // Columns 7..86 and rows 5..139 (starting inside a tile) alone.
    const int64_t m0 = 5, mc = 135, n0 = 7, nc = 80;
    std::vector<float> part = o.C;
    gemm_packed(c.ta, c.tb, mc, nc, c.K, c.alpha, o.A.data() + (c.ta ? m0 : m0 * o.lda), o.lda,
                o.B.data() + (c.tb ? n0 * o.ldb : n0), o.ldb, c.beta, part.data() + m0 * o.ldc + n0, o.ldc);
    bool same = true;
    for (int64_t m = m0; m < m0 + mc; ++m)
      same = same && std::memcmp(&part[m * o.ldc + n0], &whole[m * o.ldc + n0], nc * sizeof(float)) == 0;
    EXPECT_TRUE(same);
  }
}

TEST(Gemm, AReadInPlaceGivesThePackedBits) {
  set_max_isa(Isa::AVX512);
  if (!use_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  // The same A stored with two row strides: 1100 floats (rows spread over the L1 sets: read in place) and
  // 2048 (every row in one set: packed). 150 rows: a last panel of 6 of the tile's 12 rows; K = 1100: two
  // K chunks, so partial sums go through P; 1 and 2 threads, with a bias and beta = 1.
  ASSERT_TRUE(gemm_packed_reads_a_in_place(false, 1100));
  ASSERT_FALSE(gemm_packed_reads_a_in_place(false, 2048));
  ASSERT_FALSE(gemm_packed_reads_a_in_place(true, 1100));
  const int saved = num_threads();
  const int64_t M = 150, N = 100, K = 1100;
  const std::vector<float> A = randn(M * K, 41), B = randn(N * K, 42), bias = randn(N, 43),
                           C0 = randn(M * N, 44);
  std::vector<float> A_wide(M * 2048, 0.0f);
  for (int64_t m = 0; m < M; ++m) std::memcpy(&A_wide[m * 2048], &A[m * K], K * sizeof(float));
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<float> in_place = C0, packed = C0;
    gemm_packed_bias(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, bias.data(), 1.0f, in_place.data(),
                     N);
    gemm_packed_bias(false, true, M, N, K, 1.0f, A_wide.data(), 2048, B.data(), K, bias.data(), 1.0f,
                     packed.data(), N);
    EXPECT_TRUE(bitwise_equal(in_place, packed)) << threads << " threads";
  }
  set_num_threads(saved);
}

TEST(Gemm, LinearLayerSameBitsAsGemmNtSmall) {
  // A linear layer's forward either way: gemm_nt_small ((acc + bias) (+ C)) or gemm_packed_bias with beta 0
  // or 1 (the same epilogue: x = acc + bias, then fma(1, C, x) = x + C), or the older way, the bias written
  // into C and then beta = 1 (fma(1, bias, acc) = acc + bias). The same bits, so linear_forward may switch
  // between them by row count without changing any result.
  const int64_t M = 70, N = 200, K = 300;
  const std::vector<float> A = randn(M * K, 1), W = randn(N * K, 2), bias = randn(N, 3), C0 = randn(M * N, 4);
  for (Isa isa : {Isa::AVX512, Isa::AVX2}) {
    set_max_isa(isa);
    for (bool accumulate : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "avx512=" << use_avx512() << " accumulate=" << accumulate);
      std::vector<float> a = C0, b = C0;
      gemm_nt_small(M, N, K, A.data(), K, W.data(), K, bias.data(), accumulate, a.data(), N);
      gemm_packed_bias(false, true, M, N, K, 1.0f, A.data(), K, W.data(), K, bias.data(),
                       accumulate ? 1.0f : 0.0f, b.data(), N);
      EXPECT_TRUE(bitwise_equal(a, b));
      if (!accumulate) {
        std::vector<float> c(M * N);
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) c[m * N + n] = bias[n];
        gemm_packed(false, true, M, N, K, 1.0f, A.data(), K, W.data(), K, 1.0f, c.data(), N);
        EXPECT_TRUE(bitwise_equal(a, c));
      }
    }
  }
  set_max_isa(Isa::AVX512);
}

TEST(Gemm, EmptyShapes) {
  // K = 0: the empty sum, C = beta * C (beta = 0: zero, even over NaN); M or N = 0: nothing written.
  std::vector<float> C = {1, 2, 3, 4, 5, 6};
  gemm_packed(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 2.0f, C.data(), 3);
  EXPECT_EQ(C, (std::vector<float>{2, 4, 6, 8, 10, 12}));
  C[4] = std::numeric_limits<float>::quiet_NaN();
  gemm_packed(true, true, 2, 3, 0, 1.0f, nullptr, 2, nullptr, 1, 0.0f, C.data(), 3);
  EXPECT_EQ(C, (std::vector<float>{0, 0, 0, 0, 0, 0}));
  C = {1, 2, 3, 4, 5, 6};
  gemm_packed(false, false, 0, 3, 4, 1.0f, nullptr, 4, nullptr, 3, 0.0f, C.data(), 3);
  gemm_packed(false, false, 2, 0, 4, 1.0f, nullptr, 4, nullptr, 1, 0.0f, C.data(), 3);
  EXPECT_EQ(C, (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(Gemm, DispatchFollowsTheSelectedImplementation) {
  // gemm() is gemm_packed by default and gemm_openblas when selected: on a case where their orders of the
  // sums differ, each must give exactly its own implementation's bits.
  const Case c{false, false, 64, 64, 500, 0, 1.0f, 0.0f};
  const Operands o = make(c, 4000);
  const GemmImpl saved = gemm_impl();
  std::vector<float> ours = o.C, blas = o.C, via = o.C;
  gemm_packed(false, false, 64, 64, 500, 1.0f, o.A.data(), o.lda, o.B.data(), o.ldb, 0.0f, ours.data(),
              o.ldc);
  gemm_openblas(false, false, 64, 64, 500, 1.0f, o.A.data(), o.lda, o.B.data(), o.ldb, 0.0f, blas.data(),
                o.ldc);
  ASSERT_FALSE(bitwise_equal(ours, blas)) << "the case must tell the two apart";
  set_gemm_impl(GemmImpl::PACKED);
  gemm(false, false, 64, 64, 500, 1.0f, o.A.data(), o.lda, o.B.data(), o.ldb, 0.0f, via.data(), o.ldc);
  EXPECT_TRUE(bitwise_equal(via, ours));
  set_gemm_impl(GemmImpl::OPENBLAS);
  gemm(false, false, 64, 64, 500, 1.0f, o.A.data(), o.lda, o.B.data(), o.ldb, 0.0f, via.data(), o.ldc);
  EXPECT_TRUE(bitwise_equal(via, blas));
  set_gemm_impl(saved);
}

}  // namespace
}  // namespace bertfit

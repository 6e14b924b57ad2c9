// gemm_nt_small (the AVX-512 linear-layer GEMM) against gemm_reference (double accumulation) on shapes that
// cover every tail of its tiling (6-row weight tiles, 48-row blocks, 16/64-row activation panels, 256-long K
// chunks, 256-row m-blocks, K packed in ranges), with strides, bias or not, accumulate or not; and its
// determinism claims: 1 and 2 threads bitwise equal, every output independent of M, N and of where the call
// splits (the same FMA chain).
#include "backend/cpu/gemm_nt_small.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/cpu_features.h"
#include "core/rng.h"
#include "core/threading.h"
#include "gemm_test_util.h"

namespace bertfit {
namespace {

using test::bitwise_equal;
using test::randn;

struct Case {
  int64_t M, N, K;
  int64_t lda, ldb, ldc;  // >= K, K, N
  bool bias, accumulate;
};

using Fn = void (*)(int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, const float*,
                    bool, float*, int64_t);

// gemm_nt_small without a fused step (the Fn shape; the fused steps are tested in gemm_epilogue_test.cpp).
void nt_small(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              const float* bias, bool accumulate, float* C, int64_t ldc) {
  gemm_nt_small(M, N, K, A, lda, B, ldb, bias, accumulate, C, ldc);
}

// Runs fn on random operands and checks every output against gemm_reference, and that C's padding (columns
// N..ldc-1) is untouched.
void check(const Case& c, Fn fn, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "M=" << c.M << " N=" << c.N << " K=" << c.K << " lda=" << c.lda
                                    << " ldb=" << c.ldb << " ldc=" << c.ldc << " bias=" << c.bias
                                    << " accumulate=" << c.accumulate);
  const std::vector<float> A = randn(static_cast<size_t>(c.M * c.lda), seed);
  const std::vector<float> B = randn(static_cast<size_t>(c.N * c.ldb), seed + 1);
  const std::vector<float> bias = randn(static_cast<size_t>(c.N), seed + 2);
  std::vector<float> C0 = randn(static_cast<size_t>(c.M * c.ldc), seed + 3);
  const float kPad = 12345.0f;
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = c.N; n < c.ldc; ++n) C0[m * c.ldc + n] = kPad;
    // Without accumulate the old C must be ignored, not multiplied by 0: NaN would survive that.
    if (!c.accumulate)
      for (int64_t n = 0; n < c.N; ++n) C0[m * c.ldc + n] = std::numeric_limits<float>::quiet_NaN();
  }

  std::vector<float> C = C0;
  fn(c.M, c.N, c.K, A.data(), c.lda, B.data(), c.ldb, c.bias ? bias.data() : nullptr, c.accumulate, C.data(),
     c.ldc);

  // The reference: C_ref = float(sum_k a b in double) + (bias + C_old), the parenthesis in float.
  std::vector<float> R(static_cast<size_t>(c.M * c.ldc), 0.0f);
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n)
      R[m * c.ldc + n] = (c.bias ? bias[n] : 0.0f) + (c.accumulate ? C0[m * c.ldc + n] : 0.0f);
  gemm_reference(false, true, c.M, c.N, c.K, 1.0f, A.data(), c.lda, B.data(), c.ldb, 1.0f, R.data(), c.ldc);

  // Tolerance: both results are sums of the K products a*b plus bias and C_old, each step rounded once to
  // float (u = 2^-24). gemm_nt_small: K roundings in its FMA chain, then + bias, + C: K + 2 roundings; the
  // reference: the double sum (error ~K 2^-53, negligible), its rounding to float, the float bias + C, the
  // final add: 3 roundings. Higham's bound for recursive summation gives |error| <= gamma_n * S with
  // gamma_n = n u / (1 - n u), n = K + 5 roundings in all, S = sum_k |a_k b_k| + |bias| + |C_old|: a rigorous
  // worst case (not a statistical guess), so this check cannot fail on a correct kernel, while a lost or
  // doubled product (error ~ S / K, 6x above the bound even at K = 300) or a wrong row/column always exceeds
  // it.
  const double u = std::ldexp(1.0, -24);
  const double nr = static_cast<double>(c.K + 5);
  const double gamma = nr * u / (1.0 - nr * u);
  int bad = 0;
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = 0; n < c.N; ++n) {
      double S = (c.bias ? std::fabs(bias[n]) : 0.0) + (c.accumulate ? std::fabs(C0[m * c.ldc + n]) : 0.0);
      for (int64_t k = 0; k < c.K; ++k)
        S += std::fabs(static_cast<double>(A[m * c.lda + k]) * B[n * c.ldb + k]);
      const double got = C[m * c.ldc + n], want = R[m * c.ldc + n];
      if (!(std::fabs(got - want) <= gamma * S) && bad++ < 5)
        ADD_FAILURE() << "C[" << m << "," << n << "] = " << got << ", reference " << want << ", bound "
                      << gamma * S;
    }
    for (int64_t n = c.N; n < c.ldc; ++n)
      if (C[m * c.ldc + n] != kPad && bad++ < 5)
        ADD_FAILURE() << "padding C[" << m << "," << n << "] written";
  }
  EXPECT_EQ(bad, 0);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  // Activation rows: 1 (one lane of a panel), 15/16/17 (a 16-lane group's edges), 63/64/65 (a panel's),
  // 100 (a 3-vector panel tail), 128 (BERT at batch 1), 513 (m-blocks of 256, 256 and 1 rows).
  const int64_t Ms[] = {1, 15, 16, 17, 63, 64, 65, 100, 128, 513};
  // Weight rows x K: N around the 6-row tile (5, 6, 7), the 16-wide write-out and 48-row block (47, 48, 49),
  // several blocks with a tail (97, 200); K around the 16-step loop and the 256 chunk (1, 3, 16, 17, 127,
  // 128, 129, 257, 300).
  const int64_t NKs[][2] = {{1, 1},    {5, 3},    {6, 16},   {7, 17},   {47, 127},
                            {48, 128}, {49, 129}, {97, 300}, {200, 64}, {16, 257}};
  int i = 0;
  for (int64_t M : Ms)
    for (const auto& nk : NKs) {
      const int64_t N = nk[0], K = nk[1];
      // Alternate the variants so every shape class meets each of them somewhere.
      const bool strided = i % 3 == 1;
      out.push_back(
          {M, N, K, strided ? K + 5 : K, strided ? K + 3 : K, strided ? N + 7 : N, i % 2 == 0, i % 4 == 3});
      ++i;
    }
  return out;
}

TEST(GemmNtSmall, MatchesReferenceOnTailsStridesBiasAndAccumulate) {
  if (!gemm_nt_small_available())
    GTEST_SKIP() << "no AVX-512 on this CPU (the fallback test covers the path)";
  uint64_t seed = 100;
  for (const Case& c : cases()) check(c, &nt_small, seed += 10);
  // Every combination of bias and accumulate on one shape with all tails, strided.
  for (int v = 0; v < 4; ++v) check({65, 49, 129, 131, 130, 53, (v & 1) != 0, (v & 2) != 0}, &nt_small, 7);
}

TEST(GemmNtSmall, FallbackWithoutAvx512MatchesReference) {
  // The OpenBLAS path other CPUs take (and BERTFIT_MAX_ISA=avx2), same contract, same bound.
  set_max_isa(Isa::AVX2);
  ASSERT_FALSE(gemm_nt_small_available());
  uint64_t seed = 500;
  for (const Case& c : cases())
    if (c.M <= 128) check(c, &nt_small, seed += 10);
  set_max_isa(Isa::AVX512);
}

TEST(GemmNtSmall, BertBaseShapes) {
  if (!gemm_nt_small_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  // The linear layers of BERT-base at batch 1 (fewer rows: the reference is a triple loop; 128 rows would
  // change nothing but the time, the panels are 64 rows).
  check({70, 2304, 768, 768, 768, 2304, true, false}, &nt_small, 1);
  check({70, 768, 3072, 3072, 3072, 768, true, false}, &nt_small, 2);
}

TEST(GemmNtSmall, OneAndTwoThreadsBitwiseEqualAndSplitIndependent) {
  if (!gemm_nt_small_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  // Large enough to run in parallel (M rounded to 16 x N x K >= 2^21): 2 threads split the weight rows.
  const int64_t M = 130, N = 500, K = 300;
  const std::vector<float> A = randn(M * K, 1), B = randn(N * K, 2), bias = randn(N, 3);
  const int saved = num_threads();
  auto run = [&](int threads) {
    set_num_threads(threads);
    std::vector<float> C(M * N);
    gemm_nt_small(M, N, K, A.data(), K, B.data(), K, bias.data(), false, C.data(), N);
    return C;
  };
  const std::vector<float> c1 = run(1), c2 = run(2);
  set_num_threads(saved);
  EXPECT_TRUE(bitwise_equal(c1, c2));

  // Inside a parallel region the call runs serially in the calling thread (here a worker): the same bits.
  std::vector<float> cin(M * N);
  parallel_region(
      [&](const Team& team) {
        if (team.thread() == team.size() - 1)
          gemm_nt_small(M, N, K, A.data(), K, B.data(), K, bias.data(), false, cin.data(), N);
      },
      true, 2);
  EXPECT_TRUE(bitwise_equal(c1, cin));

  // Each output is one FMA chain over k from 0, whatever the call's M and N: row by row, and a column range
  // starting mid-tile (weight rows 7..306 of B), give the same bits as the whole product.
  std::vector<float> rows(M * N);
  for (int64_t m = 0; m < M; ++m)
    gemm_nt_small(1, N, K, A.data() + m * K, K, B.data(), K, bias.data(), false, rows.data() + m * N, N);
  EXPECT_TRUE(bitwise_equal(c1, rows));
  const int64_t n0 = 7, nc = 300;
  std::vector<float> part(M * nc);
  gemm_nt_small(M, nc, K, A.data(), K, B.data() + n0 * K, K, bias.data() + n0, false, part.data(), nc);
  bool same = true;
  for (int64_t m = 0; m < M; ++m)
    same = same && std::memcmp(&part[m * nc], &c1[m * N + n0], nc * sizeof(float)) == 0;
  EXPECT_TRUE(same);
}

TEST(GemmNtSmall, KPackedInRangesGivesTheSameBits) {
  if (!gemm_nt_small_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  // 300 rows x K = 1100: the panels (2 m-blocks, 256 + 44 rows) exceed the kernel's L2 budget for the first,
  // so it packs K in ranges and carries the partial sums across them; a K-range boundary (not a multiple of
  // 16 from the end) and the 44-row block (one panel, 3 vectors) are included. The chains continue exactly:
  // each row alone (one panel, no ranges) gives the same bits, with 1 and 2 threads, and the values pass the
  // bound.
  const int64_t M = 300, N = 100, K = 1100;
  check({M, N, K, K + 1, K + 2, N + 3, true, true}, &nt_small, 11);
  const std::vector<float> A = randn(M * K, 4), B = randn(N * K, 5), bias = randn(N, 6);
  const int saved = num_threads();
  std::vector<std::vector<float>> whole;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    whole.emplace_back(M * N);
    gemm_nt_small(M, N, K, A.data(), K, B.data(), K, bias.data(), false, whole.back().data(), N);
  }
  set_num_threads(saved);
  EXPECT_TRUE(bitwise_equal(whole[0], whole[1]));
  std::vector<float> rows(M * N);
  for (int64_t m = 0; m < M; ++m)
    gemm_nt_small(1, N, K, A.data() + m * K, K, B.data(), K, bias.data(), false, rows.data() + m * N, N);
  EXPECT_TRUE(bitwise_equal(whole[0], rows));
}

// gemm_nt_small on B packed (the Fn shape: packs, then multiplies).
void nt_small_packed(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                     int64_t ldb, const float* bias, bool accumulate, float* C, int64_t ldc) {
  std::vector<float> packed(static_cast<size_t>(nt_small_packed_floats(N, K)), -1.0f);
  nt_small_pack(N, K, B, ldb, packed.data());
  gemm_nt_small_packed(M, N, K, A, lda, packed.data(), bias, accumulate, C, ldc);
}

TEST(GemmNtSmall, PackedWeightsMatchTheReferenceAndTheUnpackedBits) {
  // Every tail of the tiling, as above: the packed layout rounds the last block up to whole 6-row tiles and
  // keeps K chunks of 256; the values pass the bound, and they are the unpacked call's bits.
  uint64_t seed = 900;
  for (const Case& c : cases()) {
    check(c, &nt_small_packed, seed += 10);
    SCOPED_TRACE(::testing::Message() << "M=" << c.M << " N=" << c.N << " K=" << c.K);
    const std::vector<float> A = randn(c.M * c.lda, seed), B = randn(c.N * c.ldb, seed + 1),
                             bias = randn(c.N, seed + 2), C0 = randn(c.M * c.ldc, seed + 3);
    std::vector<float> plain = C0, packed = C0;
    nt_small(c.M, c.N, c.K, A.data(), c.lda, B.data(), c.ldb, c.bias ? bias.data() : nullptr, c.accumulate,
             plain.data(), c.ldc);
    nt_small_packed(c.M, c.N, c.K, A.data(), c.lda, B.data(), c.ldb, c.bias ? bias.data() : nullptr,
                    c.accumulate, packed.data(), c.ldc);
    EXPECT_TRUE(bitwise_equal(plain, packed));
    // The size: N rounded up to whole 6-row tiles; the round trip gives B back (its rows' padding untouched).
    EXPECT_EQ(nt_small_packed_floats(c.N, c.K), (c.N + 5) / 6 * 6 * c.K);
    std::vector<float> p(static_cast<size_t>(nt_small_packed_floats(c.N, c.K))), back(B.size(), 7.0f);
    nt_small_pack(c.N, c.K, B.data(), c.ldb, p.data());
    nt_small_unpack(c.N, c.K, p.data(), back.data(), c.ldb);
    bool same = true;
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t k = 0; k < c.ldb; ++k)
        same = same && back[n * c.ldb + k] == (k < c.K ? B[n * c.ldb + k] : 7.0f);
    EXPECT_TRUE(same);
  }
}

TEST(GemmNtSmall, PackedWeightsSameBitsWithThreadsRangesRowBlocksAndTheFusedGelu) {
  if (!gemm_nt_small_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  // BERT-base's ffn_out at 130 rows (K packed in ranges, 2 threads, a 2-row panel tail) and ffn_in with its
  // fused GELU (keeping the pre-activation), 1 and 2 threads: the same bits as unpacked.
  const int saved = num_threads();
  for (const auto& [N, K, gelu] : {std::tuple<int64_t, int64_t, bool>{768, 3072, false}, {3072, 768, true}}) {
    const int64_t M = 130;
    const std::vector<float> A = randn(M * K, 41), B = randn(N * K, 42), bias = randn(N, 43);
    std::vector<float> packed(static_cast<size_t>(nt_small_packed_floats(N, K)));
    nt_small_pack(N, K, B.data(), K, packed.data());
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      std::vector<float> c0(M * N), c1(M * N), pre0(M * N), pre1(M * N);
      const Epilogue e0 = gelu ? Epilogue{EpilogueOp::GELU, pre0.data(), 0} : Epilogue{};
      const Epilogue e1 = gelu ? Epilogue{EpilogueOp::GELU, pre1.data(), 0} : Epilogue{};
      gemm_nt_small(M, N, K, A.data(), K, B.data(), K, bias.data(), false, c0.data(), N, e0);
      gemm_nt_small_packed(M, N, K, A.data(), K, packed.data(), bias.data(), false, c1.data(), N, e1);
      EXPECT_TRUE(bitwise_equal(c0, c1)) << "N=" << N << " threads=" << threads;
      EXPECT_TRUE(bitwise_equal(pre0, pre1)) << "N=" << N << " threads=" << threads;
    }
  }
  set_num_threads(saved);
  // Rows [96, 196) of a packed [196, 40] matrix (whole 48-row blocks to the end) are a packed [100, 40]
  // matrix at packed + 96 K (what the model's [CLS]-query layer multiplies as Q and K|V).
  const int64_t N = 196, K = 40, M = 9, n0 = 96;
  const std::vector<float> A = randn(M * K, 44), B = randn(N * K, 45);
  std::vector<float> packed(static_cast<size_t>(nt_small_packed_floats(N, K))), whole(M * N),
      part(M * (N - n0));
  nt_small_pack(N, K, B.data(), K, packed.data());
  gemm_nt_small_packed(M, N, K, A.data(), K, packed.data(), nullptr, false, whole.data(), N);
  gemm_nt_small_packed(M, N - n0, K, A.data(), K, packed.data() + n0 * K, nullptr, false, part.data(),
                       N - n0);
  bool same = true;
  for (int64_t m = 0; m < M; ++m)
    same = same && std::memcmp(&part[m * (N - n0)], &whole[m * N + n0], (N - n0) * sizeof(float)) == 0;
  EXPECT_TRUE(same);
}

TEST(GemmNtSmall, PackedWeightsWithoutAvx512UnpackAndMatchTheReference) {
  set_max_isa(Isa::AVX2);
  ASSERT_FALSE(gemm_nt_small_available());
  uint64_t seed = 1500;
  for (const Case& c : cases())
    if (c.M <= 64) check(c, &nt_small_packed, seed += 10);
  set_max_isa(Isa::AVX512);
}

TEST(GemmNtSmall, EmptyShapes) {
  // K = 0: C = bias (+ C); M or N = 0: nothing written.
  std::vector<float> C = {1, 2, 3, 4, 5, 6};
  const std::vector<float> bias = {10, 20, 30};
  gemm_nt_small(2, 3, 0, nullptr, 1, nullptr, 1, bias.data(), true, C.data(), 3);
  EXPECT_EQ(C, (std::vector<float>{11, 22, 33, 14, 25, 36}));
  gemm_nt_small(2, 3, 0, nullptr, 1, nullptr, 1, nullptr, false, C.data(), 3);
  EXPECT_EQ(C, (std::vector<float>{0, 0, 0, 0, 0, 0}));
  gemm_nt_small(0, 3, 4, nullptr, 4, nullptr, 4, bias.data(), false, C.data(), 3);
  gemm_nt_small(2, 0, 4, nullptr, 4, nullptr, 4, bias.data(), false, C.data(), 3);
  EXPECT_EQ(C, (std::vector<float>{0, 0, 0, 0, 0, 0}));
}

}  // namespace
}  // namespace bertfit

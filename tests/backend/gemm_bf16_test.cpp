// gemm_bf16 (backend/cpu/gemm_bf16.h) against two oracles: gemm_bf16_reference (bf16-rounded operands, sums
// in double) within a derived bound, and bit for bit a scalar emulation of its contract (pairs of k, the odd
// product added before the even one, as vdpbf16ps does); every transpose, sizes around the tiles (12 x 32,
// 6 x 16), the row blocks (96, 144), the K chunks (1024, 512) and odd K, strides, alpha, beta and bias. Then
// the determinism it promises: AVX512_BF16 and the AVX2 fallback bitwise equal, 1 and 2 threads bitwise
// equal.
#include "backend/cpu/gemm_bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/bf16.h"
#include "core/cpu_features.h"
#include "core/threading.h"
#include "gemm_test_util.h"

namespace bertfit {
namespace {

using test::bitwise_equal;
using test::randn;

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  int64_t pad;
  float alpha, beta;
  bool bias;
};

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
    if (c.beta == 0.0f)  // beta = 0 ignores C (NaN would survive 0 * C)
      for (int64_t n = 0; n < c.N; ++n) o.C[m * o.ldc + n] = std::numeric_limits<float>::quiet_NaN();
  }
  return o;
}

float a_at(const Case& c, const Operands& o, int64_t m, int64_t k) {
  return c.ta ? o.A[k * o.lda + m] : o.A[m * o.lda + k];
}
float b_at(const Case& c, const Operands& o, int64_t k, int64_t n) {
  return c.tb ? o.B[n * o.ldb + k] : o.B[k * o.ldb + n];
}

std::vector<float> run(const Case& c, const Operands& o) {
  std::vector<float> C = o.C;
  gemm_bf16(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb,
            c.bias ? o.bias.data() : nullptr, c.beta, C.data(), o.ldc);
  return C;
}

// The contract of gemm_bf16.h as scalar code. (std::fma of an exact product is the rounded sum; nothing
// here that -ffp-contract could change.)
std::vector<float> run_contract(const Case& c, const Operands& o) {
  auto bf = [](float x) {
    const float r = round_to_bf16(x);
    return std::fpclassify(r) == FP_SUBNORMAL ? 0.0f : r;
  };
  std::vector<float> C = o.C;
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < c.K; k += 2) {
        if (k + 1 < c.K) acc = std::fma(bf(a_at(c, o, m, k + 1)), bf(b_at(c, o, k + 1, n)), acc);
        acc = std::fma(bf(a_at(c, o, m, k)), bf(b_at(c, o, k, n)), acc);
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

// Bound: with a_k, b_k the bf16-rounded operands, each product is exact in float (8 + 8 significant bits),
// so the kernel's result is the exact E = alpha sum_k a_k b_k + bias + beta C0 after K rounded additions,
// one rounded alpha multiply, one bias addition and one final fma: K + 3 roundings. The reference sums in
// double (error <= K 2^-53 relative, far below one float rounding) and rounds once. Higham's recursive-sum
// bound: |result - E| <= gamma_n (|alpha| S + |bias| + |beta C0|), gamma_n = n u / (1 - n u), u = 2^-24,
// S = sum_k |a_k b_k|; n = K + 8 covers both sides. A dropped or doubled product (~ S / K, > 10x the bound
// at K = 300) fails it. The bf16 rounding itself is not in the bound: both sides round the operands alike.
void check_against_reference(const Case& c, const Operands& o, const std::vector<float>& got) {
  std::vector<float> R = o.C;
  gemm_bf16_reference(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb,
                      c.bias ? o.bias.data() : nullptr, c.beta, R.data(), o.ldc);
  const double u = std::ldexp(1.0, -24), nr = static_cast<double>(c.K + 8);
  const double gamma = nr * u / (1.0 - nr * u);
  int bad = 0;
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = 0; n < c.N; ++n) {
      double S = 0;
      for (int64_t k = 0; k < c.K; ++k)
        S +=
            std::fabs(static_cast<double>(round_to_bf16(a_at(c, o, m, k))) * round_to_bf16(b_at(c, o, k, n)));
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
  // 1, 5, 17, 63-65: inside and around one tile of each kernel; 97 and 145: AVX512_BF16's 96-row block + 1
  // and the fallback's 144 + 1; K = 7, 65, 513, 1025, 2101: odd K (a zero-padded last pair), K past the
  // fallback's 512-long chunk and AVX512_BF16's 1024-long one (partial sums stored and reloaded).
  const int64_t shapes[][3] = {{1, 1, 1},     {5, 3, 7},       {1, 65, 300}, {17, 1, 64},
                               {63, 64, 65},  {64, 65, 63},    {65, 17, 5},  {145, 33, 513},
                               {13, 300, 17}, {300, 63, 1025}, {7, 129, 2},  {97, 40, 2101}};
  const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, -2.0f}, {-1.5f, 0.0f}};
  int i = 0;
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t) {
      out.push_back({(t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], i % 3 == 1 ? 3 : 0, ab[i % 4][0],
                     ab[i % 4][1], i % 5 < 2});
      ++i;
    }
  return out;
}

TEST(GemmBf16, MatchesReferenceAndContractOnEveryTransposeSizeStrideAlphaBeta) {
  uint64_t seed = 1;
  for (Isa isa : {Isa::AVX512, Isa::AVX2}) {
    set_max_isa(isa);
    for (const Case& c : cases()) {
      SCOPED_TRACE(describe(c) << " path=" << gemm_bf16_path());
      const Operands o = make(c, seed += 10);
      const std::vector<float> got = run(c, o);
      check_against_reference(c, o, got);
      EXPECT_TRUE(bitwise_equal(got, run_contract(c, o)));
    }
  }
  set_max_isa(Isa::AVX512);
}

TEST(GemmBf16, Avx512Bf16AndFallbackBitwiseEqual) {
  set_max_isa(Isa::AVX512);
  if (!use_avx512_bf16()) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  uint64_t seed = 1000;
  for (int t = 0; t < 4; ++t) {
    const Case c{(t & 1) != 0, (t & 2) != 0, 301, 133, 1100, 1, 0.25f, 1.0f, true};
    SCOPED_TRACE(describe(c));
    const Operands o = make(c, seed += 10);
    const std::vector<float> a = run(c, o);
    set_max_isa(Isa::AVX2);
    const std::vector<float> b = run(c, o);
    set_max_isa(Isa::AVX512);
    EXPECT_TRUE(bitwise_equal(a, b));
  }
}

// vdpbf16ps and the fallback's two float FMAs per pair give the same bits on operands at the rounding's
// corners, as packed (the vector packing with vcvtneps2bf16 on one path, the scalar loops on the other):
// ties to even either way (1 + 2^-8, 1 + 3 * 2^-8), a carry into the exponent (the float below 2), the
// largest floats that still round to a finite bf16, subnormals and zeros of both signs (read as zero; the
// largest subnormal too, which bf16_from_float alone would round up to the smallest normal), among random
// values; every transpose, odd K.
TEST(GemmBf16, RoundingCornersGiveTheSameBitsOnBothPaths) {
  set_max_isa(Isa::AVX512);
  if (!use_avx512_bf16()) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  const float corners[] = {1.00390625f,
                           1.01171875f,
                           -1.00390625f,
                           std::nextafter(2.0f, 0.0f),
                           3.38e38f,
                           -3.38e38f,
                           1e-40f,
                           -1e-40f,
                           0.0f,
                           -0.0f,
                           std::numeric_limits<float>::min(),
                           -std::numeric_limits<float>::min(),
                           std::nextafter(std::numeric_limits<float>::min(), 0.0f),
                           -std::nextafter(std::numeric_limits<float>::min(), 0.0f)};
  constexpr size_t kCorners = sizeof(corners) / sizeof(corners[0]);
  uint64_t seed = 3000;
  for (int t = 0; t < 8; ++t) {
    const Case c{(t & 1) != 0, (t & 2) != 0, 37, 45, 67, 2, 1.0f, 0.0f, false};
    SCOPED_TRACE(describe(c) << (t < 4 ? " corners in A" : " corners in B"));
    Operands o = make(c, seed += 10);
    // Every third element of one operand is a corner; the other operand is scaled by 1e-30 so that no
    // product or sum overflows (3.4e38 x 1e-30).
    std::vector<float>& with = t < 4 ? o.A : o.B;
    std::vector<float>& other = t < 4 ? o.B : o.A;
    for (size_t i = 0; i < with.size(); ++i)
      if (i % 3 == 1) with[i] = corners[i / 3 % kCorners];
    for (float& x : other) x *= 1e-30f;
    const std::vector<float> a = run(c, o);
    set_max_isa(Isa::AVX2);
    const std::vector<float> b = run(c, o);
    set_max_isa(Isa::AVX512);
    EXPECT_TRUE(bitwise_equal(a, b));
    for (float x : a) EXPECT_TRUE(std::isfinite(x));
  }
}

TEST(GemmBf16, OneAndTwoThreadsBitwiseEqual) {
  const int saved = num_threads();
  uint64_t seed = 2000;
  // Wide (the column split) and tall (the row split) products, both above the parallel threshold.
  for (const Case& c : {Case{false, true, 256, 768, 768, 0, 1.0f, 0.0f, true},
                        Case{true, false, 768, 40, 700, 0, 1.0f, 1.0f, false}}) {
    SCOPED_TRACE(describe(c));
    const Operands o = make(c, seed += 10);
    set_num_threads(1);
    const std::vector<float> one = run(c, o);
    set_num_threads(2);
    const std::vector<float> two = run(c, o);
    EXPECT_TRUE(bitwise_equal(one, two));
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace bertfit

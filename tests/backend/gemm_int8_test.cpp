// gemm_int8 (backend/cpu/gemm_int8.h) against its exact integer oracle, bit for bit: the quantization
// formula on hand-made rows (ties, clamping, zero rows), then the GEMM with the VNNI kernel and the plain
// fallback on sizes around the 12 x 32 tile, the 144-row blocks, the 1024-long K chunks and K not a multiple
// of 4, with and without bias, strided inputs and outputs; 1 and 2 threads equal; and the error of the
// quantized product against the float one within the bound the quantization steps give.
#include "backend/cpu/gemm_int8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "bertfit/error.h"
#include "core/cpu_features.h"
#include "core/threading.h"
#include "gemm_test_util.h"

namespace bertfit {
namespace {

using test::bitwise_equal;
using test::randn;

TEST(QuantizeRows, SymmetricPerRowRoundHalfEvenAndZeroRows) {
  // Row 0: max 127 -> scale 1, values on and between integers (ties go to even); row 1: all zero.
  const std::vector<float> x = {127.0f, -127.0f, 2.5f, 3.5f, -2.5f, 0.49f, 1.5f, -0.5f,
                                0.0f,   0.0f,    0.0f, 0.0f, 0.0f,  0.0f,  0.0f, 0.0f};
  std::vector<int8_t> q(16);
  std::vector<float> s(2);
  quantize_rows(x.data(), 2, 8, 8, q.data(), 8, s.data());
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(s[1], 0.0f);
  const int8_t want0[8] = {127, -127, 2, 4, -2, 0, 2, 0};
  for (int k = 0; k < 8; ++k) EXPECT_EQ(q[k], want0[k]) << k;
  for (int k = 8; k < 16; ++k) EXPECT_EQ(q[k], 0);
  // A row whose maximum is negative: -max maps to -127 exactly, the rest in proportion.
  const std::vector<float> y = {-4.0f, 1.0f, 2.0f};
  quantize_rows(y.data(), 1, 3, 3, q.data(), 3, s.data());
  EXPECT_EQ(q[0], -127);
  EXPECT_EQ(q[1], 32);  // 31.75 -> 32
  EXPECT_EQ(q[2], 64);  // 63.5 -> 64 (tie, even)
  EXPECT_EQ(s[0], 4.0f / 127.0f);
}

struct Case {
  int64_t M, N, K, pad;
  bool bias;
};

struct Operands {
  std::vector<float> x, w, w_scale, bias, y;
  std::vector<int8_t> wq;
  int64_t ldx, ldy;
};

Operands make(const Case& c, uint64_t seed) {
  Operands o;
  o.ldx = c.K + c.pad;
  o.ldy = c.N + c.pad;
  o.x = randn(static_cast<size_t>(c.M * o.ldx), seed);
  o.w = randn(static_cast<size_t>(c.N * c.K), seed + 1);
  o.bias = randn(static_cast<size_t>(c.N), seed + 2);
  o.wq.resize(static_cast<size_t>(c.N * c.K));
  o.w_scale.resize(static_cast<size_t>(c.N));
  quantize_rows(o.w.data(), c.N, c.K, c.K, o.wq.data(), c.K, o.w_scale.data());
  o.y.assign(static_cast<size_t>(c.M * o.ldy), 12345.0f);  // padding must stay untouched
  return o;
}

std::vector<float> run(const Case& c, const Operands& o, const Int8Weights& W) {
  std::vector<float> y = o.y;
  gemm_int8(o.x.data(), c.M, o.ldx, W, c.bias ? o.bias.data() : nullptr, y.data(), o.ldy);
  return y;
}

std::vector<float> run_reference(const Case& c, const Operands& o) {
  std::vector<float> y = o.y;
  gemm_int8_reference(o.x.data(), c.M, o.ldx, o.wq.data(), o.w_scale.data(), c.N, c.K,
                      c.bias ? o.bias.data() : nullptr, y.data(), o.ldy);
  return y;
}

TEST(GemmInt8, EqualsTheExactIntegerReferenceOnEveryPath) {
  // 1, 5, 13, 31-33, 145, 300: inside and around the 12 x 32 tile and the 144-row block; K = 1, 3, 5, 63
  // (not a multiple of 4: zero-padded groups), 1025 and 3000 (past the 1024-long chunk: partial sums kept).
  const Case cases[] = {{1, 1, 1, 0, true},       {5, 3, 3, 1, false},     {13, 33, 64, 0, true},
                        {12, 32, 5, 2, true},     {145, 31, 63, 0, false}, {300, 65, 1025, 3, true},
                        {17, 100, 3000, 0, true}, {2, 768, 768, 0, true}};
  uint64_t seed = 1;
  for (Isa isa : {Isa::AVX512, Isa::AVX2}) {
    set_max_isa(isa);
    for (const Case& c : cases) {
      SCOPED_TRACE(::testing::Message() << "M=" << c.M << " N=" << c.N << " K=" << c.K << " pad=" << c.pad
                                        << " path=" << gemm_int8_path());
      const Operands o = make(c, seed += 10);
      const Int8Weights W(o.wq.data(), o.w_scale.data(), c.N, c.K);
      EXPECT_TRUE(bitwise_equal(run(c, o, W), run_reference(c, o)));
    }
  }
  set_max_isa(Isa::AVX512);
}

TEST(GemmInt8, OneAndTwoThreadsBitwiseEqual) {
  const int saved = num_threads();
  uint64_t seed = 500;
  for (const Case& c : {Case{256, 768, 768, 0, true}, Case{400, 40, 3072, 0, true}}) {
    const Operands o = make(c, seed += 10);
    const Int8Weights W(o.wq.data(), o.w_scale.data(), c.N, c.K);
    set_num_threads(1);
    const std::vector<float> one = run(c, o, W);
    set_num_threads(2);
    const std::vector<float> two = run(c, o, W);
    EXPECT_TRUE(bitwise_equal(one, two)) << "M=" << c.M << " N=" << c.N;
  }
  set_num_threads(saved);
}

// The quantized product against the float one. With x = xq sx + ex and w = wq sw + ew, |ex| <= sx / 2 and
// |ew| <= sw / 2 per element (round to nearest), so |sum x w - sum xq wq sx sw| <= sum_k (|x_k| sw / 2 +
// |w_k| sx / 2 + sx sw / 4); the float epilogue adds a few roundings of the (smaller) result, covered by
// doubling. A wrong scale, a lost group or an unshifted activation breaks it by orders of magnitude.
TEST(GemmInt8, CloseToTheFloatProductWithinTheQuantizationBound) {
  const Case c{37, 70, 300, 0, false};
  const Operands o = make(c, 900);
  const Int8Weights W(o.wq.data(), o.w_scale.data(), c.N, c.K);
  const std::vector<float> y = run(c, o, W);
  for (int64_t m = 0; m < c.M; ++m) {
    float amax = 0;
    for (int64_t k = 0; k < c.K; ++k) amax = std::max(amax, std::fabs(o.x[m * o.ldx + k]));
    const double sx = amax / 127.0;
    for (int64_t n = 0; n < c.N; ++n) {
      double exact = 0, bound = 0;
      const double sw = o.w_scale[n];
      for (int64_t k = 0; k < c.K; ++k) {
        const double xv = o.x[m * o.ldx + k], wv = o.w[n * c.K + k];
        exact += xv * wv;
        bound += std::fabs(xv) * sw / 2 + std::fabs(wv) * sx / 2 + sx * sw / 4;
      }
      ASSERT_LE(std::fabs(y[m * o.ldy + n] - exact), 2 * bound) << m << "," << n;
    }
  }
}

TEST(GemmInt8, RefusesRowsTooLongForExactSums) {
  const std::vector<int8_t> wq(70000, 1);
  const float s = 1.0f;
  EXPECT_THROW(Int8Weights(wq.data(), &s, 1, 70000), ConfigError);
}

}  // namespace
}  // namespace bertfit

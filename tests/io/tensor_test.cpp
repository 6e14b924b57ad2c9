// DType conversions: f16/bf16/f8 decoding against known bit patterns and the CPU's own F16C rounding, strided
// views as torch's .t() produces them, integer widening.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <random>

#include "bertfit/error.h"
#include "bertfit/io/tensor.h"

using namespace bertfit;

namespace {
uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

TEST(DType, NamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(DType::U64); ++i) {
    DType d = static_cast<DType>(i), back;
    ASSERT_TRUE(parse_dtype(dtype_name(d), &back)) << dtype_name(d);
    EXPECT_EQ(back, d);
  }
  DType d;
  EXPECT_FALSE(parse_dtype("F31", &d));
  EXPECT_EQ(dtype_bits(DType::BF16), 16);
  EXPECT_EQ(dtype_bits(DType::F6_E3M2), 6);
}

TEST(DType, F16KnownValues) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x8400), -std::ldexp(1.0f, -14));
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7C00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_EQ(bits(f16_to_f32(0x8000)), 0x80000000u);
}

TEST(DType, F16MatchesHardwareEverywhere) {
  // Every half converts exactly as the CPU's F16C does (the oracle), and back.
  for (uint32_t h = 0; h < 65536; ++h) {
    const float ref = _cvtsh_ss(static_cast<uint16_t>(h));
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(ref)) {
      ASSERT_TRUE(std::isnan(got)) << h;
      continue;
    }
    ASSERT_EQ(bits(got), bits(ref)) << h;
    ASSERT_EQ(f32_to_f16(got), h) << h;
  }
  // Random floats across the whole exponent range, rounding to nearest even like _cvtss_sh.
  std::mt19937 rng(7);
  for (int i = 0; i < 1000000; ++i) {
    const float f = from_bits(rng());
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)) << std::hexfloat << f;
  }
}

TEST(DType, BF16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808001)), 0x3F81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0x7F800001)))));  // signalling NaN stays NaN
  EXPECT_EQ(bf16_to_f32(0xC040), -3.0f);
}

TEST(DType, F8Decoding) {
  auto dec = [](DType d, uint8_t v) {
    TensorRef t{"x", d, {}, &v, 1, {}};
    return to_f32(t)[0];
  };
  EXPECT_EQ(dec(DType::F8_E4M3, 0x7E), 448.0f);
  EXPECT_TRUE(std::isnan(dec(DType::F8_E4M3, 0x7F)));
  EXPECT_EQ(dec(DType::F8_E4M3, 0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(dec(DType::F8_E4M3, 0x38), 1.0f);
  EXPECT_EQ(dec(DType::F8_E5M2, 0x7B), 57344.0f);
  EXPECT_TRUE(std::isinf(dec(DType::F8_E5M2, 0x7C)));
  EXPECT_EQ(dec(DType::F8_E5M2, 0x3C), 1.0f);
  EXPECT_EQ(dec(DType::F8_E8M0, 0x7F), 1.0f);
  EXPECT_EQ(dec(DType::F8_E4M3FNUZ, 0x7F), 240.0f);
  EXPECT_TRUE(std::isnan(dec(DType::F8_E4M3FNUZ, 0x80)));
  EXPECT_EQ(dec(DType::F8_E5M2FNUZ, 0x7F), 57344.0f);
}

TEST(TensorRef, StridedViewsConvert) {
  // A 2x3 storage viewed transposed (3x2, strides [1, 3]) as torch's .t() does.
  const float storage[6] = {0, 1, 2, 3, 4, 5};
  TensorRef t{"w.t", DType::F32, {3, 2}, reinterpret_cast<const uint8_t*>(storage), sizeof storage, {1, 3}};
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(to_f32(t), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  auto bytes = contiguous_bytes(t);
  std::vector<float> back(6);
  std::memcpy(back.data(), bytes.data(), 24);
  EXPECT_EQ(back, (std::vector<float>{0, 3, 1, 4, 2, 5}));
  // A view that would read past its buffer is refused instead of read.
  TensorRef bad = t;
  bad.nbytes = 20;
  EXPECT_THROW(to_f32(bad), FormatError);
}

TEST(TensorRef, IntegerWidening) {
  const int32_t v[3] = {-5, 0, 2147483647};
  TensorRef t{"ids", DType::I32, {3}, reinterpret_cast<const uint8_t*>(v), sizeof v, {}};
  EXPECT_EQ(to_i64(t), (std::vector<int64_t>{-5, 0, 2147483647}));
  EXPECT_THROW(to_f32(t), FormatError);
  const uint64_t big = ~uint64_t{0};
  TensorRef u{"u", DType::U64, {}, reinterpret_cast<const uint8_t*>(&big), 8, {}};
  EXPECT_THROW(to_i64(u), FormatError);
  const uint8_t b[2] = {0, 7};
  TensorRef bo{"mask", DType::BOOL, {2}, b, 2, {}};
  EXPECT_EQ(to_i64(bo), (std::vector<int64_t>{0, 1}));
}

TEST(TensorRef, EmptyAndScalar) {
  TensorRef e{"e", DType::F32, {0, 1000000000000}, nullptr, 0, {}};
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(to_f32(e).empty());
  const float s = 2.5f;
  TensorRef r{"s", DType::F32, {}, reinterpret_cast<const uint8_t*>(&s), 4, {}};
  EXPECT_EQ(to_f32(r), std::vector<float>{2.5f});
}

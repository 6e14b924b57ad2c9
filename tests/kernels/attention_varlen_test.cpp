// attention_forward_varlen (padding-free inference) against attention_forward on the same tokens laid out
// padded: bitwise equal context rows for every real token, with lengths that end inside a chunk of 8 keys, on
// a chunk boundary, in the padded row's scalar tail (T = 45 is not a multiple of 8), at T, 1 and 0.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/rng.h"
#include "kernels/attention.h"

namespace bertfit {
namespace {

TEST(AttentionVarlen, GivesThePaddedForwardsBitsForEveryRealToken) {
  const int64_t T = 45, C = 64, NH = 4, C3 = 3 * C;
  const std::vector<int32_t> len = {45, 41, 40, 33, 1, 0, 17, 44};
  const int64_t B = static_cast<int64_t>(len.size());
  Rng rng(11);
  std::vector<float> padded_qkv(static_cast<size_t>(B * T * C3));
  for (float& x : padded_qkv) x = 2.0f * rng.uniform() - 1.0f;
  std::vector<uint8_t> mask(static_cast<size_t>(B * T));
  std::vector<int32_t> offset(static_cast<size_t>(B));
  int64_t rows = 0;
  for (int64_t b = 0; b < B; ++b) {
    offset[b] = static_cast<int32_t>(rows);
    rows += len[b];
    for (int64_t t = 0; t < T; ++t) mask[b * T + t] = t < len[b];
  }
  // The real tokens' rows, consecutive.
  std::vector<float> qkv(static_cast<size_t>(rows * C3));
  for (int64_t b = 0; b < B; ++b)
    std::memcpy(&qkv[offset[b] * C3], &padded_qkv[b * T * C3], sizeof(float) * len[b] * C3);
  AlignedBuffer<float> scratch(static_cast<size_t>(attention_scratch_floats(T, 8)));
  std::vector<float> padded_ctx(static_cast<size_t>(B * T * C));
  attention_forward(padded_ctx.data(), nullptr, padded_qkv.data(), mask.data(), {B, T, C, NH}, 0.0f, 0,
                    scratch.data());
  std::vector<float> ctx(static_cast<size_t>(rows * C), -7.0f);
  attention_forward_varlen(ctx.data(), qkv.data(), offset.data(), len.data(), B, T, C, NH, scratch.data());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < len[b]; ++t)
      EXPECT_EQ(std::memcmp(&ctx[(offset[b] + t) * C], &padded_ctx[(b * T + t) * C], sizeof(float) * C), 0)
          << "sequence " << b << " token " << t;
}

}  // namespace
}  // namespace bertfit

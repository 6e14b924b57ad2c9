// float -> bf16 (backend/cpu/bf16.h) against PyTorch's tensor.to(torch.bfloat16), bit for bit, on the golden
// file of tools/reference/bf16_golden.py (ties above even and odd values, their neighbours, subnormals,
// overflow to infinity, NaNs, random bit patterns and normal values): the scalar and the bulk conversion.
#include "backend/cpu/bf16.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace bertfit {
namespace {

struct Golden {
  std::vector<float> in;
  std::vector<uint16_t> want;
};

Golden read_golden() {
  Golden g;
  std::ifstream f(std::string(BERTFIT_FIXTURES) + "/backend/bf16_golden.txt");
  EXPECT_TRUE(f.good()) << "missing tests/fixtures/backend/bf16_golden.txt";
  std::string line;
  while (std::getline(f, line)) {
    unsigned in_bits = 0, out_bits = 0;
    if (std::sscanf(line.c_str(), "%x %x", &in_bits, &out_bits) != 2) continue;
    float x;
    const uint32_t u = in_bits;
    std::memcpy(&x, &u, 4);
    g.in.push_back(x);
    g.want.push_back(static_cast<uint16_t>(out_bits));
  }
  return g;
}

TEST(Bf16, ScalarConversionMatchesPyTorch) {
  const Golden g = read_golden();
  ASSERT_GT(g.in.size(), 3000u);
  int bad = 0;
  for (size_t i = 0; i < g.in.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &g.in[i], 4);
    const uint16_t got = bf16_from_float(g.in[i]);
    if (got != g.want[i] && bad++ < 10)
      ADD_FAILURE() << std::hex << "float 0x" << u << ": 0x" << got << ", torch 0x" << g.want[i];
  }
  EXPECT_EQ(bad, 0);
}

TEST(Bf16, BulkConversionMatchesPyTorchAtEveryOffset) {
  const Golden g = read_golden();
  // Every start offset modulo the vector widths: the vectorised body and its scalar remainder.
  for (size_t off = 0; off < 17; ++off) {
    const int64_t n = static_cast<int64_t>(g.in.size() - off);
    std::vector<uint16_t> got(static_cast<size_t>(n));
    floats_to_bf16(g.in.data() + off, got.data(), n);
    EXPECT_EQ(0, std::memcmp(got.data(), g.want.data() + off, got.size() * 2)) << "offset " << off;
  }
}

TEST(Bf16, BackToFloatIsExactAndRoundingIsIdempotent) {
  const Golden g = read_golden();
  for (size_t i = 0; i < g.in.size(); ++i) {
    const float r = round_to_bf16(g.in[i]);
    if (r != r) continue;  // NaN
    EXPECT_EQ(bf16_from_float(r), g.want[i]);
    uint32_t u;
    std::memcpy(&u, &r, 4);
    EXPECT_EQ(u & 0xFFFFu, 0u);
  }
}

}  // namespace
}  // namespace bertfit

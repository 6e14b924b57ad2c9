// What the GEMM tests share: seeded normal inputs and a bitwise comparison.
#pragma once

#include <cstring>
#include <vector>

#include "core/rng.h"

namespace bertfit::test {

inline std::vector<float> randn(size_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(r.normal());
  return v;
}

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace bertfit::test

// Deterministic column sums over rows, shared by the bias, LayerNorm and embedding gradients.
#pragma once

#include <cstdint>

namespace bertfit {

// Columns per parallel task: 64 floats = 4 cache lines, enough to vectorise, small enough to split C=128.
constexpr int64_t kColumnBlock = 64;

// dst[c] += sum_n src[n * ld + c] for c < C, summed in row order (same result for any thread count).
void column_sum_accumulate(float* dst, const float* src, int64_t N, int64_t C, int64_t ld);

}  // namespace bertfit

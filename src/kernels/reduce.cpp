#include "kernels/reduce.h"
#include "core/threading.h"

#include <algorithm>

namespace bertfit {

void column_sum_accumulate(float* dst, const float* src, int64_t N, int64_t C, int64_t ld) {
  const int64_t nblocks = (C + kColumnBlock - 1) / kColumnBlock;
  parallel_for(0, nblocks, N * C >= kParallelMinWork, [&](int64_t blk) {
    const int64_t c0 = blk * kColumnBlock, c1 = std::min(C, c0 + kColumnBlock);
    float acc[kColumnBlock] = {0};
    for (int64_t n = 0; n < N; ++n) {
      const float* row = src + n * ld;
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
    }
    for (int64_t c = c0; c < c1; ++c) dst[c] += acc[c - c0];
  });
}

}  // namespace bertfit

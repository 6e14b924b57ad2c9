#include "kernels/rows.h"

#include <algorithm>
#include <cstring>
#include "core/threading.h"

namespace bertfit {

namespace {
// Below this many floats one thread copies: a fork and join (5-20 us) costs more than the copy.
constexpr int64_t kParallelMinFloats = int64_t{1} << 16;
}  // namespace

void gather_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t width) {
  const size_t bytes = static_cast<size_t>(width) * sizeof(float);
  if (dst == src) {  // front to back: row i is written after every row < i was read
    for (int64_t i = 0; i < n; ++i)
      if (rows[i] != i) std::memmove(dst + i * width, src + int64_t{rows[i]} * width, bytes);
    return;
  }
  parallel_for(0, n, n * width >= kParallelMinFloats,
               [&](int64_t i) { std::memcpy(dst + i * width, src + int64_t{rows[i]} * width, bytes); });
}

void scatter_rows(float* dst, const float* src, const int32_t* rows, int64_t n, int64_t total,
                  int64_t width) {
  const size_t bytes = static_cast<size_t>(width) * sizeof(float);
  if (dst == src) {  // back to front: row r >= i is written after row i of the source was read
    int64_t i = n - 1;
    for (int64_t r = total - 1; r >= 0; --r) {
      if (i >= 0 && rows[i] == r) {
        if (r != i) std::memmove(dst + r * width, src + i * width, bytes);
        --i;
      } else {
        std::fill(dst + r * width, dst + (r + 1) * width, 0.0f);
      }
    }
    return;
  }
  // Row i's task: the padded rows just before it (after rows[i - 1]), then row i itself.
  parallel_for(0, n, total * width >= kParallelMinFloats, [&](int64_t i) {
    const int64_t first = i == 0 ? 0 : int64_t{rows[i - 1]} + 1;
    std::fill(dst + first * width, dst + int64_t{rows[i]} * width, 0.0f);
    std::memcpy(dst + int64_t{rows[i]} * width, src + i * width, bytes);
  });
  const int64_t tail = n == 0 ? 0 : int64_t{rows[n - 1]} + 1;
  std::fill(dst + tail * width, dst + total * width, 0.0f);
}

void put_rows(float* dst, int64_t ld_dst, const float* src, const int32_t* rows, int64_t n, int64_t width) {
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst + int64_t{rows[i]} * ld_dst, src + i * width, static_cast<size_t>(width) * sizeof(float));
}

}  // namespace bertfit

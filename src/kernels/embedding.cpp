#include "kernels/embedding.h"
#include "core/threading.h"

#include <algorithm>
#include <string>

#include "bertfit/error.h"
#include "kernels/reduce.h"

namespace bertfit {

void bert_position_ids(int32_t* pos, int64_t B, int64_t T) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) pos[b * T + t] = static_cast<int32_t>(t);
}

void roberta_position_ids(int32_t* pos, const int32_t* ids, int64_t B, int64_t T, int32_t pad) {
  for (int64_t b = 0; b < B; ++b) {
    int32_t count = 0;
    for (int64_t t = 0; t < T; ++t) {
      const bool real = ids[b * T + t] != pad;
      count += real;
      pos[b * T + t] = real ? count + pad : pad;
    }
  }
}

void embedding_forward(float* out, const int32_t* ids, const int32_t* pos, const int32_t* type,
                       const float* wte, const float* wpe, const float* wtt, int64_t N, int64_t C) {
  parallel_for(0, N, N * C >= kParallelMinWork, [&](int64_t n) {
    const float* a = wte + static_cast<int64_t>(ids[n]) * C;
    const float* p = wpe + static_cast<int64_t>(pos[n]) * C;
    const float* y = wtt + static_cast<int64_t>(type[n]) * C;
    float* o = out + n * C;
    for (int64_t c = 0; c < C; ++c)
      o[c] = a[c] + y[c] + p[c];  // HF order: inputs + token_type, then + position
  });
}

void embedding_backward(float* dwte, float* dwpe, float* dwtt, const float* dout, const int32_t* ids,
                        const int32_t* pos, const int32_t* type, int64_t N, int64_t C,
                        int32_t wte_padding_idx, int32_t wpe_padding_idx) {
  const int64_t nblocks = (C + kColumnBlock - 1) / kColumnBlock;
  parallel_for(0, nblocks, N * C >= kParallelMinWork, [&](int64_t blk) {
    const int64_t c0 = blk * kColumnBlock, c1 = std::min(C, c0 + kColumnBlock);
    for (int64_t n = 0; n < N; ++n) {
      const float* d = dout + n * C;
      float* y = dwtt + static_cast<int64_t>(type[n]) * C;
      for (int64_t c = c0; c < c1; ++c) y[c] += d[c];
      if (ids[n] != wte_padding_idx) {
        float* a = dwte + static_cast<int64_t>(ids[n]) * C;
        for (int64_t c = c0; c < c1; ++c) a[c] += d[c];
      }
      if (pos[n] != wpe_padding_idx) {
        float* p = dwpe + static_cast<int64_t>(pos[n]) * C;
        for (int64_t c = c0; c < c1; ++c) p[c] += d[c];
      }
    }
  });
}

void check_ids(const char* what, const int32_t* ids, int64_t n, int64_t limit) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= limit)
      throw ShapeError(std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                       " is outside [0, " + std::to_string(limit) + ")");
}

}  // namespace bertfit

#include "backend/cpu/bf16.h"

namespace bertfit {

// A plain loop on purpose: integer adds, shifts and one select, which GCC vectorises at the build's AVX2
// width; the conversion is memory-bound, so an AVX-512 body would not be faster.
void floats_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_from_float(src[i]);
}

}  // namespace bertfit

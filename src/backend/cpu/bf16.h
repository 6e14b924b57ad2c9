// bfloat16 as the low-precision GEMMs use it: float -> bf16 exactly as PyTorch's `tensor.to(torch.bfloat16)`
// on CPUs (round to nearest, ties to even; subnormals kept; overflow to infinity by the rounding carry; every
// NaN -> 0xFFFF, the value PyTorch's vectorised conversion writes -- tools/reference/bf16_golden.py and
// tests/backend/bf16_test.cpp check all of it against torch 1.13). bf16 -> float is exact (the upper half of
// the float).
//
// (src/io's f32_to_bf16 is the checkpoint writer's conversion: the same rounding, but it keeps a NaN's sign
// and payload, as safetensors files from PyTorch's scalar path do. The GEMMs only need the value.)
#pragma once

#include <cstdint>
#include <cstring>

namespace bertfit {

inline uint16_t bf16_from_float(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFF;
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

inline float float_from_bf16(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The float nearest to f that bf16 holds (float_from_bf16(bf16_from_float(f))).
inline float round_to_bf16(float f) {
  return float_from_bf16(bf16_from_float(f));
}

// n floats -> bf16 (AVX-512 or AVX2 by core/cpu_features.h; the same bits as bf16_from_float).
void floats_to_bf16(const float* src, uint16_t* dst, int64_t n);

}  // namespace bertfit

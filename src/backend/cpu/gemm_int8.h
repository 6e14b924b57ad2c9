// The int8 GEMM of quantized inference (bertfit quantize, docs/quantization.md): a linear layer
// y[M,N] = x[M,K] W[N,K]^T + b with
//   - W per-row symmetric int8: W[n,k] ~ wq[n,k] * w_scale[n], wq in [-127, 127] (quantize_rows below, done
//     once by `bertfit quantize`; packed once at load by Int8Weights);
//   - x quantized per row at run time the same way: x[m,k] ~ xq[m,k] * x_scale[m];
//   - the dot products exact in int32, the scales applied once per output.
// The numerical contract, per output:
//   dot = sum_k xq[m,k] * wq[n,k]                              (exact in int32: see below)
//   y[m,n] = float(dot) * (x_scale[m] * w_scale[n]) + b[n]    (float(dot) rounded to nearest even; two
//                                                               rounded multiplies, one rounded add)
// AVX512_VNNI's vpdpbusd multiplies unsigned by signed bytes, so the kernel feeds it xq + 128 (in [1, 255])
// and subtracts 128 * sum_k wq[n,k] (kept per row by Int8Weights): the same integer. The shifted sums stay
// below K * 255 * 127 in magnitude, inside int32 for K <= 65536 (Int8Weights refuses longer rows). Without
// VNNI (or with BERTFIT_MAX_ISA=avx2) a plain loop computes the same integers: every path gives the same
// bits.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/gemm.h"  // Epilogue
#include "core/aligned_buffer.h"

namespace bertfit {

// Per-row symmetric quantization of a [rows, cols] float matrix: scale[r] = max_k |x[r,k]| / 127 (0 for a
// zero row), q[r,k] = round_half_even(x[r,k] * (127 / max)) clamped to [-127, 127]. Used for the weights (by
// bertfit quantize) and for the activations (inside gemm_int8): one definition.
void quantize_rows(const float* x, int64_t rows, int64_t cols, int64_t ldx, int8_t* q, int64_t ldq,
                   float* scale);

// A linear layer's int8 weights [N, K] (row-major as nn.Linear), packed for the kernel: panels of 32 output
// rows, k in groups of 4 bytes (one vpdpbusd lane): packed[panel][k/4][32][4], zero-padded.
class Int8Weights {
 public:
  Int8Weights() = default;
  // Throws ConfigError when K is too long for exact int32 sums.
  Int8Weights(const int8_t* wq, const float* w_scale, int64_t N, int64_t K);
  int64_t N() const { return N_; }
  int64_t K() const { return K_; }
  const int8_t* packed() const { return packed_.data(); }
  const float* scale() const { return scale_.data(); }
  const int32_t* row_sum() const { return row_sum_.data(); }
  int64_t k_quads() const { return (K_ + 3) / 4; }
  static constexpr int kPanel = 32;

 private:
  int64_t N_ = 0, K_ = 0;
  AlignedBuffer<int8_t> packed_;
  std::vector<float> scale_;
  std::vector<int32_t> row_sum_;
};

// y[M,N] (row stride ldy) = the contract above for x[M,K] (row stride ldx); bias [N] or null.
// Multi-threaded over N (or M) outside a parallel region, as gemm(). ep: gemm.h's fused GELU, applied to
// the contract's y (in the VNNI tiles; after the plain ones, as gemm_epilogue_pass), gelu_forward's bits.
void gemm_int8(const float* x, int64_t M, int64_t ldx, const Int8Weights& W, const float* bias, float* y,
               int64_t ldy, const Epilogue& ep = {});

// The exact integer oracle for the tests: quantize_rows, then the dot products in int64 over the unpacked
// wq[N,K], then the same float epilogue.
void gemm_int8_reference(const float* x, int64_t M, int64_t ldx, const int8_t* wq, const float* w_scale,
                         int64_t N, int64_t K, const float* bias, float* y, int64_t ldy);

// "AVX512_VNNI (vpdpbusd)" or "plain integer loop (no VNNI)": what gemm_int8 runs on this CPU now.
const char* gemm_int8_path();

}  // namespace bertfit

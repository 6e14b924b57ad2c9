// Linear layer as nn.Linear: out[N,OC] = inp[N,IC] * W[OC,IC]^T + b[OC] (weights stored [out, in] as HF
// does).
#pragma once

#include <cstdint>

#include "backend/cpu/gemm.h"  // Epilogue

namespace bertfit {

// The element type of the products' operands: FP32, or BF16 (--bf16: operands rounded to bfloat16, float
// accumulation, backend/cpu/gemm_bf16.h; the float inputs, weights and outputs stay as they are).
enum class MatmulPrecision { FP32, BF16 };

// Whether linear_forward on `rows` rows with weights [out, in] multiplies with gemm_nt_small (whose weights a
// caller may pack, gemm_nt_small_packed: the same bits).
bool linear_packs_pay(int64_t rows, int64_t in, int64_t out);

// b may be null. ld_inp / ld_out are row strides (default: IC / OC) so callers can read a strided slice
// (e.g. the [CLS] rows of a [B,T,C] tensor with ld_inp = T*C). ep: a step fused into the product's
// epilogue (gemm.h: out = gelu(x), keeping x in ep.aux for a backward), gelu_forward's bits.
void linear_forward(float* out, const float* inp, const float* W, const float* b, int64_t N, int64_t IC,
                    int64_t OC, int64_t ld_inp = 0, int64_t ld_out = 0,
                    MatmulPrecision precision = MatmulPrecision::FP32, const Epilogue& ep = {});
// dW += dout^T * inp; db += colsum(dout); then dinp = dout * W (written, or accumulated when
// accumulate_dinp). Any of dinp, dW, db may be null (that gradient not wanted here: below the embeddings, no
// bias, or a caller that computes the parameter gradients later). Because the parameter gradients are
// computed first, dinp may alias inp (the model writes the gradient of the GELU output over that output).
void linear_backward(float* dinp, float* dW, float* db, const float* dout, const float* inp, const float* W,
                     int64_t N, int64_t IC, int64_t OC, bool accumulate_dinp = false, int64_t ld_inp = 0,
                     int64_t ld_dout = 0, int64_t ld_dinp = 0,
                     MatmulPrecision precision = MatmulPrecision::FP32);

}  // namespace bertfit

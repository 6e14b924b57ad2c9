// The bf16 GEMM: gemm_bias() (gemm.h) with both operands rounded to bfloat16 (bf16.h) and float accumulation,
// for --bf16 training (the mixed precision of torch.autocast: float master weights, bf16 products). Inputs
// and outputs are float; the rounding happens while the operands are packed, so callers keep one copy of
// their data.
//
// The numerical contract, per output (the order of AVX512_BF16's vdpbf16ps, which adds the odd product of a
// pair before the even one):
//   a_k = bf16(op(A)[m,k]), b_k = bf16(op(B)[k,n])    (zeros and float subnormals as +0: the DAZ of
//                                                     vcvtneps2bf16, which packs them, and of vdpbf16ps)
//   acc = 0; for each pair p = 0, 1, ..., ceil(K/2)-1 (a missing last k is 0):
//     acc = acc + a_{2p+1} b_{2p+1};  acc = acc + a_{2p} b_{2p}      -- each product exact, each sum rounded
//   then gemm.h's epilogue: x = alpha == 1 ? acc : alpha * acc; x + bias[n]; beta == 0 ? x : fma(beta, C, x)
// The products of two bf16 values are exact in float (8-bit significands), so an FMA computes the same sum:
// the AVX2 fallback (CPUs without AVX512_BF16, or BERTFIT_MAX_ISA=avx2) is fma(a_odd, b_odd, acc) then
// fma(a_even, b_even, acc) on the same packed data, the same bits -- except where the hardware flushes a
// subnormal product or partial sum to zero (FTZ), below 1.2e-38: never for a network's activations.
// Threads split M and N only, as gemm_packed: the bits do not depend on the thread count either.
#pragma once

#include <cstdint>

#include "backend/cpu/gemm.h"  // Epilogue

namespace bertfit {

// ep: an elementwise step fused into the epilogue (gemm.h's Epilogue, the same bits as gemm_packed's).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, const float* bias, float beta, float* C, int64_t ldc,
               const Epilogue& ep = {});

// Oracle for the tests: the operands rounded to bf16 (as above), the products summed in double, then the same
// epilogue in double, rounded once.
void gemm_bf16_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                         const float* A, int64_t lda, const float* B, int64_t ldb, const float* bias,
                         float beta, float* C, int64_t ldc);

// "AVX512_BF16 (vdpbf16ps)" or "AVX2 + FMA (bf16 emulated)": what gemm_bf16 runs on this CPU now.
const char* gemm_bf16_path();

}  // namespace bertfit

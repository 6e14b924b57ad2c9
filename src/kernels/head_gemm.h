// The matrix products of one attention head (scores Q K^T, context P V and their four backward products):
// T x T x HS shapes (128 x 128 x 64 for BERT-base at length 128) computed ~400 times per layer, one (batch,
// head) per thread of a parallel loop. OpenBLAS packs both operands of every such call, which costs as much
// as the product at this size (its per-head products ran at ~45% of its large-GEMM rate in the profile of a
// BERT-base step, docs/benchmarks.md). head_gemm multiplies in place instead: AVX-512 register tiles of 6
// rows x 64 columns (24 zmm accumulators), each element of A broadcast from where it lies (A or A^T, any
// strides), B read as 64-float row segments that stay in L1 across the rows of A. A transposed B (Q K^T, dO
// V^T) is first copied to a K x N block on the stack (at most kHeadGemmMaxTransposed floats), which is small
// next to the product.
//
// Same contract as gemm() (backend/cpu/gemm.h): C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta * C, row-major
// with row strides; beta == 0 writes C without reading it. Serial in the calling thread (the attention
// kernels call it inside their parallel loop). Each C element is one FMA chain over k in increasing order,
// then alpha * acc, then fma(beta, C, x): gemm.h's contract, so the result does not depend on the thread that
// computes it and is the same bits as gemm()'s (tests/kernels/head_gemm_test.cpp). Without AVX-512, or for a
// transposed B larger than the stack block, it calls gemm().
#pragma once

#include <cstdint>

namespace bertfit {

constexpr int64_t kHeadGemmMaxTransposed = 16384;  // floats: 64 KB, e.g. K = 64 x N = 256

void head_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace bertfit

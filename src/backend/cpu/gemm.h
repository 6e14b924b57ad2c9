// The matrix-product seam: every GEMM of the engine goes through these two functions, so a CUDA backend (or
// another BLAS) replaces one file. Row-major, HuggingFace's nn.Linear layout ([out, in] weights).
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
//
// op(X) is X or X^T. lda/ldb/ldc are row strides (elements) of the matrices as stored.
#pragma once

#include <cstdint>

namespace bertfit {

// OpenBLAS sgemm (OpenMP build): multi-threaded when called outside a parallel region, single-threaded in the
// calling thread when called inside one.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Plain triple loop with double accumulation: the oracle the fast path is tested against.
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace bertfit

// The matrix-product seam: every GEMM of the engine goes through gemm() or gemm_bias() (gemm_nt_small and
// head_gemm are faster paths with the same contract for their shapes), so a CUDA backend (or another BLAS)
// replaces one file. Row-major, HuggingFace's nn.Linear layout ([out, in] weights).
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
//
// op(X) is X or X^T. lda/ldb/ldc are row strides (elements) of the matrices as stored. Any M, N, K >= 0 (M or
// N = 0: nothing is written; K = 0: the empty sum). C must not overlap A or B.
//
// The numerical contract (gemm_packed, hence gemm() by default; also gemm_nt_small and head_gemm):
//   acc = 0; for k = 0, 1, ..., K-1: acc = fma(op(A)[m,k], op(B)[k,n], acc)   -- one float FMA chain
//   x = (alpha == 1) ? acc : alpha * acc                                       -- one rounded multiply
//   x = x + bias[n]                                                            -- gemm_bias only
//   C[m,n] = (beta == 0) ? x : fma(beta, C[m,n], x)                            -- C not read when beta == 0
// (beta == 0 ignores C even if it holds NaN, as BLAS; beta == 1 makes the last step C + x, rounded once.)
// The chain may be cut into K chunks whose float partial sums are stored and reloaded: that continues it
// exactly. Threads split only M and N, never K. So every element has the same bits whatever the thread count,
// the tiling, M or N of the call, the position of its row in the batch, and the instruction set (the
// AVX-512 and AVX2 kernels do the same IEEE operations, only at another width; FMA is exactly rounded at any
// width). tests/backend/gemm_test.cpp checks each of these bit for bit.
#pragma once

#include <cstdint>

namespace bertfit {

// An elementwise step fused into the epilogue, after the contract's last step, while the tile is still in
// registers (the pass over C it replaces would read and write the whole matrix again):
//   GELU: aux[m,n] = x when aux is not null (the pre-activation a backward needs), then C[m,n] = x Phi(x)
//         -- kernels/activation.h's gelu_forward: the same formula (core/vec_math.h), the same bits.
// aux has row stride ld_aux (0: ldc) and must not overlap A, B or C. Steps that read a matrix in the
// epilogue (the GELU backward's multiply by gelu'(pre), a residual add) were tried and left out: on the AMD
// EPYC the product with such a step ran 3-25% slower than the product plus a separate pass, in the tiles
// (prefetched or not) or over each finished block of C (2026-12-05, docs/benchmarks.md).
enum class EpilogueOp { NONE, GELU };
struct Epilogue {
  EpilogueOp op = EpilogueOp::NONE;
  float* aux = nullptr;
  int64_t ld_aux = 0;
};

// The engine's GEMM: gemm_packed, unless the environment says BERTFIT_GEMM=openblas (read once, at the
// first call), which routes it to gemm_openblas -- for comparisons only: OpenBLAS's bits depend on the
// kernel it picks for the CPU (OPENBLAS_CORETYPE) and, with some kernels, on the thread count.
// Multi-threaded (core/threading.h) when called outside a parallel region, serial in the calling thread
// inside one.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// gemm() with a bias row added in the epilogue while the tile is in registers: C = alpha op(A) op(B) + bias
// + beta C, bias[N] (null: none), the contract's order. A linear layer is gemm_bias(false, true, rows, out,
// in, 1, x, ..., W, ..., b, 0 or 1, y, ...): (acc + b) (+ y), exactly gemm_nt_small's bits, with no separate
// pass writing the bias. (With BERTFIT_GEMM=openblas: the bias written or added into C, then sgemm, then the
// epilogue's step as a pass over C.) ep: an elementwise step fused into the epilogue (above).
void gemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, const float* bias, float beta, float* C, int64_t ldc,
               const Epilogue& ep = {});

// Our packed GEMM (gemm_packed.cpp): the contract above, AVX-512 or AVX2 + FMA by core/cpu_features.h.
void gemm_packed(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_packed_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, const float* bias, float beta,
                      float* C, int64_t ldc, const Epilogue& ep = {});

// Whether gemm_packed, on this CPU's instruction set now, reads op(A) where it is instead of packing it
// (gemm_packed.cpp's reads_a_in_place: AVX-512, A not transposed, rows that do not alias in L1). A choice of
// speed only, never of bits; exposed so that the tests can check they cover both ways.
bool gemm_packed_reads_a_in_place(bool trans_a, int64_t lda);

// gemm_packed's register tile alone, for benchmarks (bench/engine's `--case tile`): each of `threads` threads
// multiplies its own packed A block (MC x KC) by two packed B panels (KC x NR), all resident in L2, `rounds`
// times over, with the tile's real code and epilogue into a small C. No packing and no traffic beyond L2, so
// the GFLOP/s it returns (timed between barriers, after the buffers are filled) bound what gemm_packed can
// reach on this CPU: below the FMA probe by the tile's loads and broadcasts only.
double gemm_packed_tile_gflops(int threads, int64_t rounds);

// The epilogue's step alone, as a pass over an M x N matrix C that holds the x values: what the fused
// epilogue does, the same bits (for K = 0, the OpenBLAS route and products computed elsewhere: int8).
void gemm_epilogue_pass(int64_t M, int64_t N, float* C, int64_t ldc, const Epilogue& ep);

// OpenBLAS sgemm (OpenMP build, its own libgomp threads; call it outside our regions); its own order of the
// sums.
void gemm_openblas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Plain triple loop with double accumulation: the oracle the fast paths are tested against.
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Which implementation gemm() calls (tests and benchmarks switch it; the default comes from BERTFIT_GEMM).
enum class GemmImpl { PACKED, OPENBLAS };
void set_gemm_impl(GemmImpl impl);
GemmImpl gemm_impl();

}  // namespace bertfit

// A GEMM of our own for the linear layers of a small batch: C[M,N] = A[M,K] B[N,K]^T (+ bias[N]) (+ C), both
// operands K-contiguous (activations [M,K], HuggingFace nn.Linear weights [N,K]), for the regime where the
// weights stream from memory (BERT-base inference at batch 1: M = 128 rows, 340 MB of weights per forward).
//
// Why not OpenBLAS there: its sgemm first packs each weight block (read W, write a packed copy, read it
// again) in a phase that does no FMAs, and the M = 128 activations give each weight only 128 uses to pay for
// it. This kernel never copies the weights: each thread transposes the (small) activations once per call into
// [K][64-row] panels that stay in L2 and reads each weight element from memory once per 256 activation rows,
// broadcasting it against 64 of them at a time (register tile: 6 weight rows x 64 activation rows = 24 zmm
// accumulators), with the next weight chunk prefetched while the current one is multiplied. The figures that
// decide where linear_forward uses it are in src/kernels/linear.cpp.
//
// Numerics and determinism: every output is (sum_k A[m,k] B[n,k]) accumulated in float by one FMA chain in
// increasing k, starting from 0, then + bias, then + C; the chain does not depend on M, N, the tiling or the
// thread count, so 1 and 2 threads (and any split of N among threads) give the same bits. These are
// gemm_bias()'s bits for the same product (gemm.h's contract: (acc + bias), then fma(1, C, x) = x + C), so
// linear_forward may choose either by shape (tests/backend/gemm_test.cpp checks it);
// tests/backend/gemm_nt_small_test.cpp bounds the values against a double-precision reference.
#pragma once

#include <cstdint>

#include "backend/cpu/gemm.h"  // Epilogue

namespace bertfit {

// True when the AVX-512 kernel runs: core/cpu_features.h's use_avx512() (the CPU has AVX-512 F/DQ/VL/BW and
// BERTFIT_MAX_ISA / set_max_isa do not cap it). Otherwise gemm_nt_small falls back to gemm_bias(): the same
// contract and the same bits.
bool gemm_nt_small_available();

// C[m,n] = sum_k A[m*lda + k] * B[n*ldb + k]  (+ bias[n] when bias is not null)  (+ C[m*ldc + n] when
// accumulate; otherwise C is only written, its old contents, even NaN, ignored). Any M, N, K >= 0; lda, ldb
// >= K, ldc >= N. C must not overlap A, B or bias. Threads: a parallel region (core/threading.h) over N (the
// weight rows) when called outside one and the product is large enough; serial in the calling thread inside a
// parallel region. ep: an elementwise step fused into the epilogue after + C (gemm.h's Epilogue, the same
// bits as gemm_bias's).
void gemm_nt_small(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                   const float* bias, bool accumulate, float* C, int64_t ldc, const Epilogue& ep = {});

// The packed layout: weights B [N, K] rearranged once in the order the kernel reads them, for weights that
// are multiplied many times while they do not change (inference). Unpacked, a 6-row register tile reads its
// weights as 6 streams ldb apart; packed, as one sequential stream: blocks of 48 rows, in a block chunks of
// 256 k, in a chunk 6-row tiles, each tile [k][6 rows] (zero rows past N). The tile alone, weights from
// memory, went from 77-80% to 94-95% of the FMA peak; BERT-base's forward at batch 1, 2 threads, ~2.5%
// faster (0-4% with the host's phase; AMD Zen 5, docs/benchmarks.md). The products give the same bits as
// with B unpacked.
constexpr int64_t kNtSmallBlockRows = 48;
// Floats of B [N, K] packed: N rounded up to whole 6-row tiles, times K (exactly N K when N % 6 == 0).
int64_t nt_small_packed_floats(int64_t N, int64_t K);
// Packs B (rows ldb >= K apart) into packed (nt_small_packed_floats(N, K) floats; no overlap with B).
void nt_small_pack(int64_t N, int64_t K, const float* B, int64_t ldb, float* packed);
// The inverse: B's N x K elements (rows ldb apart) from packed.
void nt_small_unpack(int64_t N, int64_t K, const float* packed, float* B, int64_t ldb);
// Rows [n0, n0 + count) of a packed [N, K] matrix are a packed [count, K] matrix at packed + n0 K when n0 is
// a multiple of kNtSmallBlockRows and the range ends at N or at such a multiple.

// gemm_nt_small with B [N, K] given packed: the same contract and the same bits as with B unpacked. Without
// AVX-512 it unpacks B into a temporary and calls that.
void gemm_nt_small_packed(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed,
                          const float* bias, bool accumulate, float* C, int64_t ldc, const Epilogue& ep = {});

}  // namespace bertfit

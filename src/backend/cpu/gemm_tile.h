// What the packed GEMMs' register tiles share (gemm_packed.cpp for fp32, gemm_bf16.cpp for bf16 pairs):
// the tile call's arguments, and what a tile does with its MR x NV vectors of sums once its K chunk is done:
// store them as partial sums, or apply the contract's epilogue into C (gemm.h): x = alpha * acc (skipped for
// alpha = 1), x + bias (with a bias), then fma(beta, C, x) (skipped for beta = 0: C is not read), then the
// fused GELU, if asked (gemm.h's Epilogue); and how the two kernels block and share a product among threads
// (Blocking). Only the inner product differs between the element types; the epilogue's operations, and so
// its bits, do not.
//
// Everything here has internal linkage (an unnamed namespace in a header): each kernel file gets its own copy
// compiled with its own target attributes, so no AVX-512 instantiation can stand in for an AVX2 caller's at
// link time.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backend/cpu/gemm.h"         // Epilogue
#include "backend/cpu/transpose16.h"  // BERTFIT_AVX512
#include "core/simd.h"                // <immintrin.h> without GCC 12's false warnings
#include "core/threading.h"
#include "core/vec_math512.h"  // the GELU's normal CDF (kernels/activation.cpp's formula)

namespace bertfit {
namespace {

// What a tile call does with its sums: kFirst starts them at 0 (else they continue from P), kLast applies the
// epilogue into C (else they are stored to P).
enum TileFlags { kFirst = 1, kLast = 2 };

struct TileArgs {
  float* P;  // partial sums of this tile, row stride ldp (a full MR x NR tile, 64-byte aligned)
  int64_t ldp;
  float* C;  // this tile's corner in C
  int64_t ldc;
  int64_t mr, nr;  // valid rows / columns of the tile in C
  float alpha, beta;
  const float* bias;  // this tile's first column of the bias, or null
  int flags;
  EpilogueOp op;  // the fused elementwise step (NONE: none)
  float* aux;     // GELU: where x is kept, at this tile's corner, or null; row stride ld_aux
  int64_t ld_aux;
};

// ep with its aux row stride resolved (gemm.h: 0 means C's), as the kernels keep it.
inline Epilogue with_aux_stride(const Epilogue& ep, int64_t ldc) {
  return {ep.op, ep.aux, ep.ld_aux ? ep.ld_aux : ldc};
}

// The fused GELU on one vector of x values (lanes m valid): x kept at a (when not null), then x * Phi(x),
// gelu_forward's expression on the same vector functions (16 or 8 lanes: the same bits, core/vec_math512.h).
// Masked-out lanes are never stored.
BERTFIT_AVX512 inline __attribute__((always_inline)) __m512 gelu_step512(__m512 x, __mmask16 m, float* a) {
  if (a) _mm512_mask_storeu_ps(a, m, x);
  return _mm512_mul_ps(x, vec::normal_cdf_ps512(x));
}

inline __attribute__((always_inline)) __m256 gelu_step256(__m256 x, __m256i m, float* a) {
  if (a) _mm256_maskstore_ps(a, m, x);
  return _mm256_mul_ps(x, vec::normal_cdf_ps(x));
}

// How the packed GEMMs (gemm_packed, gemm_bf16) cut and share a product. `budget_panels`: how many NR-column
// panels of packed op(B) (K long) a thread keeps at once.
struct Blocking {
  int64_t MR, NR, budget_panels;
  int64_t pack_weight;      // a packed element's cost in multiply-adds (for the thread split)
  bool a_in_place = false;  // the tiles read op(A) where it is (gemm_packed.cpp): op(A) costs no packing

  // The width of gemm_range's column blocks for n columns: blocks of equal width (in NR panels) within the
  // budget. 768 columns at K = 3072 are two blocks of 384, not 672 + 96 (a thin second block repacks all of
  // op(A) for few columns).
  int64_t column_block_width(int64_t n) const {
    const int64_t panels = (n + NR - 1) / NR;
    const int64_t nblocks = (panels + budget_panels - 1) / budget_panels;
    return (panels + nblocks - 1) / nblocks * NR;
  }

  // What gemm_range costs one thread for m rows x n columns, in multiply-adds: its tiles' (padded to whole
  // tiles) plus the elements it packs, each weighted as pack_weight. op(A) is packed once per column block
  // (unless read in place), op(B) once.
  int64_t range_cost(int64_t K, int64_t m, int64_t n) const {
    if (m <= 0 || n <= 0) return 0;
    const int64_t mp = (m + MR - 1) / MR * MR, np = (n + NR - 1) / NR * NR;
    const int64_t width = column_block_width(n);
    const int64_t nblocks = (np + width - 1) / width;
    return mp * np * K + pack_weight * ((a_in_place ? 0 : mp * K * nblocks) + np * K);
  }

  // range(m0, m1, n0, n1) on each thread of a team (core/threading.h): a contiguous range of columns (in NR
  // panels) or of rows (MR panels), whichever costs the busiest thread less (range_cost): a column split has
  // every thread pack all of op(A), a row split all of op(B), so C taller than wide splits rows. The split
  // touches only which thread computes an element, never its chain.
  template <class Range>
  void split_among_threads(int64_t M, int64_t N, int64_t K, const Range& range) const {
    const int64_t col_units = (N + NR - 1) / NR, row_units = (M + MR - 1) / MR;
    const int64_t nt_max = num_threads();
    const bool split_cols = range_cost(K, M, (col_units + nt_max - 1) / nt_max * NR) <=
                            range_cost(K, (row_units + nt_max - 1) / nt_max * MR, N);
    parallel_region([&](const Team& team) {
      const int64_t nt = team.size(), t = team.thread();
      if (split_cols)
        range(0, M, std::min(N, col_units * t / nt * NR), std::min(N, col_units * (t + 1) / nt * NR));
      else
        range(std::min(M, row_units * t / nt * MR), std::min(M, row_units * (t + 1) / nt * MR), 0, N);
    });
  }
};

// Lanes [0, n) of 8 set (n clamped to 0..8).
inline __m256i mask8(int64_t n) {
  alignas(32) static const int32_t ones_then_zeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                          0,  0,  0,  0,  0,  0,  0,  0};
  const int64_t c = std::clamp<int64_t>(n, 0, 8);
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ones_then_zeros + 8 - c));
}

// At the start of the tile call that ends in the epilogue: the tile's rows of C into L2 while the K loop runs
// (not L1: the loop streams the packed B panel through it). The tiles walk C down its rows, 12 rows of 128
// bytes at a time, a pattern the hardware prefetchers do not follow; fetching them ahead made BERT's products
// 2-7% faster (mini's shapes, 4096 rows) and 2-4% (BERT-base's), in alternating runs on the AMD EPYC
// (2026-12-05).
template <int MR>
inline __attribute__((always_inline)) void prefetch_c_rows(const TileArgs& t, int64_t row_bytes) {
  if (!(t.flags & kLast)) return;
  for (int r = 0; r < MR; ++r) {
    if (r >= t.mr) break;
    for (int64_t off = 0; off < row_bytes; off += 64)
      _mm_prefetch(reinterpret_cast<const char*>(t.C + r * t.ldc) + off, _MM_HINT_T1);
  }
}

// The sums at the start of a tile call: zeros, or the partial sums the previous K chunk stored.
template <int MR, int NV>
BERTFIT_AVX512 inline __attribute__((always_inline)) void load_sums512(__m512 (&acc)[MR][NV],
                                                                       const TileArgs& t) {
  prefetch_c_rows<MR>(t, 64 * NV);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[r][v] = (t.flags & kFirst) ? _mm512_setzero_ps() : _mm512_load_ps(t.P + r * t.ldp + 16 * v);
}

// The end of a tile call: partial sums to P, or (kLast) the epilogue into C's valid mr x nr corner.
template <int MR, int NV>
BERTFIT_AVX512 inline __attribute__((always_inline)) void finish_tile512(__m512 (&acc)[MR][NV],
                                                                         const TileArgs& t) {
  if (!(t.flags & kLast)) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm512_store_ps(t.P + r * t.ldp + 16 * v, acc[r][v]);
    return;
  }
  const __m512 va = _mm512_set1_ps(t.alpha), vb = _mm512_set1_ps(t.beta);
  const bool scale = t.alpha != 1.0f, read_c = t.beta != 0.0f, gelu = t.op == EpilogueOp::GELU;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= t.mr) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 m = mask16(t.nr - 16 * v);
      float* c = t.C + r * t.ldc + 16 * v;
      __m512 x = scale ? _mm512_mul_ps(va, acc[r][v]) : acc[r][v];
      if (t.bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, t.bias + 16 * v));
      if (read_c) x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c), x);
      if (gelu) x = gelu_step512(x, m, t.aux ? t.aux + r * t.ld_aux + 16 * v : nullptr);
      _mm512_mask_storeu_ps(c, m, x);
    }
  }
}

// The same for the AVX2 tiles, 8 lanes at a time (masked loads and stores never touch masked-out lanes).
template <int MR, int NV>
inline __attribute__((always_inline)) void load_sums256(__m256 (&acc)[MR][NV], const TileArgs& t) {
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[r][v] = (t.flags & kFirst) ? _mm256_setzero_ps() : _mm256_load_ps(t.P + r * t.ldp + 8 * v);
}

template <int MR, int NV>
inline __attribute__((always_inline)) void finish_tile256(__m256 (&acc)[MR][NV], const TileArgs& t) {
  if (!(t.flags & kLast)) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm256_store_ps(t.P + r * t.ldp + 8 * v, acc[r][v]);
    return;
  }
  const __m256 va = _mm256_set1_ps(t.alpha), vb = _mm256_set1_ps(t.beta);
  const bool scale = t.alpha != 1.0f, read_c = t.beta != 0.0f, gelu = t.op == EpilogueOp::GELU;
  __m256i m[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) m[v] = mask8(t.nr - 8 * v);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= t.mr) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      if (t.nr <= 8 * v) break;
      float* c = t.C + r * t.ldc + 8 * v;
      __m256 x = scale ? _mm256_mul_ps(va, acc[r][v]) : acc[r][v];
      if (t.bias) x = _mm256_add_ps(x, _mm256_maskload_ps(t.bias + 8 * v, m[v]));
      if (read_c) x = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, m[v]), x);
      if (gelu) x = gelu_step256(x, m[v], t.aux ? t.aux + r * t.ld_aux + 8 * v : nullptr);
      _mm256_maskstore_ps(c, m[v], x);
    }
  }
}

}  // namespace
}  // namespace bertfit

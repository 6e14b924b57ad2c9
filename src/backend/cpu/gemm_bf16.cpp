// gemm_bf16: gemm_packed's design (gemm_packed.cpp: threads over M or N, nc-column blocks of packed op(B),
// MC-row blocks and KC-long chunks of packed op(A), an MR x NR register tile; partial sums between K chunks
// stored as floats and reloaded) with bf16 operands. The packed element is a pair of k: one 32-bit word
// (bf16(x[k]) low, bf16(x[k+1]) high), which is what vdpbf16ps multiplies lane by lane:
//   Ap[panel][k/2][MR] words, Bp[panel][k/2][NR] words (zero-padded past M, N and an odd K).
// Per k pair the tile loads NR/16 vectors of B words, broadcasts MR words of A, and does MR x NR/16
// vdpbf16ps (AVX-512: 12 x 32, as gemm_packed). The AVX2 fallback reads the same packed words: the high bf16
// is the float (word & 0xFFFF0000), the low one (word << 16); two FMAs, odd k first (gemm_bf16.h).
//
// The operands are rounded while they are packed (each float read once per pack), so the rounding costs a
// pass over the data that the fp32 GEMM makes anyway.
#include "backend/cpu/gemm_bf16.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/bf16.h"
#include "backend/cpu/gemm_tile.h"
#include "backend/cpu/transpose16.h"
#include "core/aligned_buffer.h"
#include "core/cpu_features.h"
#include "core/simd.h"
#include "core/threading.h"

#define BERTFIT_AVX512_BF16 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512bf16")))

namespace bertfit {
namespace {

constexpr int64_t kPackedBMax = int64_t{1} << 21;  // words of packed op(B) per thread (8 MiB): gemm_packed's
constexpr int64_t kParallelMinFma = int64_t{1} << 21;

struct Problem {
  bool ta, tb;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
  const float* bias;
  Epilogue ep;  // ep.ld_aux resolved (never 0)
};

template <typename T>
T* scratch(AlignedBuffer<T>& buf, int64_t n) {
  if (buf.size() < static_cast<size_t>(n)) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

// bf16 with float subnormals read as zero (vcvtneps2bf16's DAZ, which the vector packing below uses; the
// bf16 products never see a subnormal either, vdpbf16ps's DAZ): zeros and subnormals of either sign -> +0,
// NaN -> 0xFFFF, otherwise PyTorch's rounding (bf16.h).
inline uint32_t to_bf16_daz(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x7F800000u) == 0 ? 0u : bf16_from_float(f);
}
inline uint32_t pair(float lo, float hi) {
  return to_bf16_daz(lo) | (to_bf16_daz(hi) << 16);
}

// op(A) rows [i0, i0 + mc) x k [k0, k0 + kc) into panels of MR rows: dst[panel][kp][r] the word of k0 + 2kp,
// k0 + 2kp + 1 (zero past kc and past mc). kc is even except for the last chunk of an odd K.
template <int MR>
void pack_a(const Problem& pr, int64_t i0, int64_t mc, int64_t k0, int64_t kc, uint32_t* dst) {
  const int64_t kp_n = (kc + 1) / 2;
  for (int64_t p = 0; p < mc; p += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - p);
    uint32_t* d = dst + p * kp_n;
    if (!pr.ta) {  // A is [M][K]: each row contiguous in k
      for (int64_t r = 0; r < rows; ++r) {
        const float* s = pr.A + (i0 + p + r) * pr.lda + k0;
        int64_t kp = 0;
        for (; 2 * kp + 1 < kc; ++kp) d[kp * MR + r] = pair(s[2 * kp], s[2 * kp + 1]);
        if (kp < kp_n) d[kp * MR + r] = pair(s[2 * kp], 0.0f);
      }
    } else {  // A is [K][M]: the rows of one k side by side
      for (int64_t kp = 0; kp < kp_n; ++kp) {
        const float* s0 = pr.A + (k0 + 2 * kp) * pr.lda + i0 + p;
        const float* s1 = 2 * kp + 1 < kc ? s0 + pr.lda : nullptr;
        for (int64_t r = 0; r < rows; ++r) d[kp * MR + r] = pair(s0[r], s1 ? s1[r] : 0.0f);
      }
    }
    for (int64_t r = rows; r < MR; ++r)
      for (int64_t kp = 0; kp < kp_n; ++kp) d[kp * MR + r] = 0;
  }
}

// op(B) k [0, K) x columns [j0, j0 + nc) into panels of NR columns: dst[panel][kp][c] (zero past nc and K).
template <int NR>
void pack_b(const Problem& pr, int64_t j0, int64_t nc, uint32_t* dst) {
  const int64_t K = pr.K, kp_n = (K + 1) / 2;
  for (int64_t q = 0; q < nc; q += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - q);
    uint32_t* d = dst + q * kp_n;
    if (!pr.tb) {  // B is [K][N]: NR contiguous columns per k
      for (int64_t kp = 0; kp < kp_n; ++kp) {
        const float* s0 = pr.B + 2 * kp * pr.ldb + j0 + q;
        const float* s1 = 2 * kp + 1 < K ? s0 + pr.ldb : nullptr;
        for (int64_t c = 0; c < cols; ++c) d[kp * NR + c] = pair(s0[c], s1 ? s1[c] : 0.0f);
        for (int64_t c = cols; c < NR; ++c) d[kp * NR + c] = 0;
      }
    } else {  // B is [N][K] (nn.Linear weights): each column of op(B) contiguous in k
      for (int64_t c = 0; c < cols; ++c) {
        const float* s = pr.B + (j0 + q + c) * pr.ldb;
        int64_t kp = 0;
        for (; 2 * kp + 1 < K; ++kp) d[kp * NR + c] = pair(s[2 * kp], s[2 * kp + 1]);
        if (kp < kp_n) d[kp * NR + c] = pair(s[2 * kp], 0.0f);
      }
      for (int64_t c = cols; c < NR; ++c)
        for (int64_t kp = 0; kp < kp_n; ++kp) d[kp * NR + c] = 0;
    }
  }
}

// ---- AVX512_BF16: 12 x 32 ----

// to_bf16_daz on 16 floats by vcvtneps2bf16 (round to nearest even, as bf16_from_float): zeros and
// subnormals made +0 and NaNs 0xFFFF0000 (which converts to 0xFFFF) first, so every lane gets the scalar's
// bits.
BERTFIT_AVX512_BF16 inline __m256i bf16x16(__m512 x) {
  const __mmask16 tiny = _mm512_testn_epi32_mask(_mm512_castps_si512(x), _mm512_set1_epi32(0x7F800000));
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  x = _mm512_mask_mov_ps(x, tiny, _mm512_setzero_ps());
  x = _mm512_mask_mov_ps(x, nan, _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
  return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
}

// 16 words pair(s[2j], s[2j + 1]), j < 16, of the n <= 32 floats at s (zero past n).
BERTFIT_AVX512_BF16 inline __m512i row_words(const float* s, int64_t n) {
  const __m512 lo = _mm512_maskz_loadu_ps(mask16(n), s), hi = _mm512_maskz_loadu_ps(mask16(n - 16), s + 16);
  return _mm512_inserti64x4(_mm512_castsi256_si512(bf16x16(lo)), bf16x16(hi), 1);
}

// 16 words to d, of which only `lanes` belong there. A 12-word panel row written with a masked store crosses
// a cache line two times in three (whole stores: the forward's bf16 products ~3% faster, AMD EPYC,
// 2026-12-05). The panel is written in increasing order, so the store may be whole, its last four words
// overwritten by the next row's store, except for the panel's last row (`last`).
BERTFIT_AVX512_BF16 inline void store_words(uint32_t* d, __m512 w, __mmask16 lanes, bool last) {
  if (last && lanes != 0xFFFF)
    _mm512_mask_storeu_epi32(d, lanes, _mm512_castps_si512(w));
  else
    _mm512_storeu_si512(d, _mm512_castps_si512(w));
}

// The words of rows [0, rows) (rows <= 16) of a k-contiguous operand, row r at src + r * ld, k in [0, kc),
// into dst[kp][r] (row stride `stride` words; `lanes`: the words of a row that belong to it), 16 pairs at a
// time through a 16 x 16 transpose: the panels pack_a<12> and pack_b<32> write, the same bits.
BERTFIT_AVX512_BF16 void pack_rows_bf16(const float* src, int64_t ld, int64_t rows, int64_t kc, uint32_t* dst,
                                        int64_t stride, __mmask16 lanes) {
  const int64_t kp_n = (kc + 1) / 2;
  for (int64_t kp0 = 0; kp0 < kp_n; kp0 += 16) {
    __m512 w[16];
    for (int64_t r = 0; r < 16; ++r)
      w[r] = r < rows ? _mm512_castsi512_ps(row_words(src + r * ld + 2 * kp0, kc - 2 * kp0))
                      : _mm512_setzero_ps();
    transpose16(w);
    const int64_t n = std::min<int64_t>(16, kp_n - kp0);
    for (int64_t j = 0; j < n; ++j) store_words(dst + (kp0 + j) * stride, w[j], lanes, kp0 + j + 1 == kp_n);
  }
}

// pack_a<12> and pack_b<32> with vcvtneps2bf16 where the operand is contiguous in k (the forward's
// activations and weights, the input gradient's output gradient): the same panels, the same bits. Where the
// two words of a pair come from two rows (the weight gradient's operands, the input gradient's weights) the
// scalar loops stay: converting 16 columns of two rows at a time was slower than them (the bf16 products of
// BERT-base's weight gradients 10-15% slower, AMD EPYC, 2026-12-05), while this packing made its forward
// products 5-10% faster.
BERTFIT_AVX512_BF16 void pack_a_bf16_512(const Problem& pr, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                                         uint32_t* dst) {
  constexpr int64_t MR = 12;
  if (pr.ta) {
    pack_a<MR>(pr, i0, mc, k0, kc, dst);
    return;
  }
  const int64_t kp_n = (kc + 1) / 2;
  for (int64_t p = 0; p < mc; p += MR)
    pack_rows_bf16(pr.A + (i0 + p) * pr.lda + k0, pr.lda, std::min<int64_t>(MR, mc - p), kc, dst + p * kp_n,
                   MR, mask16(MR));
}

BERTFIT_AVX512_BF16 void pack_b_bf16_512(const Problem& pr, int64_t j0, int64_t nc, uint32_t* dst) {
  constexpr int64_t NR = 32;
  if (!pr.tb) {
    pack_b<NR>(pr, j0, nc, dst);
    return;
  }
  const int64_t K = pr.K, kp_n = (K + 1) / 2;
  for (int64_t q = 0; q < nc; q += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - q);
    for (int64_t g = 0; g < 2; ++g)  // two groups of 16 columns (rows of B), lanes [16g, 16g + 16) of a row
      pack_rows_bf16(pr.B + (j0 + q + 16 * g) * pr.ldb, pr.ldb, std::clamp<int64_t>(cols - 16 * g, 0, 16), K,
                     dst + q * kp_n + 16 * g, NR, mask16(16));
  }
}

template <int MR, int NV>
BERTFIT_AVX512_BF16 void tile512(int64_t kp_n, const uint32_t* a, const uint32_t* b, const TileArgs& t) {
  constexpr int NR = 16 * NV;
  __m512 acc[MR][NV];
  load_sums512(acc, t);
  for (int64_t kp = 0; kp < kp_n; ++kp) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_load_si512(b + kp * NR + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[kp * MR + r]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ar, bv[v]);
    }
  }
  finish_tile512(acc, t);
}

// ---- AVX2 + FMA: 6 x 16, the pairs unpacked to floats ----

template <int MR, int NV>
void tile256(int64_t kp_n, const uint32_t* a, const uint32_t* b, const TileArgs& t) {
  constexpr int NR = 8 * NV;
  const __m256i hi_mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m256 acc[MR][NV];
  load_sums256(acc, t);
  for (int64_t kp = 0; kp < kp_n; ++kp) {
    __m256 b_odd[NV], b_even[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + kp * NR + 8 * v));
      b_odd[v] = _mm256_castsi256_ps(_mm256_and_si256(w, hi_mask));
      b_even[v] = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const uint32_t w = a[kp * MR + r];
      const __m256 a_odd = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(w & 0xFFFF0000u)));
      const __m256 a_even = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(w << 16)));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        acc[r][v] = _mm256_fmadd_ps(a_odd, b_odd[v], acc[r][v]);
        acc[r][v] = _mm256_fmadd_ps(a_even, b_even[v], acc[r][v]);
      }
    }
  }
  finish_tile256(acc, t);
}

struct Kernel {
  int MR, NR;
  int64_t MC, KC;  // KC even: every chunk but the last of an odd K holds whole pairs
  void (*tile)(int64_t, const uint32_t*, const uint32_t*, const TileArgs&);
  void (*pack_a)(const Problem&, int64_t, int64_t, int64_t, int64_t, uint32_t*);
  void (*pack_b)(const Problem&, int64_t, int64_t, uint32_t*);
};

// AVX512_BF16: KC = 1024 k (512 words) and MC = 96, as gemm_packed: BERT-base's K = 768 in one chunk (the
// A block 192 KiB, the tile's B panel 64 KiB, both in L2). BERT-base's ten linear-layer products over 4096
// rows, 2 threads, AMD EPYC (Zen 5), the best of 4 alternating rounds: 215 ms against 225 with KC = 512 /
// MC = 144 (every product 1-10% faster); KC of 768-2048 and MC of 48-144 within noise of it. The fallback
// keeps 512 / 144 (CPUs without AVX-512 have less L2).
const Kernel kAvx512Bf16{12, 32, 96, 1024, &tile512<12, 2>, &pack_a_bf16_512, &pack_b_bf16_512};
const Kernel kAvx2{6, 16, 144, 512, &tile256<6, 2>, &pack_a<6>, &pack_b<16>};

const Kernel& kernel() {
  return use_avx512_bf16() ? kAvx512Bf16 : kAvx2;
}

// A packed element weighted as 64 multiply-adds for the thread split (gemm_tile.h's Blocking): rounding a
// float to bf16 costs more than copying it, and vdpbf16ps does twice the multiply-adds of an fp32 FMA, hence
// more than gemm_packed's 16; BERT's shapes pick the same split for any weight in 16-256 (AMD EPYC,
// 2026-12-05). The packed-B budget counts words: K/2 per column.
constexpr int64_t kPackCostMac = 64;

Blocking blocking(const Kernel& kn, int64_t K) {
  return {kn.MR, kn.NR, std::max<int64_t>(1, kPackedBMax / ((K + 1) / 2) / kn.NR), kPackCostMac};
}

void gemm_range(const Kernel& kn, const Problem& pr, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (m0 >= m1 || n0 >= n1) return;
  const int64_t K = pr.K, MR = kn.MR, NR = kn.NR, Kp = (K + 1) / 2;
  const int64_t nc_max = blocking(kn, K).column_block_width(n1 - n0);
  static thread_local AlignedBuffer<uint32_t> a_buf, b_buf;
  static thread_local AlignedBuffer<float> p_buf;
  const int64_t nc_cap = std::min(nc_max, (n1 - n0 + NR - 1) / NR * NR);
  const int64_t mc_cap = std::min(kn.MC, (m1 - m0 + MR - 1) / MR * MR);
  uint32_t* Bp = scratch(b_buf, Kp * nc_cap);
  uint32_t* Ap = scratch(a_buf, mc_cap * ((std::min(kn.KC, K) + 1) / 2));
  float* P = K > kn.KC ? scratch(p_buf, mc_cap * nc_cap) : nullptr;
  for (int64_t jc = n0; jc < n1; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n1 - jc);
    const int64_t ldp = (nc + NR - 1) / NR * NR;
    kn.pack_b(pr, jc, nc, Bp);
    for (int64_t ic = m0; ic < m1; ic += kn.MC) {
      const int64_t mc = std::min(kn.MC, m1 - ic);
      for (int64_t pc = 0; pc < K; pc += kn.KC) {
        const int64_t kc = std::min(kn.KC, K - pc), kp_n = (kc + 1) / 2;
        kn.pack_a(pr, ic, mc, pc, kc, Ap);
        const int flags = (pc == 0 ? kFirst : 0) | (pc + kc == K ? kLast : 0);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const uint32_t* b = Bp + jr * Kp + pc / 2 * NR;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const TileArgs t{P ? P + ir * ldp + jr : nullptr,
                             ldp,
                             pr.C + (ic + ir) * pr.ldc + jc + jr,
                             pr.ldc,
                             std::min(MR, mc - ir),
                             std::min(NR, nc - jr),
                             pr.alpha,
                             pr.beta,
                             pr.bias ? pr.bias + jc + jr : nullptr,
                             flags,
                             pr.ep.op,
                             pr.ep.aux ? pr.ep.aux + (ic + ir) * pr.ep.ld_aux + jc + jr : nullptr,
                             pr.ep.ld_aux};
            kn.tile(kp_n, Ap + ir * kp_n, b, t);
          }
        }
      }
    }
  }
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, const float* bias, float beta, float* C, int64_t ldc,
               const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // the empty sum, then the epilogue (as gemm_packed)
    const float x0 = alpha == 1.0f ? 0.0f : alpha * 0.0f;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const float x = bias ? x0 + bias[j] : x0;
        float& c = C[i * ldc + j];
        c = beta == 0.0f ? x : std::fma(beta, c, x);
      }
    gemm_epilogue_pass(M, N, C, ldc, ep);
    return;
  }
  const Problem pr{
      trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, with_aux_stride(ep, ldc)};
  const Kernel& kn = kernel();
  const bool parallel = M * N * K >= kParallelMinFma && !in_parallel() && num_threads() > 1;
  if (!parallel) {
    gemm_range(kn, pr, 0, M, 0, N);
    return;
  }
  blocking(kn, K).split_among_threads(
      M, N, K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) { gemm_range(kn, pr, m0, m1, n0, n1); });
}

void gemm_bf16_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                         const float* A, int64_t lda, const float* B, int64_t ldb, const float* bias,
                         float beta, float* C, int64_t ldc) {
  auto bf = [](float f) {
    return static_cast<double>(float_from_bf16(static_cast<uint16_t>(to_bf16_daz(f))));
  };
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        s += bf(a) * bf(b);
      }
      double x = static_cast<double>(alpha) * s + (bias ? static_cast<double>(bias[j]) : 0.0);
      if (beta != 0.0f) x += static_cast<double>(beta) * C[i * ldc + j];
      C[i * ldc + j] = static_cast<float>(x);
    }
}

const char* gemm_bf16_path() {
  return use_avx512_bf16() ? "AVX512_BF16 (vdpbf16ps)" : "AVX2 + FMA (bf16 operands, float FMAs)";
}

}  // namespace bertfit

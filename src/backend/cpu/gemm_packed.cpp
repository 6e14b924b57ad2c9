// gemm_packed: the engine's own GEMM (see gemm.h for the contract). A packed GEMM in the Goto / BLIS style:
//
//   threads: C split into T contiguous ranges of columns (or of rows, when C is tall), never K
//   per thread, over its range:
//     jc: columns of C in blocks of up to nc (nc x K of packed op(B) fits the budget kPackedBMax)
//       pack op(B)[0:K, jc block] into column panels of NR: Bp[panel][k][NR], zero-padded
//       ic: rows in blocks of MC
//         pc: K in chunks of KC
//           pack op(A)[ic block, pc chunk] into row panels of MR: Ap[panel][k][MR], zero-padded (AVX-512
//             reads a row-major A in place instead when its rows do not alias in L1: reads_a_in_place)
//           jr over the NR panels, ir over the MR panels: the MR x NR register tile over the kc k
//
// The register tile keeps MR x NR sums in vector registers: per k, NR/W vector loads of the B panel, MR
// broadcasts of the A panel, MR x NR/W FMAs. Its sums start at 0 in the first K chunk; between chunks they
// are stored as floats in a per-thread buffer (P, MC x nc) and reloaded, which continues every FMA chain
// exactly; the last chunk applies the epilogue and writes C. So each C element is the same chain whatever
// the blocking, the tile it falls in, the thread, the call's M or N, or the vector width.
//
// Two instruction sets, the same bits: AVX-512 (12 x 32 tile: 24 zmm accumulators) and AVX2 + FMA (6 x 16:
// 12 ymm accumulators). Edges of C (rows past M, columns past N) are computed on zero padding and masked out
// at the store; C outside the product is never read or written.
#include "backend/cpu/gemm.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "backend/cpu/gemm_tile.h"
#include "backend/cpu/transpose16.h"
#include "core/aligned_buffer.h"
#include "core/cpu_features.h"
#include "core/simd.h"  // <immintrin.h> without GCC 12's false warnings
#include "core/threading.h"

namespace bertfit {
namespace {

// Floats of packed op(B) per thread at most (8 MiB): K x nc, so nc shrinks for a long K (weight gradients
// over B*T = 4096 tokens: nc = 512) and covers a thread's share of N for BERT-base's forward shapes (K = 768:
// up to 2720 columns).
constexpr int64_t kPackedBMax = int64_t{1} << 21;
// Below this many multiply-adds one thread does the product: forking and joining costs 5-20 us, about what
// 2^21 FMAs take on one core (see gemm_nt_small.cpp).
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
  const float* bias;  // [N] or null
  Epilogue ep;        // ep.ld_aux resolved (never 0)
  bool a_in_place;    // the tiles read op(A) where it is (reads_a_in_place), not from packed panels
};

// Grow-only per-thread scratch (the pool's threads persist: allocated once per run).
float* scratch(AlignedBuffer<float>& buf, int64_t n) {
  if (buf.size() < static_cast<size_t>(n)) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

// op(A) rows [i0, i0 + mc) x k [k0, k0 + kc) into panels of MR rows: dst[p * MR * kc + k * MR + r] =
// op(A)(i0 + p * MR + r, k0 + k); rows past mc are zero.
template <int MR>
void pack_a(const Problem& pr, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  for (int64_t p = 0; p < mc; p += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - p);
    float* d = dst + p * kc;
    if (!pr.ta) {  // A is [M][K]: each row contiguous in k
      for (int64_t r = 0; r < rows; ++r) {
        const float* s = pr.A + (i0 + p + r) * pr.lda + k0;
        for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = s[k];
      }
      for (int64_t r = rows; r < MR; ++r)
        for (int64_t k = 0; k < kc; ++k) d[k * MR + r] = 0.0f;
    } else {  // A is [K][M]: the MR rows of one k side by side
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = pr.A + (k0 + k) * pr.lda + i0 + p;
        for (int64_t r = 0; r < rows; ++r) d[k * MR + r] = s[r];
        for (int64_t r = rows; r < MR; ++r) d[k * MR + r] = 0.0f;
      }
    }
  }
}

// op(B) k [0, K) x columns [j0, j0 + nc) into panels of NR columns: dst[q * NR * K + k * NR + c] =
// op(B)(k, j0 + q * NR + c); columns past nc are zero.
template <int NR>
void pack_b(const Problem& pr, int64_t j0, int64_t nc, float* dst) {
  const int64_t K = pr.K;
  for (int64_t q = 0; q < nc; q += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - q);
    float* d = dst + q * K;
    if (!pr.tb) {  // B is [K][N]: NR contiguous columns per k
      for (int64_t k = 0; k < K; ++k) {
        const float* s = pr.B + k * pr.ldb + j0 + q;
        for (int64_t c = 0; c < cols; ++c) d[k * NR + c] = s[c];
        for (int64_t c = cols; c < NR; ++c) d[k * NR + c] = 0.0f;
      }
    } else {  // B is [N][K] (nn.Linear weights): each column of op(B) contiguous in k
      for (int64_t c = 0; c < cols; ++c) {
        const float* s = pr.B + (j0 + q + c) * pr.ldb;
        for (int64_t k = 0; k < K; ++k) d[k * NR + c] = s[k];
      }
      for (int64_t c = cols; c < NR; ++c)
        for (int64_t k = 0; k < K; ++k) d[k * NR + c] = 0.0f;
    }
  }
}

// The two packings that only copy (op(A) = A^T, op(B) = B: a weight gradient's operands, both walked along
// their rows) go kPackRows rows at a time, every panel of those rows, then the next rows: each row's span is
// read once, from L1 after its first panel. Panel by panel over all kc rows instead (the old order), every
// panel re-read each row from L2 or beyond, and with a row stride that is a multiple of 4 KiB (1024 or 3072
// floats: mini's and BERT-base's FFN) the rows share one L1 set and stay in few L2 sets. 8 rows fit the 12
// ways of Zen 5's (and recent Intel cores') L1D. One thread packing 96 x 1024 blocks of op(A) out of a
// 4096-row matrix (AMD EPYC Zen 5, 2026-12-05): 1.4-3.9x faster at row strides of 256-3072 floats (the old
// order's masked 12-float loads and stores cost a little too); over 4096 rows, 2 threads, the weight
// gradients of the mini model's four products 8% faster, BERT-base's 9% (docs/benchmarks.md).
constexpr int64_t kPackRows = 8;

// The two packings that transpose (op(A) = A row-major into k-major panels, op(B) = B^T: nn.Linear weights),
// by 16 x 16 blocks transposed in registers instead of one scalar store per element: the same values as
// pack_a / pack_b (a copy), 2-4x faster; they were ~15% of a forward-shaped product's time.
BERTFIT_AVX512 void pack_a_512(const Problem& pr, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                               float* dst) {
  constexpr int MR = 12;
  if (pr.ta) {  // already k-major: a copy of MR floats per k, kPackRows k at a time (see there)
    for (int64_t kb = 0; kb < kc; kb += kPackRows) {
      const int64_t ke = std::min(kc, kb + kPackRows);
      for (int64_t p = 0; p < mc; p += MR) {
        const float* s = pr.A + (k0 + kb) * pr.lda + i0 + p;
        float* d = dst + p * kc + kb * MR;
        if (mc - p >= MR) {  // a whole panel: unmasked 8 + 4 float copies
          for (int64_t k = 0; k < ke - kb; ++k, s += pr.lda, d += MR) {
            _mm256_storeu_ps(d, _mm256_loadu_ps(s));
            _mm_storeu_ps(d + 8, _mm_loadu_ps(s + 8));
          }
        } else {  // the last panel: rows past mc are zero
          const __mmask16 rm = mask16(mc - p);
          for (int64_t k = 0; k < ke - kb; ++k, s += pr.lda, d += MR)
            _mm512_mask_storeu_ps(d, 0x0FFF, _mm512_maskz_loadu_ps(rm, s));
        }
      }
    }
    return;
  }
  for (int64_t p = 0; p < mc; p += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - p);
    float* d = dst + p * kc;
    for (int64_t k = 0; k < kc; k += 16) {
      const int64_t kn = std::min<int64_t>(16, kc - k);
      const __mmask16 km = mask16(kn);
      __m512 r[16];
      for (int64_t i = 0; i < 16; ++i)
        r[i] =
            i < rows ? _mm512_maskz_loadu_ps(km, pr.A + (i0 + p + i) * pr.lda + k0 + k) : _mm512_setzero_ps();
      transpose16(r);  // r[j]: the 16 rows at k + j (rows past `rows` zero)
      for (int64_t j = 0; j < kn; ++j) _mm512_mask_storeu_ps(d + (k + j) * MR, 0x0FFF, r[j]);
    }
  }
}

BERTFIT_AVX512 void pack_b_512(const Problem& pr, int64_t j0, int64_t nc, float* dst) {
  constexpr int NR = 32;
  if (!pr.tb) {  // already k-major: a copy of NR floats per k, kPackRows k at a time (see there)
    const int64_t K = pr.K;
    for (int64_t kb = 0; kb < K; kb += kPackRows) {
      const int64_t ke = std::min(K, kb + kPackRows);
      for (int64_t q = 0; q < nc; q += NR) {
        const float* s = pr.B + kb * pr.ldb + j0 + q;
        float* d = dst + q * K + kb * NR;  // 64-byte aligned: q * K is a multiple of 32 floats
        if (nc - q >= NR) {
          for (int64_t k = 0; k < ke - kb; ++k, s += pr.ldb, d += NR) {
            _mm512_store_ps(d, _mm512_loadu_ps(s));
            _mm512_store_ps(d + 16, _mm512_loadu_ps(s + 16));
          }
        } else {  // the last panel: columns past nc are zero
          const __mmask16 m0 = mask16(nc - q), m1 = mask16(nc - q - 16);
          for (int64_t k = 0; k < ke - kb; ++k, s += pr.ldb, d += NR) {
            _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, s));
            _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, s + 16));
          }
        }
      }
    }
    return;
  }
  const int64_t K = pr.K;
  for (int64_t q = 0; q < nc; q += NR) {
    float* d = dst + q * K;  // 64-byte aligned: q * K is a multiple of 32 floats
    for (int64_t c0 = 0; c0 < NR; c0 += 16) {
      const int64_t cn = std::min<int64_t>(16, nc - q - c0);  // columns of this half (<= 0: all padding)
      for (int64_t k = 0; k < K; k += 16) {
        const int64_t kn = std::min<int64_t>(16, K - k);
        const __mmask16 km = mask16(kn);
        __m512 r[16];
        for (int64_t i = 0; i < 16; ++i)
          r[i] =
              i < cn ? _mm512_maskz_loadu_ps(km, pr.B + (j0 + q + c0 + i) * pr.ldb + k) : _mm512_setzero_ps();
        transpose16(r);
        for (int64_t j = 0; j < kn; ++j) _mm512_store_ps(d + (k + j) * NR + c0, r[j]);
      }
    }
  }
}

// ---- AVX-512: 12 x 32 ----

// The tile's k loop, op(A)'s value at (k, r) from a_at(k, r): a packed panel or A in place (below).
// Fixed-size loops, fully unrolled (here and in gemm_tile.h), so that the MR x NV sums live in registers.
template <int MR, int NV, class AAt>
BERTFIT_AVX512 inline __attribute__((always_inline)) void tile512_k_loop(int64_t kc, const AAt& a_at,
                                                                         const float* b,
                                                                         __m512 (&acc)[MR][NV]) {
  constexpr int NR = 16 * NV;
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + k * NR + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a_at(k, r));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
}

template <int MR, int NV>
BERTFIT_AVX512 void tile512(int64_t kc, const float* a, const float* b, const TileArgs& t) {
  __m512 acc[MR][NV];
  load_sums512(acc, t);
  tile512_k_loop<MR, NV>(
      kc, [a](int64_t k, int r) { return a[k * MR + r]; }, b, acc);
  finish_tile512(acc, t);
}

// The same tile with op(A) read where it is instead of from a packed panel: A row-major (not transposed), the
// tile's row r at a + r * lda. Each k reads one float of each of the MR rows (MR streams walking their rows,
// each 64-byte line serving 16 k); the products, their order and so the bits are tile512's. Rows past `rows`
// (the last panel of a block) read row 0 again: their sums are computed and never stored (finish_tile512
// stores only the valid mr rows into C; into P, whose rows past mr nothing reads), and no read leaves A.
template <int MR, int NV>
BERTFIT_AVX512 void tile512_a_in_place(int64_t kc, const float* a, int64_t lda, int64_t rows, const float* b,
                                       const TileArgs& t) {
  __m512 acc[MR][NV];
  const float* row[MR];
  for (int r = 0; r < MR; ++r) row[r] = a + (r < rows ? r : 0) * lda;
  load_sums512(acc, t);
  tile512_k_loop<MR, NV>(
      kc, [&row](int64_t k, int r) { return row[r][k]; }, b, acc);
  finish_tile512(acc, t);
}

// ---- AVX2 + FMA: 6 x 16 ----

template <int MR, int NV>
void tile256(int64_t kc, const float* a, const float* b, const TileArgs& t) {
  constexpr int NR = 8 * NV;
  __m256 acc[MR][NV];
  load_sums256(acc, t);
  for (int64_t k = 0; k < kc; ++k) {
    __m256 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(b + k * NR + 8 * v);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + k * MR + r);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  finish_tile256(acc, t);
}

// One instruction set's kernel and blocking. MC (rows per A block, a multiple of MR) and KC (the K chunk).
// AVX-512: the whole of K = 768 (BERT-base's hidden size) in one chunk, so that no partial sums go through P:
// the MC x KC A block (96 x 1024 floats, 384 KiB) and the tile's KC x NR B panel (128 KiB) stay in Zen 5's
// 1 MiB L2, which feeds the tile as fast as L1 does (a tile-only loop, A and B panels in L2: 95-97% of the
// FMA probe at kc = 256, 512 and 768, one thread). Measured on an AMD EPYC (Zen 5), 2 threads, BERT-base's
// ten linear-layer products over 4096 rows, the best of 4 alternating rounds: KC = 1024 / MC = 96 took 458 ms
// against 471 with the textbook 256 / 144 (the K = 768 products 5-7% faster; K = 3072-4096 within noise); KC
// of 768-2048 and MC of 72-144 within 2% of that; the mini model's products unchanged. AVX2 keeps 256 / 144:
// CPUs without AVX-512 have 256-512 KiB of L2. The 12 x 32 tile: 24 accumulators + 2 B vectors + 1 broadcast
// in the 32 zmm; GCC 12 keeps them all in registers (checked in the disassembly: per k, 2 loads, 12
// broadcasts, 24 FMAs, no spill); 14 x 32, 8 x 48, 6 x 64 and 4 x 64 tiles ran within 2% of it alone.
struct Kernel {
  int MR, NR;
  int64_t MC, KC;
  void (*tile)(int64_t, const float*, const float*, const TileArgs&);
  void (*pack_a)(const Problem&, int64_t, int64_t, int64_t, int64_t, float*);
  void (*pack_b)(const Problem&, int64_t, int64_t, float*);
  // The tile reading op(A) in place (a, lda, valid rows), or null: AVX2 always packs.
  void (*tile_a_in_place)(int64_t, const float*, int64_t, int64_t, const float*, const TileArgs&);
};

const Kernel kAvx512{12, 32, 96, 1024, &tile512<12, 2>, &pack_a_512, &pack_b_512, &tile512_a_in_place<12, 2>};
const Kernel kAvx2{6, 16, 144, 256, &tile256<6, 2>, &pack_a<6>, &pack_b<16>, nullptr};

// Whether the tiles read op(A) in place rather than packing it: only A row-major (op(A) = A^T walks one
// strided stream per k, a new line and often a new page each k: weight gradients 14-22% slower that way), and
// only when the tile's MR rows spread over the L1 sets. Each k the tile reads one float from each of its MR
// rows; rows whose stride is a multiple of 4 KiB (1024 or 3072 floats: the FFN's activations) all map to one
// set of the 64-set L1D and evict each other (11-12% slower than packing, BERT-base's ffn_out forward and
// ffn_in input gradient). Allowed: at most 3 of the MR rows' first lines in one set. Measured against packing
// on an AMD EPYC (Zen 5), 2 threads, both ways alternating in one process (2026-12-06): BERT-base's products
// at 1024 rows with lda = 768 or 2304 3-11% faster, at 4096 rows 2-6%; the mini model's (lda 256) 5-21%.
// Packing is a copy whose stores and second pass over op(A) the tile's own reads replace.
bool reads_a_in_place(const Kernel& kn, bool trans_a, int64_t lda) {
  if (!kn.tile_a_in_place || trans_a) return false;
  int per_set[64] = {};
  for (int64_t r = 0; r < kn.MR; ++r)
    if (++per_set[(r * lda * static_cast<int64_t>(sizeof(float)) / 64) % 64] > 3) return false;
  return true;
}

// A packed element weighted as 16 multiply-adds for the thread split (gemm_tile.h's Blocking).
constexpr int64_t kPackCostFma = 16;

Blocking blocking(const Kernel& kn, int64_t K, bool a_in_place = false) {
  return {kn.MR, kn.NR, std::max<int64_t>(1, kPackedBMax / K / kn.NR), kPackCostFma, a_in_place};
}

// gemm_epilogue_pass's row: the tiles' step on 16 (or 8) columns at a time, masked at the end.
BERTFIT_AVX512 void gelu_row512(float* c, float* a, int64_t n) {
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = mask16(n - j);
    _mm512_mask_storeu_ps(c + j, m, gelu_step512(_mm512_maskz_loadu_ps(m, c + j), m, a ? a + j : nullptr));
  }
}

void gelu_row256(float* c, float* a, int64_t n) {
  for (int64_t j = 0; j < n; j += 8) {
    const __m256i m = mask8(n - j);
    _mm256_maskstore_ps(c + j, m, gelu_step256(_mm256_maskload_ps(c + j, m), m, a ? a + j : nullptr));
  }
}

// Rows [m0, m1) x columns [n0, n1) of C, serially in the calling thread.
void gemm_range(const Kernel& kn, const Problem& pr, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (m0 >= m1 || n0 >= n1) return;
  const int64_t K = pr.K, MR = kn.MR, NR = kn.NR;
  const int64_t nc_max = blocking(kn, K).column_block_width(n1 - n0);
  static thread_local AlignedBuffer<float> a_buf, b_buf, p_buf;
  const int64_t nc_cap = std::min(nc_max, (n1 - n0 + NR - 1) / NR * NR);
  const int64_t mc_cap = std::min(kn.MC, (m1 - m0 + MR - 1) / MR * MR);
  float* Bp = scratch(b_buf, K * nc_cap);
  float* Ap = pr.a_in_place ? nullptr : scratch(a_buf, mc_cap * std::min(kn.KC, K));
  float* P = K > kn.KC ? scratch(p_buf, mc_cap * nc_cap) : nullptr;
  for (int64_t jc = n0; jc < n1; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n1 - jc);
    const int64_t ldp = (nc + NR - 1) / NR * NR;
    kn.pack_b(pr, jc, nc, Bp);
    for (int64_t ic = m0; ic < m1; ic += kn.MC) {
      const int64_t mc = std::min(kn.MC, m1 - ic);
      for (int64_t pc = 0; pc < K; pc += kn.KC) {
        const int64_t kc = std::min(kn.KC, K - pc);
        if (!pr.a_in_place) kn.pack_a(pr, ic, mc, pc, kc, Ap);
        const int flags = (pc == 0 ? kFirst : 0) | (pc + kc == K ? kLast : 0);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const float* b = Bp + jr * K + pc * NR;
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
            if (pr.a_in_place)
              kn.tile_a_in_place(kc, pr.A + (ic + ir) * pr.lda + pc, pr.lda, std::min(MR, mc - ir), b, t);
            else
              kn.tile(kc, Ap + ir * kc, b, t);
          }
        }
      }
    }
  }
}

}  // namespace

void gemm_epilogue_pass(int64_t M, int64_t N, float* C, int64_t ldc, const Epilogue& ep) {
  if (ep.op == EpilogueOp::NONE || M <= 0 || N <= 0) return;
  const int64_t ld_aux = with_aux_stride(ep, ldc).ld_aux;
  const bool wide = use_avx512();
  parallel_for(0, M, M * N >= kParallelMinWork, [&](int64_t i) {
    float* a = ep.aux ? ep.aux + i * ld_aux : nullptr;
    if (wide)
      gelu_row512(C + i * ldc, a, N);
    else
      gelu_row256(C + i * ldc, a, N);
  });
}

double gemm_packed_tile_gflops(int threads, int64_t rounds) {
  const Kernel& kn = use_avx512() ? kAvx512 : kAvx2;
  // Two B panels: with the A block they take 640 KiB of a 1 MiB L2 (AVX-512's blocking), room for C.
  constexpr int64_t kPanels = 2;
  const int64_t mc = kn.MC, kc = kn.KC, ldc = kPanels * kn.NR;
  double seconds = 0;
  parallel_region(
      [&](const Team& team) {
        AlignedBuffer<float> a(static_cast<size_t>(mc * kc)), b(static_cast<size_t>(kPanels * kc * kn.NR)),
            c(static_cast<size_t>(mc * ldc));
        // Small values: the sums stay far from overflow and subnormals over any number of rounds (beta = 0).
        for (size_t i = 0; i < a.size(); ++i) a.data()[i] = 1e-3f * static_cast<float>(i % 7);
        for (size_t i = 0; i < b.size(); ++i) b.data()[i] = 1e-3f * static_cast<float>(i % 5);
        for (size_t i = 0; i < c.size(); ++i) c.data()[i] = 0.0f;
        team.barrier();
        // Timed between barriers: the allocation, first touch and filling above are not the tile's.
        const auto t0 = std::chrono::steady_clock::now();
        for (int64_t r = 0; r < rounds; ++r)
          for (int64_t jr = 0; jr < kPanels; ++jr)
            for (int64_t ir = 0; ir < mc; ir += kn.MR) {
              const TileArgs t{nullptr,
                               0,
                               c.data() + ir * ldc + jr * kn.NR,
                               ldc,
                               kn.MR,
                               kn.NR,
                               1.0f,
                               0.0f,
                               nullptr,
                               kFirst | kLast,
                               EpilogueOp::NONE,
                               nullptr,
                               0};
              kn.tile(kc, a.data() + ir * kc, b.data() + jr * kc * kn.NR, t);
            }
        team.barrier();
        if (team.thread() == 0)
          seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      },
      true, threads);
  const double flop = 2.0 * threads * static_cast<double>(rounds) * kPanels * mc * kn.NR * kc;
  return flop / seconds / 1e9;
}

bool gemm_packed_reads_a_in_place(bool trans_a, int64_t lda) {
  return reads_a_in_place(use_avx512() ? kAvx512 : kAvx2, trans_a, lda);
}

void gemm_packed(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_packed_bias(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, nullptr, beta, C, ldc);
}

void gemm_packed_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, const float* bias, float beta,
                      float* C, int64_t ldc, const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // the empty sum: acc = 0, then the same epilogue as the tiles
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
  const Kernel& kn = use_avx512() ? kAvx512 : kAvx2;
  const bool a_in_place = reads_a_in_place(kn, trans_a, lda);
  const Problem pr{
      trans_a,   trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, with_aux_stride(ep, ldc),
      a_in_place};
  const bool parallel = M * N * K >= kParallelMinFma && !in_parallel() && num_threads() > 1;
  if (!parallel) {
    gemm_range(kn, pr, 0, M, 0, N);
    return;
  }
  blocking(kn, K, pr.a_in_place)
      .split_among_threads(M, N, K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
        gemm_range(kn, pr, m0, m1, n0, n1);
      });
}

}  // namespace bertfit

// AVX-512 kernel for C = A B^T (+ bias) (+ C) with K-contiguous operands; see gemm_nt_small.h for why.
//
// Loop nest (per call):
//   m-blocks of up to kMC rows of A:
//     K ranges of up to ko (all of K unless the panels would not fit half of L2):
//       pack A[m-block, K range] transposed into panels AT[p][k][64] (64 rows of A side by side, zero-padded
//       to a multiple of 16), each thread all of them into its own buffer
//       each thread, over its contiguous range of weight-row blocks (kNB rows of B; no split of K):
//         for each K chunk (kKC): for each panel: for each 6-row tile of the block:
//           the 6 x 64 register tile: per k, one broadcast of B per row and 4 FMAs with it; the sums are
//           saved to / restored from ct (the block's outputs, transposed: [n][m]) between chunks
//         after the last K range: ct -> C by 16 x 16 register transposes, + bias (+ C).
// Every weight element is read from memory once per m-block (once per call for M <= kMC), never copied; the
// chunk of a panel is reused by every tile of the block; while the first panel is multiplied, each tile
// prefetches into L2 the weights of the tile that comes next. The weights are read where they lie (B's rows)
// or packed in the order the tiles read them (nt_small_pack, weight_tile(); BertModel packs its encoder's in
// place for small-batch inference): the same loops and FMAs, one sequential stream of weights instead of 6
// rows ldb apart.
#include "backend/cpu/gemm_nt_small.h"

#include "core/simd.h"  // <immintrin.h> without GCC 12's false warnings

#include <algorithm>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_tile.h"  // gelu_step512: the packed GEMM's fused GELU
#include "backend/cpu/transpose16.h"
#include "core/aligned_buffer.h"
#include "core/cpu_features.h"
#include "core/threading.h"

namespace bertfit {
namespace {

constexpr int64_t kRN = 6;   // weight rows per register tile (6 x 4 = 24 of the 32 zmm hold accumulators)
constexpr int64_t kMV = 4;   // zmm vectors of activation rows per register tile (64 rows: one panel)
constexpr int64_t kMP = 64;  // activation rows per panel (kMV * 16)
// The block sizes below were chosen by measurement (BERT-base's four shapes, weights streamed, 2 threads;
// bertfit_gemm_bench and whole-model A/B runs): other values within a factor 2 were 0-10% slower or within
// the machine's noise. kNB: weight rows per block, a thread's unit of work (a multiple of kRN and of 16).
constexpr int64_t kNB = kNtSmallBlockRows;  // 48
// K chunk of a tile call: 256 x 64 floats of a panel (64 KiB) come from L2 with the hardware's prefetch; 128
// (32 KiB, L1) measured 3-7% slower, the extra saves and restores of the 24 accumulators costing more.
constexpr int64_t kKC = 256;
// Rows of A per m-block: at M = 384-512, two m-blocks of 256 were 2-4% faster than one (half the panels and
// partial sums in L2) although the weights stream twice (the second time mostly from L3).
constexpr int64_t kMC = 256;
// Panel floats packed at once: half of the 2 MiB L2, the rest for the streaming weights and ct. A larger K is
// packed in ranges (ffn_out, K = 3072: 5-13% faster at M = 128-1024 than packing all of it at once). On a Zen
// 5 (1 MiB L2) half or a quarter of this budget was no faster (BERT-base at batch 1, 2026-12-05).
constexpr int64_t kPanelBudget = int64_t{1} << 18;
// At most this many floats of partial sums per thread (16 MiB) when K is packed in ranges.
constexpr int64_t kPartialSumsMax = int64_t{1} << 22;
// Below this many multiply-adds (M rounded up to 16 lanes) one thread does the product: forking and joining
// costs 5-20 us, about what 2^21 FMAs take on one core (32 per cycle at ~3.7 GHz: ~18 us).
constexpr int64_t kParallelMinFma = int64_t{1} << 21;

// Rows [0, rows) (rows <= 16; the rest of the 16 lanes zero) and columns [k0, k0 + kcnt) (kcnt <= 16) of A,
// transposed into AT: dst[j * kMP + i] = A[i, k0 + j].
BERTFIT_AVX512 void pack_16x16(const float* A, int64_t lda, int64_t rows, int64_t k0, int64_t kcnt,
                               float* dst) {
  const __mmask16 km = mask16(kcnt);
  __m512 r[16];
  for (int64_t i = 0; i < 16; ++i)
    r[i] = i < rows ? _mm512_maskz_loadu_ps(km, A + i * lda + k0) : _mm512_setzero_ps();
  transpose16(r);
  for (int64_t j = 0; j < kcnt; ++j) _mm512_store_ps(dst + j * kMP, r[j]);
}

// One k of the register tile: acc[r][v] += w[r][k] * at[k][16 v .. 16 v + 15], weight row r's k-th element at
// wr[r][k * KS] (KS = 1: B's rows; kRN: the packed layout, whose 6 rows are interleaved).
template <int RN, int MV, int KS>
BERTFIT_AVX512 __attribute__((always_inline)) inline void tile_step(__m512 (&acc)[RN][MV],
                                                                    const float* const (&wr)[RN],
                                                                    const float* at, int64_t k) {
  __m512 a[MV];
#pragma GCC unroll 4
  for (int v = 0; v < MV; ++v) a[v] = _mm512_load_ps(at + k * kMP + 16 * v);
#pragma GCC unroll 6
  for (int r = 0; r < RN; ++r) {
    const __m512 b = _mm512_set1_ps(wr[r][k * KS]);
#pragma GCC unroll 4
    for (int v = 0; v < MV; ++v) acc[r][v] = _mm512_fmadd_ps(b, a[v], acc[r][v]);
  }
}

// The full 6 x 64 tile over kc16 (a multiple of 16) k, in assembly. With intrinsics GCC 12 does not keep the
// 24 accumulators, 4 panel vectors and a broadcast in the 32 zmm: it spills two accumulators and adds ~100
// register moves per 16 k. Measured: 86% -> 88% of the FMA peak on L1-resident data, 2-3% on the 48 GEMMs of
// BERT-base at M = 128 (bertfit_gemm_bench, 3 alternating runs each). An asm statement cannot take 24 in-out
// vector operands, hence the whole tile here. Accumulators: zmm(4 r + v); per k: 4 aligned loads of the panel
// (zmm24-27), then per weight row one broadcast (zmm28-31 in turn) and 4 FMAs, in the same order as the
// generic tile (same bits). Rows 0-2 of weights / outputs are addressed from w0 / ct, rows 3-5 from w3 / ct3
// (+ 0, 1, 2 times the row stride s / lc, in bytes). The prefetches (6 lines per 16 k, npf times) are the
// generic tile's.
//
// The packed layout (nt_small_pack) puts the 6 rows' elements of one k side by side (w[6 k + r]): the
// tile then reads one sequential stream of weights instead of 6 rows ldw apart, and prefetches the next
// tile's 6 lines per 16 k from one stream too; the FMAs and their order (so the bits) are the same. The asm
// text below is shared; only the weights' addresses and the pointer steps differ.
#define BERTFIT_TILE_6X4_ASM(W0, W1, W2, W3, W4, W5, PREFETCH_16K, STEP_16K) \
  "test %[init], %[init]\n\t"                                                \
  "jz 1f\n\t"                                                                \
  "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"                                        \
  "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"                                        \
  "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"                                        \
  "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"                                        \
  "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"                                        \
  "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"                                        \
  "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"                                        \
  "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"                                        \
  "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"                                        \
  "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"                                        \
  "vpxord %%zmm10, %%zmm10, %%zmm10\n\t"                                     \
  "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"                                     \
  "vpxord %%zmm12, %%zmm12, %%zmm12\n\t"                                     \
  "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"                                     \
  "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"                                     \
  "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"                                     \
  "vpxord %%zmm16, %%zmm16, %%zmm16\n\t"                                     \
  "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"                                     \
  "vpxord %%zmm18, %%zmm18, %%zmm18\n\t"                                     \
  "vpxord %%zmm19, %%zmm19, %%zmm19\n\t"                                     \
  "vpxord %%zmm20, %%zmm20, %%zmm20\n\t"                                     \
  "vpxord %%zmm21, %%zmm21, %%zmm21\n\t"                                     \
  "vpxord %%zmm22, %%zmm22, %%zmm22\n\t"                                     \
  "vpxord %%zmm23, %%zmm23, %%zmm23\n\t"                                     \
  "jmp 2f\n"                                                                 \
  "1:\n\t"                                                                   \
  "vmovaps (%[ct]), %%zmm0\n\t"                                              \
  "vmovaps 64(%[ct]), %%zmm1\n\t"                                            \
  "vmovaps 128(%[ct]), %%zmm2\n\t"                                           \
  "vmovaps 192(%[ct]), %%zmm3\n\t"                                           \
  "vmovaps (%[ct],%[lc],1), %%zmm4\n\t"                                      \
  "vmovaps 64(%[ct],%[lc],1), %%zmm5\n\t"                                    \
  "vmovaps 128(%[ct],%[lc],1), %%zmm6\n\t"                                   \
  "vmovaps 192(%[ct],%[lc],1), %%zmm7\n\t"                                   \
  "vmovaps (%[ct],%[lc],2), %%zmm8\n\t"                                      \
  "vmovaps 64(%[ct],%[lc],2), %%zmm9\n\t"                                    \
  "vmovaps 128(%[ct],%[lc],2), %%zmm10\n\t"                                  \
  "vmovaps 192(%[ct],%[lc],2), %%zmm11\n\t"                                  \
  "vmovaps (%[ct3]), %%zmm12\n\t"                                            \
  "vmovaps 64(%[ct3]), %%zmm13\n\t"                                          \
  "vmovaps 128(%[ct3]), %%zmm14\n\t"                                         \
  "vmovaps 192(%[ct3]), %%zmm15\n\t"                                         \
  "vmovaps (%[ct3],%[lc],1), %%zmm16\n\t"                                    \
  "vmovaps 64(%[ct3],%[lc],1), %%zmm17\n\t"                                  \
  "vmovaps 128(%[ct3],%[lc],1), %%zmm18\n\t"                                 \
  "vmovaps 192(%[ct3],%[lc],1), %%zmm19\n\t"                                 \
  "vmovaps (%[ct3],%[lc],2), %%zmm20\n\t"                                    \
  "vmovaps 64(%[ct3],%[lc],2), %%zmm21\n\t"                                  \
  "vmovaps 128(%[ct3],%[lc],2), %%zmm22\n\t"                                 \
  "vmovaps 192(%[ct3],%[lc],2), %%zmm23\n\t"                                 \
  "2:\n\t"                                                                   \
  "test %[nblk], %[nblk]\n\t"                                                \
  "jz 4f\n"                                                                  \
  "3:\n\t"                                                                   \
  "test %[npf], %[npf]\n\t"                                                  \
  "jz 5f\n\t" PREFETCH_16K                                                   \
  "dec %[npf]\n"                                                             \
  "5:\n\t"                                                                   \
  ".irp u,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"                         \
  "vmovaps (\\u*256+0)(%[at]), %%zmm24\n\t"                                  \
  "vmovaps (\\u*256+64)(%[at]), %%zmm25\n\t"                                 \
  "vmovaps (\\u*256+128)(%[at]), %%zmm26\n\t"                                \
  "vmovaps (\\u*256+192)(%[at]), %%zmm27\n\t"                                \
  "vbroadcastss " W0                                                         \
  ", %%zmm28\n\t"                                                            \
  "vfmadd231ps %%zmm24, %%zmm28, %%zmm0\n\t"                                 \
  "vfmadd231ps %%zmm25, %%zmm28, %%zmm1\n\t"                                 \
  "vfmadd231ps %%zmm26, %%zmm28, %%zmm2\n\t"                                 \
  "vfmadd231ps %%zmm27, %%zmm28, %%zmm3\n\t"                                 \
  "vbroadcastss " W1                                                         \
  ", %%zmm29\n\t"                                                            \
  "vfmadd231ps %%zmm24, %%zmm29, %%zmm4\n\t"                                 \
  "vfmadd231ps %%zmm25, %%zmm29, %%zmm5\n\t"                                 \
  "vfmadd231ps %%zmm26, %%zmm29, %%zmm6\n\t"                                 \
  "vfmadd231ps %%zmm27, %%zmm29, %%zmm7\n\t"                                 \
  "vbroadcastss " W2                                                         \
  ", %%zmm30\n\t"                                                            \
  "vfmadd231ps %%zmm24, %%zmm30, %%zmm8\n\t"                                 \
  "vfmadd231ps %%zmm25, %%zmm30, %%zmm9\n\t"                                 \
  "vfmadd231ps %%zmm26, %%zmm30, %%zmm10\n\t"                                \
  "vfmadd231ps %%zmm27, %%zmm30, %%zmm11\n\t"                                \
  "vbroadcastss " W3                                                         \
  ", %%zmm31\n\t"                                                            \
  "vfmadd231ps %%zmm24, %%zmm31, %%zmm12\n\t"                                \
  "vfmadd231ps %%zmm25, %%zmm31, %%zmm13\n\t"                                \
  "vfmadd231ps %%zmm26, %%zmm31, %%zmm14\n\t"                                \
  "vfmadd231ps %%zmm27, %%zmm31, %%zmm15\n\t"                                \
  "vbroadcastss " W4                                                         \
  ", %%zmm28\n\t"                                                            \
  "vfmadd231ps %%zmm24, %%zmm28, %%zmm16\n\t"                                \
  "vfmadd231ps %%zmm25, %%zmm28, %%zmm17\n\t"                                \
  "vfmadd231ps %%zmm26, %%zmm28, %%zmm18\n\t"                                \
  "vfmadd231ps %%zmm27, %%zmm28, %%zmm19\n\t"                                \
  "vbroadcastss " W5                                                         \
  ", %%zmm29\n\t"                                                            \
  "vfmadd231ps %%zmm24, %%zmm29, %%zmm20\n\t"                                \
  "vfmadd231ps %%zmm25, %%zmm29, %%zmm21\n\t"                                \
  "vfmadd231ps %%zmm26, %%zmm29, %%zmm22\n\t"                                \
  "vfmadd231ps %%zmm27, %%zmm29, %%zmm23\n\t"                                \
  ".endr\n\t" STEP_16K                                                       \
  "add $4096, %[at]\n\t"                                                     \
  "dec %[nblk]\n\t"                                                          \
  "jnz 3b\n"                                                                 \
  "4:\n\t"                                                                   \
  "vmovaps %%zmm0, (%[ct])\n\t"                                              \
  "vmovaps %%zmm1, 64(%[ct])\n\t"                                            \
  "vmovaps %%zmm2, 128(%[ct])\n\t"                                           \
  "vmovaps %%zmm3, 192(%[ct])\n\t"                                           \
  "vmovaps %%zmm4, (%[ct],%[lc],1)\n\t"                                      \
  "vmovaps %%zmm5, 64(%[ct],%[lc],1)\n\t"                                    \
  "vmovaps %%zmm6, 128(%[ct],%[lc],1)\n\t"                                   \
  "vmovaps %%zmm7, 192(%[ct],%[lc],1)\n\t"                                   \
  "vmovaps %%zmm8, (%[ct],%[lc],2)\n\t"                                      \
  "vmovaps %%zmm9, 64(%[ct],%[lc],2)\n\t"                                    \
  "vmovaps %%zmm10, 128(%[ct],%[lc],2)\n\t"                                  \
  "vmovaps %%zmm11, 192(%[ct],%[lc],2)\n\t"                                  \
  "vmovaps %%zmm12, (%[ct3])\n\t"                                            \
  "vmovaps %%zmm13, 64(%[ct3])\n\t"                                          \
  "vmovaps %%zmm14, 128(%[ct3])\n\t"                                         \
  "vmovaps %%zmm15, 192(%[ct3])\n\t"                                         \
  "vmovaps %%zmm16, (%[ct3],%[lc],1)\n\t"                                    \
  "vmovaps %%zmm17, 64(%[ct3],%[lc],1)\n\t"                                  \
  "vmovaps %%zmm18, 128(%[ct3],%[lc],1)\n\t"                                 \
  "vmovaps %%zmm19, 192(%[ct3],%[lc],1)\n\t"                                 \
  "vmovaps %%zmm20, (%[ct3],%[lc],2)\n\t"                                    \
  "vmovaps %%zmm21, 64(%[ct3],%[lc],2)\n\t"                                  \
  "vmovaps %%zmm22, 128(%[ct3],%[lc],2)\n\t"                                 \
  "vmovaps %%zmm23, 192(%[ct3],%[lc],2)\n\t"

template <bool kPacked>
BERTFIT_AVX512 void tile_6x4_asm(int64_t kc16, const float* w, int64_t ldw, const float* at, float* ct,
                                 int64_t ldct, bool init, const float* pf, int64_t npf) {
  const float* w0 = w;
  const float* w3 = w + 3 * ldw;  // unused when packed (ldw 0)
  const float* pf0 = pf;
  const float* pf3 = pf ? pf + 3 * ldw : nullptr;
  float* ct3 = ct + 3 * ldct;
  int64_t nblk = kc16 / 16;
  if (!pf) npf = 0;
#define BERTFIT_TILE_OPERANDS                                                                                   \
  : [w0] "+r"(w0), [w3] "+r"(w3), [at] "+r"(at), [nblk] "+r"(nblk), [npf] "+r"(npf), [pf0] "+r"(pf0),         \
    [pf3] "+r"(pf3)                                                                                            \
  : [s] "r"(ldw * 4), [ct] "r"(ct), [ct3] "r"(ct3), [lc] "r"(ldct * 4), [init] "r"(static_cast<int64_t>(init)) \
  : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",  \
    "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", \
    "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory", "cc"
  if constexpr (kPacked) {
    __asm__ volatile(BERTFIT_TILE_6X4_ASM("(\\u*24)(%[w0])", "(\\u*24+4)(%[w0])", "(\\u*24+8)(%[w0])",
                                          "(\\u*24+12)(%[w0])", "(\\u*24+16)(%[w0])", "(\\u*24+20)(%[w0])",
                                          "prefetcht1 (%[pf0])\n\t"
                                          "prefetcht1 64(%[pf0])\n\t"
                                          "prefetcht1 128(%[pf0])\n\t"
                                          "prefetcht1 192(%[pf0])\n\t"
                                          "prefetcht1 256(%[pf0])\n\t"
                                          "prefetcht1 320(%[pf0])\n\t"
                                          "add $384, %[pf0]\n\t",
                                          "add $384, %[w0]\n\t") BERTFIT_TILE_OPERANDS);
  } else {
    __asm__ volatile(BERTFIT_TILE_6X4_ASM("(\\u*4)(%[w0])", "(\\u*4)(%[w0],%[s],1)", "(\\u*4)(%[w0],%[s],2)",
                                          "(\\u*4)(%[w3])", "(\\u*4)(%[w3],%[s],1)", "(\\u*4)(%[w3],%[s],2)",
                                          "prefetcht1 (%[pf0])\n\t"
                                          "prefetcht1 (%[pf0],%[s],1)\n\t"
                                          "prefetcht1 (%[pf0],%[s],2)\n\t"
                                          "prefetcht1 (%[pf3])\n\t"
                                          "prefetcht1 (%[pf3],%[s],1)\n\t"
                                          "prefetcht1 (%[pf3],%[s],2)\n\t"
                                          "add $64, %[pf0]\n\t"
                                          "add $64, %[pf3]\n\t",
                                          "add $64, %[w0]\n\t"
                                          "add $64, %[w3]\n\t") BERTFIT_TILE_OPERANDS);
  }
#undef BERTFIT_TILE_OPERANDS
}
#undef BERTFIT_TILE_6X4_ASM

// The register tile: ct[r * ldct + 16 v + lane] (+)= sum_{k < kc} w[r * ldw + k] * at[k * kMP + 16 v + lane]
// for r < RN, v < MV; init starts the sums at 0 (the first K chunk), otherwise they continue from ct. While
// it runs, it prefetches into L2 pf_len floats of pf_rows rows at pf (the weights a later tile will read).
// (Every loop over r and v is unrolled so that the accumulators live in registers.)
template <int RN, int MV, bool kPacked>
BERTFIT_AVX512 void tile(int64_t kc, const float* w, int64_t ldw, const float* at, float* ct, int64_t ldct,
                         bool init, const float* pf, int64_t pf_rows, int64_t pf_len) {
  // Weight row r's k-th element: w[r * ldw + k], or w[k * kRN + r] packed (where every tile has kRN rows).
  constexpr int KS = kPacked ? static_cast<int>(kRN) : 1;
  const int64_t row_stride = kPacked ? 1 : ldw;
  if constexpr (RN == 6 && MV == 4) {
    // The full tile runs in assembly over the multiple of 16 k; the rest (kc % 16) below, continuing from ct.
    if (pf && pf_rows != 6) {  // the asm prefetches 6 rows: a shorter next tile is prefetched here at once
      for (int64_t r = 0; r < pf_rows; ++r)
        for (int64_t k = 0; k < pf_len; k += 16)
          _mm_prefetch(reinterpret_cast<const char*>(pf + r * ldw + k), _MM_HINT_T1);
      pf = nullptr;
    }
    const int64_t kc16 = kc / 16 * 16;
    tile_6x4_asm<kPacked>(kc16, w, kPacked ? 0 : ldw, at, ct, ldct, init, pf, (pf_len + 15) / 16);
    if (kc16 == kc) return;
    w += kc16 * KS;
    at += kc16 * kMP;
    kc -= kc16;
    init = false;
    pf = nullptr;
  }
  __m512 acc[RN][MV];
  const float* wr[RN];
#pragma GCC unroll 6
  for (int r = 0; r < RN; ++r) {
    wr[r] = w + r * row_stride;
#pragma GCC unroll 4
    for (int v = 0; v < MV; ++v)
      acc[r][v] = init ? _mm512_setzero_ps() : _mm512_load_ps(ct + r * ldct + 16 * v);
  }
  int64_t k = 0;
  for (; k + 16 <= kc; k += 16) {
    // One cache line per weight row per 16 k (packed: the 6 lines of the next 16 k): the chunk of the next
    // tile's rows arrives in L2 at the pace this tile consumes its own.
    if (k < pf_len)
      for (int64_t r = 0; r < pf_rows; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(pf + (kPacked ? k * kRN + r * 16 : r * ldw + k)),
                     _MM_HINT_T1);
#pragma GCC unroll 16
    for (int u = 0; u < 16; ++u) tile_step<RN, MV, KS>(acc, wr, at, k + u);
  }
  for (; k < kc; ++k) tile_step<RN, MV, KS>(acc, wr, at, k);
#pragma GCC unroll 6
  for (int r = 0; r < RN; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < MV; ++v) _mm512_store_ps(ct + r * ldct + 16 * v, acc[r][v]);
}

using TileFn = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, bool, const float*,
                        int64_t, int64_t);

template <int RN>
constexpr TileFn tile_row[kMV] = {&tile<RN, 1, false>, &tile<RN, 2, false>, &tile<RN, 3, false>,
                                  &tile<RN, 4, false>};
// kTiles[rn - 1][mv - 1]: the tile for rn weight rows (tails of a block) and mv vectors (tails of M).
const TileFn* const kTiles[kRN] = {tile_row<1>, tile_row<2>, tile_row<3>,
                                   tile_row<4>, tile_row<5>, tile_row<6>};
// kPackedTiles[mv - 1]: the packed layout's tiles, always kRN rows (zeros past N).
constexpr TileFn kPackedTiles[kMV] = {&tile<kRN, 1, true>, &tile<kRN, 2, true>, &tile<kRN, 3, true>,
                                      &tile<kRN, 4, true>};

struct Problem {
  int64_t M, N, K;
  const float* A;
  int64_t lda;
  const float* B;  // null when packed is given
  int64_t ldb;
  const float* packed;  // B in the packed layout (gemm_nt_small_packed), or null
  const float* bias;
  bool accumulate;
  float* C;
  int64_t ldc;
  Epilogue ep;  // ep.ld_aux resolved (never 0)
};

// Prefetch for writing (into L1/L2, the line owned) the nb columns from n0 of C's rows [r0, r1): block_store
// writes them next. Each such line is otherwise a write miss that block_store waits for: C (128 x 3072 floats
// for ffn_in at batch 1) does not stay in L2 while the weights stream through it. PREFETCHW exists on every
// CPU with AVX-512 (and a prefetch never faults).
inline void prefetchw_c_rows(const Problem& pr, int64_t r0, int64_t r1, int64_t n0, int64_t nb) {
  for (int64_t r = r0; r < r1; ++r) {
    const char* c = reinterpret_cast<const char*>(pr.C + r * pr.ldc + n0);
    for (int64_t x = 0; x < nb * 4; x += 64) __asm__ volatile("prefetchw %0" ::"m"(c[x]));
  }
}

// Weight rows of block b that the tiles multiply: its rows of B, or in the packed layout rounded up to whole
// 6-row tiles (the extra rows are zeros; their sums land in ct rows that block_store never writes out).
inline int64_t block_rows(const Problem& pr, int64_t b) {
  const int64_t nb = std::min(kNB, pr.N - b * kNB);
  return pr.packed ? (nb + kRN - 1) / kRN * kRN : nb;
}

// The first weight of the tile of rows [b kNB + t0, + 6) at K chunk k0 (a multiple of kKC): in B, or in the
// packed layout (nt_small_pack): block after block (kNB * K floats each but the last), in a block
// chunk after chunk (kKC k each but the last), in a chunk tile after tile, each tile [k][6 rows].
inline const float* weight_tile(const Problem& pr, int64_t b, int64_t k0, int64_t t0) {
  if (pr.packed) return pr.packed + b * kNB * pr.K + k0 * block_rows(pr, b) + t0 * std::min(kKC, pr.K - k0);
  return pr.B + (b * kNB + t0) * pr.ldb + k0;
}

// What a thread multiplies after the current block, whose tiles prefetch its first chunk: block b (-1: none)
// from k0, len k.
struct NextBlock {
  int64_t b = -1, k0 = 0, len = 0;
};

// Weight block b (rows [b kNB, + nb)) times activation rows [m0, m0 + mc) over k in [kb, ke), from the panels
// at (which hold those k: panel stride (ke - kb) x 64), into ct (ldct: the panels' padded width), starting
// the sums at 0 when kb == 0, continuing them otherwise. The tiles of the last chunk prefetch next's. When ke
// is K (block_store follows), the last chunk's tile calls also prefetch the block's C, a share each.
BERTFIT_AVX512 void block_product(const Problem& pr, int64_t m0, int64_t mc, const float* at, int64_t kb,
                                  int64_t ke, int64_t b, const NextBlock& next, float* ct, int64_t ldct) {
  const int64_t kw = ke - kb, n0 = b * kNB, nb = std::min(kNB, pr.N - n0), rows = block_rows(pr, b);
  const int64_t tiles_per_panel = (rows + kRN - 1) / kRN, calls = (mc + kMP - 1) / kMP * tiles_per_panel;
  for (int64_t k0 = kb; k0 < ke; k0 += kKC) {
    const int64_t kc = std::min(kKC, ke - k0);
    const bool store_follows = ke == pr.K && k0 + kc == ke;
    for (int64_t p = 0; p * kMP < mc; ++p) {
      const int64_t mv = (std::min(kMP, mc - p * kMP) + 15) / 16;
      for (int64_t t0 = 0; t0 < rows; t0 += kRN) {
        const int64_t rn = std::min(kRN, rows - t0);
        if (store_follows) {
          const int64_t call = p * tiles_per_panel + t0 / kRN;
          prefetchw_c_rows(pr, m0 + mc * call / calls, m0 + mc * (call + 1) / calls, n0, nb);
        }
        // Prefetch on the first panel only: the later panels read the same weights, by then in L1/L2.
        const float* pf = nullptr;
        int64_t pf_rows = 0, pf_len = 0;
        if (p == 0) {
          if (k0 + kc < ke) {  // this tile's rows, next chunk
            pf = weight_tile(pr, b, k0 + kc, t0);
            pf_rows = rn;
            pf_len = std::min(kKC, ke - k0 - kc);
          } else if (next.b >= 0 && t0 < block_rows(pr, next.b)) {  // the next block's tile at the same place
            pf = weight_tile(pr, next.b, next.k0, t0);
            pf_rows = std::min(kRN, block_rows(pr, next.b) - t0);
            pf_len = next.len;
          }
        }
        const TileFn fn = pr.packed ? kPackedTiles[mv - 1] : kTiles[rn - 1][mv - 1];
        fn(kc, weight_tile(pr, b, k0, t0), pr.ldb, at + p * kMP * kw + (k0 - kb) * kMP,
           ct + t0 * ldct + p * kMP, ldct, k0 == 0, pf, pf_rows, pf_len);
      }
    }
  }
}

// ct[n][m] (n < nb, m < mc) -> C[m0 + m][n0 + n] by 16 x 16 blocks, + bias, + C. ct rows nb..15 of the last
// block hold stale values (a block's rows in ct are a multiple of 16); they land in lanes the masked store
// leaves alone.
BERTFIT_AVX512 void block_store(const Problem& pr, int64_t m0, int64_t mc, int64_t n0, int64_t nb,
                                const float* ct, int64_t ldct) {
  for (int64_t nn = 0; nn < nb; nn += 16) {
    const __mmask16 nm = mask16(nb - nn);
    const __m512 bv = pr.bias ? _mm512_maskz_loadu_ps(nm, pr.bias + n0 + nn) : _mm512_setzero_ps();
    for (int64_t mm = 0; mm < mc; mm += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_load_ps(ct + (nn + i) * ldct + mm);
      transpose16(r);
      const int64_t rows = std::min<int64_t>(16, mc - mm);
      for (int64_t j = 0; j < rows; ++j) {
        float* c = pr.C + (m0 + mm + j) * pr.ldc + n0 + nn;
        __m512 v = r[j];
        if (pr.bias) v = _mm512_add_ps(v, bv);
        if (pr.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(nm, c));
        if (pr.ep.op == EpilogueOp::GELU)
          v = gelu_step512(v, nm, pr.ep.aux ? pr.ep.aux + (m0 + mm + j) * pr.ep.ld_aux + n0 + nn : nullptr);
        _mm512_mask_storeu_ps(c, nm, v);
      }
    }
  }
}

// Grow-only scratch, one per thread (the pool's threads persist, so these are allocated once per run).
float* scratch(AlignedBuffer<float>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

BERTFIT_AVX512 void gemm_nt_small_avx512(const Problem& pr) {
  const int64_t M = pr.M, N = pr.N, K = pr.K;
  const int64_t mc_max = std::min(M, kMC);
  const int64_t ldct = (mc_max + kMP - 1) / kMP * kMP;  // panels' padded width
  const int64_t nblocks = (N + kNB - 1) / kNB;
  const int64_t work = (M + 15) / 16 * 16 * N * K;
  const bool parallel = work >= kParallelMinFma && !in_parallel();
  const int64_t T = parallel ? num_threads() : 1;
  // The K range packed at once (ko): all of K when the panels fit the budget; otherwise equal chunks (a
  // multiple of kKC), and each thread keeps the partial sums of all its blocks in ct between chunks, which
  // continues every FMA chain exactly (the same bits as one chunk) -- unless that would take too much memory.
  int64_t ko = K;
  if (ldct * K > kPanelBudget) {
    const int64_t nko = (ldct * K + kPanelBudget - 1) / kPanelBudget;
    ko = ((K + nko - 1) / nko + kKC - 1) / kKC * kKC;
    if ((nblocks + T - 1) / T * kNB * ldct > kPartialSumsMax) ko = K;
  }
  const bool split = ko < K;

  parallel_region(
      [&](const Team& team) {
        const int64_t nt = team.size(), t = team.thread();
        // A contiguous range of blocks per thread (the same split every call): each thread prefetches its own
        // next block.
        const int64_t b_begin = nblocks * t / nt, b_end = nblocks * (t + 1) / nt;
        // Each thread packs all the panels into its own buffer: no barrier between packing and multiplying
        // (nor before repacking), and every panel is written in the L2 of the core that reads it. Sharing the
        // packing instead (each thread half, a barrier, then each reading the other's half from the other
        // core) was 3-7% slower over BERT-base's 48 GEMMs at M = 64-192, 2 threads, AMD Zen 5: the packing is
        // ~1% of a product, the waits and the cross-core reads were more (in whole batch-1 forwards: 1.4%
        // on average over four runs, about the host's noise; docs/benchmarks.md).
        static thread_local AlignedBuffer<float> at_buf;
        float* at = scratch(at_buf, static_cast<size_t>(ldct * ko));
        static thread_local AlignedBuffer<float> ct_buf;
        float* ct = scratch(
            ct_buf, static_cast<size_t>((split ? std::max<int64_t>(b_end - b_begin, 1) : 1) * kNB * ldct));
        for (int64_t m0 = 0; m0 < M; m0 += kMC) {
          const int64_t mc = std::min(kMC, M - m0);
          for (int64_t kb = 0; kb < K; kb += ko) {
            const int64_t ke = std::min(K, kb + ko), kw = ke - kb;
            const int64_t groups = (mc + 15) / 16, kgroups = (kw + 15) / 16;
            for (int64_t task = 0; task < groups * kgroups; ++task) {
              const int64_t g = task / kgroups, kg = task % kgroups;
              const int64_t m = g * 16;
              pack_16x16(pr.A + (m0 + m) * pr.lda, pr.lda, std::min<int64_t>(16, mc - m), kb + kg * 16,
                         std::min<int64_t>(16, kw - kg * 16),
                         at + (m / kMP) * kMP * kw + kg * 16 * kMP + m % kMP);
            }
            for (int64_t b = b_begin; b < b_end; ++b) {
              const int64_t n0 = b * kNB, nb = std::min(kNB, N - n0);
              float* ctb = split ? ct + (b - b_begin) * kNB * ldct : ct;
              // Prefetch target: the next block at this K range, else the first block at the next K range.
              NextBlock next;
              if (b + 1 < b_end)
                next = {b + 1, kb, std::min(kKC, kw)};
              else if (ke < K)
                next = {b_begin, ke, std::min(kKC, K - ke)};
              block_product(pr, m0, mc, at, kb, ke, b, next, ctb, ldct);
              if (ke == K) block_store(pr, m0, mc, n0, nb, ctb, ldct);
            }
          }
        }
      },
      parallel);
}

}  // namespace

bool gemm_nt_small_available() {
  return use_avx512();
}

namespace {

// Without AVX-512: gemm_bias, whose epilogue is this kernel's: (acc + bias) (+ C), then the fused step, the
// same bits.
void gemm_nt_small_fallback(const Problem& pr) {
  gemm_bias(false, true, pr.M, pr.N, pr.K, 1.0f, pr.A, pr.lda, pr.B, pr.ldb, pr.bias,
            pr.accumulate ? 1.0f : 0.0f, pr.C, pr.ldc, pr.ep);
}

}  // namespace

namespace {

void run(const Problem& pr) {
  const int64_t M = pr.M, N = pr.N, K = pr.K, ldc = pr.ldc;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // an empty sum: C = bias (+ C), then the fused step
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const float v = pr.bias ? pr.bias[n] : 0.0f;
        pr.C[m * ldc + n] = pr.accumulate ? pr.C[m * ldc + n] + v : v;
      }
    gemm_epilogue_pass(M, N, pr.C, ldc, pr.ep);
    return;
  }
  gemm_nt_small_avx512(pr);
}

}  // namespace

void gemm_nt_small(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                   const float* bias, bool accumulate, float* C, int64_t ldc, const Epilogue& ep) {
  const Problem pr{M, N, K, A, lda, B, ldb, nullptr, bias, accumulate, C, ldc, with_aux_stride(ep, ldc)};
  if (gemm_nt_small_available() || M <= 0 || N <= 0 || K <= 0)
    run(pr);
  else
    gemm_nt_small_fallback(pr);
}

int64_t nt_small_packed_floats(int64_t N, int64_t K) {
  if (N <= 0 || K <= 0) return 0;
  const int64_t last = N - (N - 1) / kNB * kNB;  // rows of the last block
  return (N - last + (last + kRN - 1) / kRN * kRN) * K;
}

namespace {

// Calls f(dst tile, first row, rows, k0, kc) for every tile of the packed layout (weight_tile()'s order).
template <class F>
void for_each_packed_tile(int64_t N, int64_t K, const float* packed, F&& f) {
  Problem pr{};
  pr.N = N;
  pr.K = K;
  pr.packed = packed;
  parallel_for(0, (N + kNB - 1) / kNB, N * K >= kParallelMinWork, [&](int64_t b) {
    for (int64_t k0 = 0; k0 < K; k0 += kKC)
      for (int64_t t0 = 0; t0 < block_rows(pr, b); t0 += kRN)
        f(const_cast<float*>(weight_tile(pr, b, k0, t0)), b * kNB + t0, std::min(kRN, N - b * kNB - t0), k0,
          std::min(kKC, K - k0));
  });
}

}  // namespace

// Each tile: tile[k * 6 + r] = B[row r of the tile, k0 + k], the padding rows 0.
void nt_small_pack(int64_t N, int64_t K, const float* B, int64_t ldb, float* packed) {
  if (N <= 0 || K <= 0) return;
  for_each_packed_tile(N, K, packed, [&](float* tile, int64_t n, int64_t rn, int64_t k0, int64_t kc) {
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = 0; r < kRN; ++r) tile[k * kRN + r] = r < rn ? B[(n + r) * ldb + k0 + k] : 0.0f;
  });
}

void nt_small_unpack(int64_t N, int64_t K, const float* packed, float* B, int64_t ldb) {
  if (N <= 0 || K <= 0) return;
  for_each_packed_tile(N, K, packed, [&](const float* tile, int64_t n, int64_t rn, int64_t k0, int64_t kc) {
    for (int64_t r = 0; r < rn; ++r)
      for (int64_t k = 0; k < kc; ++k) B[(n + r) * ldb + k0 + k] = tile[k * kRN + r];
  });
}

void gemm_nt_small_packed(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* packed,
                          const float* bias, bool accumulate, float* C, int64_t ldc, const Epilogue& ep) {
  if (!gemm_nt_small_available() && M > 0 && N > 0 && K > 0) {
    std::vector<float> unpacked(static_cast<size_t>(N * K));
    nt_small_unpack(N, K, packed, unpacked.data(), K);
    gemm_nt_small(M, N, K, A, lda, unpacked.data(), K, bias, accumulate, C, ldc, ep);
    return;
  }
  run(Problem{M, N, K, A, lda, nullptr, 0, packed, bias, accumulate, C, ldc, with_aux_stride(ep, ldc)});
}

}  // namespace bertfit

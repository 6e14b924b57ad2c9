#include "kernels/linear.h"

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/gemm_nt_small.h"
#include "kernels/reduce.h"

namespace bertfit {

namespace {

// Whether linear_forward uses gemm_nt_small (our AVX-512 kernel, which never copies the weights) instead of
// gemm() (a packed GEMM: it packs each weight block before multiplying). Both compute the same FMA chains
// (backend/cpu/gemm.h), so this choice changes the speed only, never a bit of the result
// (Determinism.InferenceDoesNotDependOnTheBatch). The rule was decided against OpenBLAS, on an Intel Xeon
// (SkylakeX kernel), by measurement: whole forward passes
// of BERT-base (12 layers, hidden 768, weights 2.25-9 MiB per matrix) and of a 4-layer 256-hidden model
// (0.25-1 MiB), inference at sequence 128, 2 threads, the two paths alternating pass by pass in one process
// (forward time ratio gemm_nt_small / OpenBLAS, pairs where gemm_nt_small was faster):
//   rows M = 128 (batch 1): base 0.728 (24/24), small 0.886 (58/60)
//            256 (batch 2): base 0.882 (12/12), small 0.978 (43/60)
//            384 (batch 3): base 0.964 (7/8),   small 1.041 (5/60)
//            512 (batch 4): base 0.969 (6/6),   small 1.055 (5/60)
//            768 (batch 6): base 1.016 (3/6)
//           1024 (batch 8): base 1.032 (1/6)
// (alone, the MLM decoder's 30522 x 768 weights: 0.58 at M = 77, 0.91 at 256, 0.96 at 512). The kernel wins
// while the weights stream from memory (larger than the 2 MiB L2) and the M rows are too few to repay
// OpenBLAS's packing; with more rows, or weights that stay in the caches, OpenBLAS's packed kernel is faster.
// Rechecked against gemm_packed on an AMD EPYC (Zen 5), bertfit_gemm_bench, 2 threads, 48 BERT-base GEMMs
// (2026-12-03, docs/benchmarks.md), gemm_nt_small / gemm_packed: M = 256 0.91 (warm) 0.94 (cold); M = 512
// 0.93 / 1.06; M = 1024 0.99 / 0.95 -- within that machine's noise above 256 rows, so the rule stayed.
// Since gemm_packed reads the activations in place instead of packing them (2026-12-06), it wins from fewer
// rows. Same machine and bench, 48 GEMMs, medians of 21 alternating repeats, gemm_nt_small / gemm_packed
// (warm, cold weights): BERT-base M = 128 0.91 / 0.91, 160 0.96 / 0.94, 192 0.98 / 0.98, 224 1.00 / 1.01,
// 256 1.01-1.04 / 1.01-1.07, 384 1.08 / 1.09, 512 1.10 / 1.09; the mini model (hidden 256, weights <= 1 MiB)
// M = 64 0.87 / 0.75, 128 0.98 / 0.90, 192 1.05 / 1.02, 256 1.11 / 1.01, 384 1.17 / 1.09, 512 1.15 / 1.23.
// So gemm_nt_small up to 192 rows for weights larger than 2 MiB, 160 for smaller ones. Other CPUs (no
// AVX-512) use gemm().
bool use_gemm_nt_small(int64_t rows, int64_t in, int64_t out) {
  if (!gemm_nt_small_available()) return false;
  const bool big_weights = in * out * static_cast<int64_t>(sizeof(float)) > (int64_t{2} << 20);
  return rows <= (big_weights ? 192 : 160);
}

}  // namespace

bool linear_packs_pay(int64_t rows, int64_t in, int64_t out) {
  return use_gemm_nt_small(rows, in, out);
}

void linear_forward(float* out, const float* inp, const float* W, const float* b, int64_t N, int64_t IC,
                    int64_t OC, int64_t ld_inp, int64_t ld_out, MatmulPrecision precision,
                    const Epilogue& ep) {
  if (!ld_inp) ld_inp = IC;
  if (!ld_out) ld_out = OC;
  if (precision == MatmulPrecision::BF16) {
    gemm_bf16(false, true, N, OC, IC, 1.0f, inp, ld_inp, W, IC, b, 0.0f, out, ld_out, ep);
    return;
  }
  if (use_gemm_nt_small(N, IC, OC)) {  // the bias (and ep's step) applied as the outputs are written
    gemm_nt_small(N, OC, IC, inp, ld_inp, W, IC, b, false, out, ld_out, ep);
    return;
  }
  // The bias is added in the GEMM's epilogue, while each tile is in registers (acc + b: gemm_nt_small's
  // bits), then ep's step.
  gemm_bias(false, true, N, OC, IC, 1.0f, inp, ld_inp, W, IC, b, 0.0f, out, ld_out, ep);
}

void linear_backward(float* dinp, float* dW, float* db, const float* dout, const float* inp, const float* W,
                     int64_t N, int64_t IC, int64_t OC, bool accumulate_dinp, int64_t ld_inp, int64_t ld_dout,
                     int64_t ld_dinp, MatmulPrecision precision) {
  if (!ld_inp) ld_inp = IC;
  if (!ld_dout) ld_dout = OC;
  if (!ld_dinp) ld_dinp = IC;
  if (precision == MatmulPrecision::BF16) {  // the same two products with bf16 operands; dW stays float
    if (dW) gemm_bf16(true, false, OC, IC, N, 1.0f, dout, ld_dout, inp, ld_inp, nullptr, 1.0f, dW, IC);
    if (db) column_sum_accumulate(db, dout, N, OC, ld_dout);
    if (dinp)
      gemm_bf16(false, false, N, IC, OC, 1.0f, dout, ld_dout, W, IC, nullptr, accumulate_dinp ? 1.0f : 0.0f,
                dinp, ld_dinp);
    return;
  }
  if (dW) gemm(true, false, OC, IC, N, 1.0f, dout, ld_dout, inp, ld_inp, 1.0f, dW, IC);
  if (db) column_sum_accumulate(db, dout, N, OC, ld_dout);
  if (dinp)  // last: it may overwrite inp
    gemm(false, false, N, IC, OC, 1.0f, dout, ld_dout, W, IC, accumulate_dinp ? 1.0f : 0.0f, dinp, ld_dinp);
}

}  // namespace bertfit

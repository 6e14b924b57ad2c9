#include "kernels/linear.h"
#include "core/threading.h"

#include "backend/cpu/gemm.h"
#include "kernels/reduce.h"

namespace bertfit {

void linear_forward(float* out, const float* inp, const float* W, const float* b, int64_t N, int64_t IC,
                    int64_t OC, int64_t ld_inp, int64_t ld_out) {
  if (!ld_inp) ld_inp = IC;
  if (!ld_out) ld_out = OC;
  if (b) {
    // Bias first, then GEMM with beta = 1: one pass over out instead of two.
#pragma omp parallel for schedule(static) if (N * OC >= kParallelMinWork)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < OC; ++o) out[n * ld_out + o] = b[o];
  }
  gemm(false, true, N, OC, IC, 1.0f, inp, ld_inp, W, IC, b ? 1.0f : 0.0f, out, ld_out);
}

void linear_backward(float* dinp, float* dW, float* db, const float* dout, const float* inp, const float* W,
                     int64_t N, int64_t IC, int64_t OC, bool accumulate_dinp, int64_t ld_inp, int64_t ld_dout,
                     int64_t ld_dinp) {
  if (!ld_inp) ld_inp = IC;
  if (!ld_dout) ld_dout = OC;
  if (!ld_dinp) ld_dinp = IC;
  if (dW) gemm(true, false, OC, IC, N, 1.0f, dout, ld_dout, inp, ld_inp, 1.0f, dW, IC);
  if (db) column_sum_accumulate(db, dout, N, OC, ld_dout);
  if (dinp)  // last: it may overwrite inp
    gemm(false, false, N, IC, OC, 1.0f, dout, ld_dout, W, IC, accumulate_dinp ? 1.0f : 0.0f, dinp, ld_dinp);
}

}  // namespace bertfit

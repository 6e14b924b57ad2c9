// LayerNorm over the last dimension, eps from config.json (1e-12 BERT, 1e-5 RoBERTa; never hard-coded).
// The kernels are AVX2-vectorised per row; the *_reference versions are the plain loops they are tested
// against.
#pragma once

#include <cstdint>

namespace bertfit {

// out[N,C] = (inp - mean) * rstd * w + b; saves mean[N], rstd[N] for backward. Biased variance, as torch.
// out may alias inp.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t N, int64_t C, float eps);
// The end of a post-LN sub-layer in one pass over the rows: sum = residual + dropout(x), out =
// LayerNorm(sum), with mean / rstd saved as layernorm_forward saves them. The same bits as
// dropout_rows_residual_forward (kernels/dropout.h; rows and key as there, p == 0 the identity) followed by
// layernorm_forward on sum, one pass and one parallel region fewer (each row is normalised while it is in
// L1). sum is kept for the backward; out may alias x or residual, not sum.
void dropout_add_layernorm_forward(float* out, float* sum, float* mean, float* rstd, const float* x,
                                   const float* residual, int64_t N, int64_t C, const int32_t* rows, float p,
                                   uint64_t key, const float* w, const float* b, float eps);
// dinp = (write) gradient w.r.t. inp; dw, db += (accumulate). dinp may alias dout.
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int64_t N, int64_t C);

void layernorm_forward_reference(float* out, float* mean, float* rstd, const float* inp, const float* w,
                                 const float* b, int64_t N, int64_t C, float eps);
void layernorm_backward_reference(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                                  const float* w, const float* mean, const float* rstd, int64_t N, int64_t C);

}  // namespace bertfit

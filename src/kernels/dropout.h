// Dropout with masks from a counter-based hash (core/rng.h): element i is kept iff
// counter_uniform(key, i) >= p, and kept values are scaled by 1/(1-p) (inverted dropout, as torch).
// The mask is a pure function of (key, i), so backward regenerates it instead of storing it, and the result
// is the same for any thread count. p == 0 is the identity (evaluation, or dropout disabled).
#pragma once

#include <cstdint>

namespace bertfit {

// out = dropout(inp). out may alias inp.
void dropout_forward(float* out, const float* inp, int64_t n, float p, uint64_t key);
// dinp = dropout'(dout) with the same mask. dinp may alias dout.
void dropout_backward(float* dinp, const float* dout, int64_t n, float p, uint64_t key);

// The sub-layer output of a post-LN block before its LayerNorm: out = residual + dropout(x).
// out may alias residual or x. The model's forward now runs this with the LayerNorm in one pass
// (kernels/layernorm.h, dropout_add_layernorm_forward); the two-pass form stays as what that is tested
// against, bit for bit.
void dropout_residual_forward(float* out, const float* x, const float* residual, int64_t n, float p,
                              uint64_t key);

// Dropout on n rows of `width` floats that are rows rows[i] of a larger layout: row i's mask is that of
// elements rows[i] * width + j (the bits the call on the whole layout gives those rows). out = (residual ?
// residual : 0) + dropout(x), row by row; rows null: rows 0 .. n-1 (dropout_forward or
// dropout_residual_forward on n * width elements). out may alias x or residual. The backward uses it without
// a residual (the masks of the forward's rows).
void dropout_rows_residual_forward(float* out, const float* x, const float* residual, int64_t n,
                                   int64_t width, const int32_t* rows, float p, uint64_t key);

// The kernel under all of the above and the attention-probability dropout: for i < n,
//   out[i] = (residual ? residual[i] : 0) + (counter_uniform(key, first + i) >= p ? in[i] / (1 - p) : 0)
// Serial (callers parallelise over spans); p must be in (0, 1). out may alias in or residual.
void dropout_span(float* out, const float* in, const float* residual, int64_t n, float p, uint64_t key,
                  uint64_t first);
// The plain counter_uniform loop: the oracle of dropout_span (bitwise equal on every CPU path).
void dropout_span_reference(float* out, const float* in, const float* residual, int64_t n, float p,
                            uint64_t key, uint64_t first);

}  // namespace bertfit

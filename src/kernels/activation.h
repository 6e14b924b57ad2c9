// Elementwise activations: exact erf GELU (config hidden_act "gelu", as BERT and RoBERTa), tanh (pooler,
// heads). The GELU kernels are AVX2-vectorised (core/vec_math.h: normal CDF to ~1.5e-7 relative); the
// *_reference versions are the plain std::erf / std::exp loops they are tested against
// (tests/kernels/fast_kernels_test.cpp).
#pragma once

#include <cstdint>

namespace bertfit {

// out = x * 0.5 * (1 + erf(x / sqrt(2))) = x Phi(x). out may alias inp.
void gelu_forward(float* out, const float* inp, int64_t n);
// dinp = dout * gelu'(inp), gelu'(x) = Phi(x) + x * phi(x). dinp may alias dout.
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n);

// The backward in two halves, for a caller that recomputes the forward anyway (the model does, instead of
// storing the GELU output): out = gelu(inp) and deriv = gelu'(inp) in one pass (the normal CDF is computed
// once for both; deriv may alias inp), then dinp = dout * deriv (dinp may alias dout). Bit for bit what
// gelu_forward and gelu_backward give.
void gelu_forward_and_derivative(float* out, float* deriv, const float* inp, int64_t n);
void gelu_backward_from_derivative(float* dinp, const float* deriv, const float* dout, int64_t n);

void gelu_forward_reference(float* out, const float* inp, int64_t n);
void gelu_backward_reference(float* dinp, const float* inp, const float* dout, int64_t n);

// out = tanh(inp). out may alias inp.
void tanh_forward(float* out, const float* inp, int64_t n);
// dinp = dout * (1 - out^2), from the forward OUTPUT. dinp may alias dout.
void tanh_backward(float* dinp, const float* out, const float* dout, int64_t n);

}  // namespace bertfit

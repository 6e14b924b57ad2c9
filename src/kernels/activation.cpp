#include "kernels/activation.h"
#include "core/threading.h"

#include <cmath>

#include "core/cpu_features.h"
#include "kernels/vec_math.h"
#include "kernels/vec_math512.h"

namespace bertfit {

namespace {
constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;
// Elements per parallel chunk: large enough to amortise the fork, a multiple of 8 so only the last chunk has
// a scalar tail. The chunking does not change any value (every element is computed independently).
constexpr int64_t kChunk = 16384;

// AVX-512 bodies: elements [lo, returned index) 16 at a time; the caller's AVX2 loop and scalar tail finish
// the span. Same expressions as the AVX2 loops below, so the same bits.
BERTFIT_AVX512 int64_t gelu_forward_avx512(float* out, const float* inp, int64_t lo, int64_t hi) {
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    const __m512 x = _mm512_loadu_ps(inp + i);
    _mm512_storeu_ps(out + i, _mm512_mul_ps(x, vec::normal_cdf_ps512(x)));
  }
  return i;
}

BERTFIT_AVX512 int64_t gelu_backward_avx512(float* dinp, const float* inp, const float* dout, int64_t lo,
                                            int64_t hi) {
  const __m512 neg_half = _mm512_set1_ps(-0.5f), c_pdf = _mm512_set1_ps(kInvSqrt2Pi);
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    const __m512 x = _mm512_loadu_ps(inp + i);
    const __m512 pdf = _mm512_mul_ps(c_pdf, vec::exp_ps512(_mm512_mul_ps(_mm512_mul_ps(neg_half, x), x)));
    const __m512 d = _mm512_fmadd_ps(x, pdf, vec::normal_cdf_ps512(x));
    _mm512_storeu_ps(dinp + i, _mm512_mul_ps(_mm512_loadu_ps(dout + i), d));
  }
  return i;
}

BERTFIT_AVX512 int64_t gelu_forward_and_derivative_avx512(float* out, float* deriv, const float* inp,
                                                          int64_t lo, int64_t hi) {
  const __m512 neg_half = _mm512_set1_ps(-0.5f), c_pdf = _mm512_set1_ps(kInvSqrt2Pi);
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    const __m512 x = _mm512_loadu_ps(inp + i);
    const __m512 cdf = vec::normal_cdf_ps512(x);
    const __m512 pdf = _mm512_mul_ps(c_pdf, vec::exp_ps512(_mm512_mul_ps(_mm512_mul_ps(neg_half, x), x)));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(x, cdf));
    _mm512_storeu_ps(deriv + i, _mm512_fmadd_ps(x, pdf, cdf));
  }
  return i;
}
}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  const bool wide = use_avx512();
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t lo = c * kChunk, hi = lo + kChunk < n ? lo + kChunk : n;
    int64_t i = wide ? gelu_forward_avx512(out, inp, lo, hi) : lo;
    for (; i + 8 <= hi; i += 8) {
      const __m256 x = _mm256_loadu_ps(inp + i);
      _mm256_storeu_ps(out + i, _mm256_mul_ps(x, vec::normal_cdf_ps(x)));
    }
    for (; i < hi; ++i) out[i] = inp[i] * vec::normal_cdf_scalar(inp[i]);
  }
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  const __m256 neg_half = _mm256_set1_ps(-0.5f), c_pdf = _mm256_set1_ps(kInvSqrt2Pi);
  const bool wide = use_avx512();
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t lo = c * kChunk, hi = lo + kChunk < n ? lo + kChunk : n;
    int64_t i = wide ? gelu_backward_avx512(dinp, inp, dout, lo, hi) : lo;
    for (; i + 8 <= hi; i += 8) {
      const __m256 x = _mm256_loadu_ps(inp + i);
      const __m256 pdf = _mm256_mul_ps(c_pdf, vec::exp_ps(_mm256_mul_ps(_mm256_mul_ps(neg_half, x), x)));
      const __m256 d = _mm256_fmadd_ps(x, pdf, vec::normal_cdf_ps(x));
      _mm256_storeu_ps(dinp + i, _mm256_mul_ps(_mm256_loadu_ps(dout + i), d));
    }
    for (; i < hi; ++i) {
      const float x = inp[i];
      const float pdf = kInvSqrt2Pi * vec::exp_scalar(-0.5f * x * x);
      dinp[i] = dout[i] * std::fma(x, pdf, vec::normal_cdf_scalar(x));
    }
  }
}

void gelu_forward_and_derivative(float* out, float* deriv, const float* inp, int64_t n) {
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  const __m256 neg_half = _mm256_set1_ps(-0.5f), c_pdf = _mm256_set1_ps(kInvSqrt2Pi);
  const bool wide = use_avx512();
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t lo = c * kChunk, hi = lo + kChunk < n ? lo + kChunk : n;
    int64_t i = wide ? gelu_forward_and_derivative_avx512(out, deriv, inp, lo, hi) : lo;
    for (; i + 8 <= hi; i += 8) {
      const __m256 x = _mm256_loadu_ps(inp + i);
      const __m256 cdf = vec::normal_cdf_ps(x);
      const __m256 pdf = _mm256_mul_ps(c_pdf, vec::exp_ps(_mm256_mul_ps(_mm256_mul_ps(neg_half, x), x)));
      _mm256_storeu_ps(out + i, _mm256_mul_ps(x, cdf));
      _mm256_storeu_ps(deriv + i, _mm256_fmadd_ps(x, pdf, cdf));
    }
    for (; i < hi; ++i) {
      const float x = inp[i];
      const float cdf = vec::normal_cdf_scalar(x);
      const float pdf = kInvSqrt2Pi * vec::exp_scalar(-0.5f * x * x);
      out[i] = x * cdf;
      deriv[i] = std::fma(x, pdf, cdf);
    }
  }
}

void gelu_backward_from_derivative(float* dinp, const float* deriv, const float* dout, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) dinp[i] = dout[i] * deriv[i];
}

void gelu_forward_reference(float* out, const float* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    out[i] = 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
  }
}

void gelu_backward_reference(float* dinp, const float* inp, const float* dout, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float cdf = 0.5f * (1.0f + std::erf(x * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * x * x);
    dinp[i] = dout[i] * (cdf + x * pdf);
  }
}

void tanh_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) out[i] = std::tanh(inp[i]);
}

void tanh_backward(float* dinp, const float* out, const float* dout, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

}  // namespace bertfit

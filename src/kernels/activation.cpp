#include "kernels/activation.h"
#include "core/threading.h"

#include <algorithm>
#include <cmath>

#include "core/cpu_features.h"
#include "core/vec_math.h"
#include "core/vec_math512.h"

namespace bertfit {

namespace {
using vec::kInvSqrt2;
using vec::kInvSqrt2Pi;
// Elements per parallel chunk: large enough to amortise the fork, a multiple of 16 so only the last chunk has
// a scalar tail. The chunking does not change any value (every element is computed independently).
constexpr int64_t kChunk = 16384;

// body(lo, hi) over [0, n) in chunks of kChunk, in parallel when there is more than one.
template <class Body>
void for_each_chunk(int64_t n, const Body& body) {
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  parallel_for(0, nchunks, nchunks > 1,
               [&](int64_t c) { body(c * kChunk, std::min(n, c * kChunk + kChunk)); });
}

// Each GELU kernel handles a span in three widths computing the same expressions, so the same bits: AVX-512
// (16 at a time, when use_avx512()), AVX2 (8 at a time), then scalar for the tail. The *_avx512 bodies return
// where they stopped.
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
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    const __m512 x = _mm512_loadu_ps(inp + i);
    const __m512 d = vec::gelu_derivative_ps512(x, vec::normal_cdf_ps512(x));
    _mm512_storeu_ps(dinp + i, _mm512_mul_ps(_mm512_loadu_ps(dout + i), d));
  }
  return i;
}

BERTFIT_AVX512 int64_t gelu_forward_and_derivative_avx512(float* out, float* deriv, const float* inp,
                                                          int64_t lo, int64_t hi) {
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    const __m512 x = _mm512_loadu_ps(inp + i);
    const __m512 cdf = vec::normal_cdf_ps512(x);
    _mm512_storeu_ps(out + i, _mm512_mul_ps(x, cdf));
    _mm512_storeu_ps(deriv + i, vec::gelu_derivative_ps512(x, cdf));
  }
  return i;
}
}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
  const bool wide = use_avx512();
  for_each_chunk(n, [&](int64_t lo, int64_t hi) {
    int64_t i = wide ? gelu_forward_avx512(out, inp, lo, hi) : lo;
    for (; i + 8 <= hi; i += 8) {
      const __m256 x = _mm256_loadu_ps(inp + i);
      _mm256_storeu_ps(out + i, _mm256_mul_ps(x, vec::normal_cdf_ps(x)));
    }
    for (; i < hi; ++i) out[i] = inp[i] * vec::normal_cdf_scalar(inp[i]);
  });
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
  const bool wide = use_avx512();
  for_each_chunk(n, [&](int64_t lo, int64_t hi) {
    int64_t i = wide ? gelu_backward_avx512(dinp, inp, dout, lo, hi) : lo;
    for (; i + 8 <= hi; i += 8) {
      const __m256 x = _mm256_loadu_ps(inp + i);
      const __m256 d = vec::gelu_derivative_ps(x, vec::normal_cdf_ps(x));
      _mm256_storeu_ps(dinp + i, _mm256_mul_ps(_mm256_loadu_ps(dout + i), d));
    }
    for (; i < hi; ++i)
      dinp[i] = dout[i] * vec::gelu_derivative_scalar(inp[i], vec::normal_cdf_scalar(inp[i]));
  });
}

void gelu_forward_and_derivative(float* out, float* deriv, const float* inp, int64_t n) {
  const bool wide = use_avx512();
  for_each_chunk(n, [&](int64_t lo, int64_t hi) {
    int64_t i = wide ? gelu_forward_and_derivative_avx512(out, deriv, inp, lo, hi) : lo;
    for (; i + 8 <= hi; i += 8) {
      const __m256 x = _mm256_loadu_ps(inp + i);
      const __m256 cdf = vec::normal_cdf_ps(x);
      _mm256_storeu_ps(out + i, _mm256_mul_ps(x, cdf));
      _mm256_storeu_ps(deriv + i, vec::gelu_derivative_ps(x, cdf));
    }
    for (; i < hi; ++i) {
      const float x = inp[i], cdf = vec::normal_cdf_scalar(x);
      out[i] = x * cdf;
      deriv[i] = vec::gelu_derivative_scalar(x, cdf);
    }
  });
}

void gelu_backward_from_derivative(float* dinp, const float* deriv, const float* dout, int64_t n) {
  parallel_for(0, n, n >= kParallelMinWork, [&](int64_t i) { dinp[i] = dout[i] * deriv[i]; });
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
  parallel_for(0, n, n >= kParallelMinWork, [&](int64_t i) { out[i] = std::tanh(inp[i]); });
}

void tanh_backward(float* dinp, const float* out, const float* dout, int64_t n) {
  parallel_for(0, n, n >= kParallelMinWork, [&](int64_t i) { dinp[i] = dout[i] * (1.0f - out[i] * out[i]); });
}

}  // namespace bertfit

// Dropout from the counter-based hash of core/rng.h. The mask bits are integer maths, identical on every
// path: an AVX-512 (F+DQ+VL) kernel hashes 8 indices per instruction with native 64-bit multiplies when the
// CPU has them (checked at run time; the build baseline is AVX2, which lacks a 64-bit multiply), else the
// scalar loop. dropout_span_reference is the plain counter_uniform loop both are tested against, bit for bit.
#include "kernels/dropout.h"
#include "core/cpu_features.h"
#include "core/threading.h"

#include "core/simd.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"

namespace bertfit {

namespace {

// keep(i) <=> counter_uniform(key, i) >= p <=> (hash >> 40) * 2^-24 >= p <=> (hash >> 40) >= ceil(p * 2^24):
// the 24-bit integer converts to float exactly and p * 2^24 is exact in double, so the integer test is the
// same predicate as the float one.
uint64_t keep_threshold(float p) {
  return static_cast<uint64_t>(std::ceil(static_cast<double>(p) * 16777216.0));
}

void dropout_span_scalar(float* out, const float* in, const float* residual, int64_t n, float p, uint64_t key,
                         uint64_t first) {
  const uint64_t th = keep_threshold(p);
  const float scale = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t h = splitmix64(key + (first + static_cast<uint64_t>(i)) * 0x9E3779B97F4A7C15ull);
    const float x = (h >> 40) >= th ? in[i] * scale : 0.0f;
    out[i] = residual ? residual[i] + x : x;
  }
}

__attribute__((target("avx512f,avx512dq,avx512vl"))) inline __m512i splitmix64_x8(__m512i x) {
  x = _mm512_add_epi64(x, _mm512_set1_epi64(static_cast<long long>(0x9E3779B97F4A7C15ull)));
  x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 30)),
                         _mm512_set1_epi64(static_cast<long long>(0xBF58476D1CE4E5B9ull)));
  x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 27)),
                         _mm512_set1_epi64(static_cast<long long>(0x94D049BB133111EBull)));
  return _mm512_xor_si512(x, _mm512_srli_epi64(x, 31));
}

__attribute__((target("avx512f,avx512dq,avx512vl"))) void dropout_span_avx512(float* out, const float* in,
                                                                              const float* residual,
                                                                              int64_t n, float p,
                                                                              uint64_t key, uint64_t first) {
  const __m512i vth = _mm512_set1_epi64(static_cast<long long>(keep_threshold(p)));
  // SplitMix64 states key + j * golden for the 8 indices j of a step, advanced by 8 * golden (no multiply).
  const uint64_t golden = 0x9E3779B97F4A7C15ull;
  __m512i state = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(key + first * golden)),
                                   _mm512_mullo_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0),
                                                      _mm512_set1_epi64(static_cast<long long>(golden))));
  const __m512i step = _mm512_set1_epi64(static_cast<long long>(8 * golden));
  const __m256 scale = _mm256_set1_ps(1.0f / (1.0f - p));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512i h = splitmix64_x8(state);
    state = _mm512_add_epi64(state, step);
    const __mmask8 keep = _mm512_cmpge_epu64_mask(_mm512_srli_epi64(h, 40), vth);
    __m256 x = _mm256_maskz_mul_ps(keep, _mm256_loadu_ps(in + i), scale);
    if (residual) x = _mm256_add_ps(_mm256_loadu_ps(residual + i), x);
    _mm256_storeu_ps(out + i, x);
  }
  if (i < n)
    dropout_span_scalar(out + i, in + i, residual ? residual + i : nullptr, n - i, p, key,
                        first + static_cast<uint64_t>(i));
}

constexpr int64_t kChunk = 16384;  // elements per parallel task (the mask depends on indices only)

}  // namespace

void dropout_span(float* out, const float* in, const float* residual, int64_t n, float p, uint64_t key,
                  uint64_t first) {
  if (use_avx512())
    dropout_span_avx512(out, in, residual, n, p, key, first);
  else
    dropout_span_scalar(out, in, residual, n, p, key, first);
}

void dropout_span_reference(float* out, const float* in, const float* residual, int64_t n, float p,
                            uint64_t key, uint64_t first) {
  const float scale = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < n; ++i) {
    const float x = counter_uniform(key, first + static_cast<uint64_t>(i)) >= p ? in[i] * scale : 0.0f;
    out[i] = residual ? residual[i] + x : x;
  }
}

void dropout_forward(float* out, const float* inp, int64_t n, float p, uint64_t key) {
  if (p <= 0.0f) {
    if (out != inp)
      for (int64_t i = 0; i < n; ++i) out[i] = inp[i];
    return;
  }
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  parallel_for(0, nchunks, nchunks > 1, [&](int64_t c) {
    const int64_t lo = c * kChunk, len = std::min(kChunk, n - lo);
    dropout_span(out + lo, inp + lo, nullptr, len, p, key, static_cast<uint64_t>(lo));
  });
}

void dropout_backward(float* dinp, const float* dout, int64_t n, float p, uint64_t key) {
  dropout_forward(dinp, dout, n, p, key);  // the same linear map: mask and scale
}

void dropout_residual_forward(float* out, const float* x, const float* residual, int64_t n, float p,
                              uint64_t key) {
  if (p <= 0.0f) {
    parallel_for(0, n, n >= kParallelMinWork, [&](int64_t i) { out[i] = x[i] + residual[i]; });
    return;
  }
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  parallel_for(0, nchunks, nchunks > 1, [&](int64_t c) {
    const int64_t lo = c * kChunk, len = std::min(kChunk, n - lo);
    dropout_span(out + lo, x + lo, residual + lo, len, p, key, static_cast<uint64_t>(lo));
  });
}

void dropout_rows_residual_forward(float* out, const float* x, const float* residual, int64_t n,
                                   int64_t width, const int32_t* rows, float p, uint64_t key) {
  if (!rows) {
    if (residual)
      dropout_residual_forward(out, x, residual, n * width, p, key);
    else
      dropout_forward(out, x, n * width, p, key);
    return;
  }
  parallel_for(0, n, n * width >= kParallelMinWork, [&](int64_t i) {
    float* o = out + i * width;
    const float* in = x + i * width;
    const float* res = residual ? residual + i * width : nullptr;
    if (p > 0.0f) {
      dropout_span(o, in, res, width, p, key, static_cast<uint64_t>(rows[i]) * static_cast<uint64_t>(width));
    } else {  // the identity: dropout_residual_forward's x + residual, or a copy
      for (int64_t j = 0; j < width; ++j) o[j] = res ? in[j] + res[j] : in[j];
    }
  });
}

}  // namespace bertfit

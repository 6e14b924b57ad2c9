// The machine's own fp32 FMA peak, measured: every thread runs independent FMA chains on all but two of the
// vector registers (24 of 32 zmm with AVX-512, 12 of 16 ymm with AVX2), long enough for the latency of each
// chain (4-5 cycles) to be hidden behind the others on two FMA pipes. This is the ceiling the engine's model
// FLOP/s is compared with (issue 12): unlike OpenBLAS's sgemm rate, it does not depend on which kernel an
// environment variable makes OpenBLAS pick.
#pragma once

#include <vector>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "core/cpu_features.h"
#include "core/simd.h"
#include "core/threading.h"

namespace bertfit::bench {

// FLOPs of one call of the kernels below: iterations x chains x lanes x 2 (multiply and add).
constexpr int64_t kFmaIterations = 1 << 22;

__attribute__((target("avx512f"))) inline float fma_chains_avx512(float seed) {
  // 24 accumulators; x and y stay in two more registers. The values stay finite (x = 1 - 2^-20, y tiny).
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(seed + static_cast<float>(i));
  const __m512 x = _mm512_set1_ps(0.99999905f), y = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < kFmaIterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}
constexpr double kFmaAvx512Flop = 2.0 * 24 * 16 * kFmaIterations;

__attribute__((target("avx2,fma"))) inline float fma_chains_avx2(float seed) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed + static_cast<float>(i));
  const __m256 x = _mm256_set1_ps(0.99999905f), y = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < kFmaIterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float v[8];
  _mm256_storeu_ps(v, s);
  return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}
constexpr double kFmaAvx2Flop = 2.0 * 12 * 8 * kFmaIterations;

// GFLOP/s of `threads` threads each running the chains once (the best of `rounds`), with the widest vectors
// this CPU has (or AVX2 when avx2_only). The result is kept in a volatile so the loops are not removed.
inline double fma_peak_gflops(int threads, bool avx2_only = false, int rounds = 3) {
  const bool wide = use_avx512() && !avx2_only;
  const double flop_per_thread = wide ? kFmaAvx512Flop : kFmaAvx2Flop;
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < rounds; ++r) {
    std::vector<float> per_thread(static_cast<size_t>(threads), 0.0f);
    const auto t0 = std::chrono::steady_clock::now();
    parallel_region(
        [&](const Team& team) {
          const float seed = static_cast<float>(team.thread());
          per_thread[static_cast<size_t>(team.thread())] =
              wide ? fma_chains_avx512(seed) : fma_chains_avx2(seed);
        },
        true, threads);
    float total = 0;
    for (float v : per_thread) total += v;
    sink = sink + total;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flop_per_thread * threads / s / 1e9);
  }
  return best;
}

}  // namespace bertfit::bench

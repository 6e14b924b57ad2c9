#include "core/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace bertfit {

namespace {

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  return has;
}

bool env_allows_avx512() {
  const char* v = std::getenv("BERTFIT_MAX_ISA");
  return !(v && std::strcmp(v, "avx2") == 0);
}

std::atomic<int> g_cap{-1};  // -1: not decided yet; else 1 = AVX-512 allowed, 0 = AVX2 only

}  // namespace

bool use_avx512() {
  int cap = g_cap.load(std::memory_order_relaxed);
  if (cap < 0) {
    cap = env_allows_avx512() ? 1 : 0;
    g_cap.store(cap, std::memory_order_relaxed);
  }
  return cap == 1 && cpu_has_avx512();
}

bool use_avx512_bf16() {
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has && use_avx512();
}

bool use_avx512_vnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni");
  return has && use_avx512();
}

void set_max_isa(Isa isa) {
  g_cap.store(isa == Isa::AVX512 ? 1 : 0, std::memory_order_relaxed);
}

}  // namespace bertfit

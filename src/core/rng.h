// Random numbers that are reproducible across runs, machines and thread counts.
//
// Two kinds:
//  * Rng: a sequential generator (xoshiro256**, seeded through SplitMix64) for things drawn in order:
//    weight init, data shuffling, masking. Our own distributions, because std::uniform_real_distribution
//    and std::normal_distribution differ between standard libraries.
//  * counter_uniform(key, index): a stateless hash of (key, index) for dropout. Each element's draw depends
//    only on its index, never on which thread computes it, so masks are identical for any thread count, and
//    backward can regenerate the forward mask instead of storing it.
#pragma once

#include <cstdint>

namespace bertfit {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 24 random bits (exactly representable in float).
// Element `index` of the SplitMix64 stream whose state starts at `key`: mix(key + (index + 1) * golden). One
// 64-bit mix per draw (the dropout kernels' main cost on the attention probabilities); keys come from
// dropout_key, already mixed, so streams of different sites and steps start far apart.
inline float counter_uniform(uint64_t key, uint64_t index) {
  uint64_t h = splitmix64(key + index * 0x9E3779B97F4A7C15ull);
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

// A key for one dropout site in one step: mixes the run seed, the step and the site id.
inline uint64_t dropout_key(uint64_t seed, uint64_t step, uint64_t site) {
  return splitmix64(seed ^ splitmix64(step * 0x100000001B3ull + splitmix64(site)));
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1), 53 bits.
  double uniform();
  // Uniform integer in [0, n), unbiased (rejection).
  uint64_t below(uint64_t n);
  // Standard normal (Box-Muller, no cached second value so the state is just s_).
  double normal();
  // State for checkpoints (resume continues the same stream).
  void get_state(uint64_t out[4]) const;
  void set_state(const uint64_t in[4]);

 private:
  uint64_t s_[4];
};

}  // namespace bertfit

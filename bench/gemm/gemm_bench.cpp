// bertfit_gemm_bench: the linear-layer GEMMs of BERT-base (hidden 768, intermediate 3072) at M activation
// rows, OpenBLAS (the bias written, then sgemm with beta = 1: linear_forward's OpenBLAS path) against
// gemm_nt_small, in two regimes:
//   warm: one weight matrix per shape, multiplied 12 times in a row (it stays in the caches it fits in);
//   cold: the 48 distinct weight matrices of a 12-layer forward (340 MB), in forward order, so every weight
//         streams from memory as in the model.
// The two implementations alternate repeat by repeat (ABAB), so drift of the machine's speed hits both.
//
//   bertfit_gemm_bench [--m 128,1024] [--threads 2] [--repeats 15] [--warmup 2]
//
// Prints, per M, regime and shape, the median time per GEMM (ms), GFLOP/s, and the spread (min-max).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_nt_small.h"
#include "core/aligned_buffer.h"
#include "core/rng.h"
#include "core/threading.h"

namespace {

using namespace bertfit;
using Clock = std::chrono::steady_clock;

constexpr int64_t kC = 768, kI = 3072, kLayers = 12;
struct Shape {
  const char* name;
  int64_t N, K;  // out, in
};
constexpr Shape kShapes[4] = {
    {"qkv", 3 * kC, kC}, {"attn_out", kC, kC}, {"ffn_in", kI, kC}, {"ffn_out", kC, kI}};

void blas_linear(float* out, const float* inp, const float* W, const float* b, int64_t M, int64_t K,
                 int64_t N) {
#pragma omp parallel for schedule(static) if (M * N >= kParallelMinWork)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) out[m * N + n] = b[n];
  gemm(false, true, M, N, K, 1.0f, inp, K, W, K, 1.0f, out, N);
}

void run(int impl, float* out, const float* inp, const float* W, const float* b, int64_t M, int64_t K,
         int64_t N) {
  if (impl == 0)
    blas_linear(out, inp, W, b, M, K, N);
  else
    gemm_nt_small(M, N, K, inp, K, W, K, b, false, out, N);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void fill(AlignedBuffer<float>& buf, uint64_t seed, float scale) {
  Rng rng(seed);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = scale * static_cast<float>(rng.uniform() * 2.0 - 1.0);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> ms = {128};
  int threads = 2, repeats = 15, warmup = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) throw std::runtime_error("missing value after " + k);
    const std::string v = argv[++i];
    if (k == "--m") {
      ms.clear();
      std::stringstream ss(v);
      std::string item;
      while (std::getline(ss, item, ',')) ms.push_back(std::stoll(item));
    } else if (k == "--threads") {
      threads = std::stoi(v);
    } else if (k == "--repeats") {
      repeats = std::stoi(v);
    } else if (k == "--warmup") {
      warmup = std::stoi(v);
    } else {
      throw std::runtime_error("unknown argument " + k);
    }
  }
  set_num_threads(threads);
  std::printf("threads %d, repeats %d, gemm_nt_small AVX-512: %s\n", threads, repeats,
              gemm_nt_small_available() ? "yes" : "no (fallback = OpenBLAS)");

  // The 48 weight matrices and biases, back to back as the parameter buffer holds them.
  int64_t per_layer = 0;
  for (const Shape& s : kShapes) per_layer += s.N * s.K + s.N;
  AlignedBuffer<float> params(static_cast<size_t>(per_layer * kLayers));
  fill(params, 1, 0.05f);
  std::vector<const float*> Ws, bs;
  {
    const float* p = params.data();
    for (int64_t l = 0; l < kLayers; ++l)
      for (const Shape& s : kShapes) {
        Ws.push_back(p);
        p += s.N * s.K;
        bs.push_back(p);
        p += s.N;
      }
  }
  const char* impl_name[2] = {"openblas", "nt_small"};

  for (int64_t M : ms) {
    AlignedBuffer<float> x(static_cast<size_t>(M * kI)), y(static_cast<size_t>(M * kI)),
        y2(static_cast<size_t>(M * kI));
    fill(x, 2, 1.0f);
    // Agreement check (not a test: tests/backend has those): max |openblas - nt_small| / max |value|.
    for (int si = 0; si < 4; ++si) {
      const Shape& s = kShapes[si];
      run(0, y.data(), x.data(), Ws[si], bs[si], M, s.K, s.N);
      run(1, y2.data(), x.data(), Ws[si], bs[si], M, s.K, s.N);
      double md = 0, mx = 0;
      for (int64_t i = 0; i < M * s.N; ++i) {
        md = std::max(md, static_cast<double>(std::fabs(y[i] - y2[i])));
        mx = std::max(mx, static_cast<double>(std::fabs(y[i])));
      }
      std::printf("M=%lld %-8s max|diff| %.3g (max|y| %.3g)\n", static_cast<long long>(M), s.name, md, mx);
    }
    for (int regime = 0; regime < 2; ++regime) {
      // t[impl][shape]: per repeat, the mean time of the 12 calls of that shape in the forward order
      std::vector<double> t[2][4];
      for (int r = -warmup; r < repeats; ++r)
        for (int impl = 0; impl < 2; ++impl) {
          double sum[4] = {0, 0, 0, 0};
          for (int64_t l = 0; l < kLayers; ++l)
            for (int si = 0; si < 4; ++si) {
              const Shape& s = kShapes[si];
              const size_t w = regime == 0 ? si : static_cast<size_t>(l * 4 + si);
              const auto t0 = Clock::now();
              run(impl, y.data(), x.data(), Ws[w], bs[w], M, s.K, s.N);
              sum[si] += std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
            }
          if (r >= 0)
            for (int si = 0; si < 4; ++si) t[impl][si].push_back(sum[si] / kLayers);
        }
      std::printf("\nM=%lld %s weights (median ms per GEMM, GFLOP/s, [min-max ms])\n",
                  static_cast<long long>(M), regime == 0 ? "WARM" : "COLD");
      double tot[2] = {0, 0};
      for (int si = 0; si < 4; ++si) {
        const Shape& s = kShapes[si];
        const double flops = 2.0 * M * s.N * s.K;
        std::printf("  %-8s %5lldx%4lldx%4lld", s.name, static_cast<long long>(M),
                    static_cast<long long>(s.N), static_cast<long long>(s.K));
        for (int impl = 0; impl < 2; ++impl) {
          const double med = median(t[impl][si]);
          const auto mm = std::minmax_element(t[impl][si].begin(), t[impl][si].end());
          tot[impl] += med * kLayers;
          std::printf("  %s %7.3f ms %6.1f GF/s [%.3f-%.3f]", impl_name[impl], med, flops / med * 1e-6,
                      *mm.first, *mm.second);
        }
        std::printf("  ratio %.3f\n", median(t[1][si]) / median(t[0][si]));
      }
      std::printf("  48 GEMMs: openblas %.2f ms, nt_small %.2f ms\n", tot[0], tot[1]);
    }
    std::printf("\n");
  }
  return 0;
}

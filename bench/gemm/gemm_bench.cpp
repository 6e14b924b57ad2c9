// bertfit_gemm_bench: the linear-layer GEMMs of BERT-base (hidden 768, intermediate 3072) at M activation
// rows, OpenBLAS (the bias written, then sgemm with beta = 1: linear_forward's OpenBLAS path) against
// gemm_nt_small and against gemm_packed (the bias written, then our packed GEMM with beta = 1), in two
// regimes:
//   warm: one weight matrix per shape, multiplied 12 times in a row (it stays in the caches it fits in);
//   cold: the 48 distinct weight matrices of a 12-layer forward (340 MB), in forward order, so every weight
//         streams from memory as in the model.
// The implementations alternate repeat by repeat (ABCABC), so drift of the machine's speed hits all.
// With --backward, the two backward GEMMs of each shape as well (warm weights), OpenBLAS against gemm_packed:
// the weight gradient dW[N,K] += dout^T x (K = M rows: op(A) transposed) and the input gradient dx[M,K] =
// dout W (no transposes).
//
//   bertfit_gemm_bench [--m 128,1024] [--threads 2] [--repeats 15] [--warmup 2] [--backward 1]
//                      [--forward 0] [--hidden 768]
//
// --hidden H: the shapes of a model with hidden size H and intermediate 4H (256: the mini model); --forward 0
// skips the forward regimes (with --backward 1: the backward products alone).
//
// Prints, per M, regime and shape, the median time per GEMM (ms), GFLOP/s, and the spread (min-max).
#include <strings.h>  // strcasecmp
#include <unistd.h>   // execv
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

constexpr int64_t kLayers = 12;
int64_t g_hidden = 768, g_inter = 3072;  // --hidden
struct Shape {
  const char* name;
  int64_t N, K;  // out, in
};
Shape g_shapes[4];
void set_shapes(int64_t hidden) {
  g_hidden = hidden;
  g_inter = 4 * hidden;
  g_shapes[0] = {"qkv", 3 * g_hidden, g_hidden};
  g_shapes[1] = {"attn_out", g_hidden, g_hidden};
  g_shapes[2] = {"ffn_in", g_inter, g_hidden};
  g_shapes[3] = {"ffn_out", g_hidden, g_inter};
}

void blas_linear(float* out, const float* inp, const float* W, const float* b, int64_t M, int64_t K,
                 int64_t N) {
  parallel_for(0, M, M * N >= kParallelMinWork, [&](int64_t m) {
    for (int64_t n = 0; n < N; ++n) out[m * N + n] = b[n];
  });
  gemm_openblas(false, true, M, N, K, 1.0f, inp, K, W, K, 1.0f, out, N);
}

void packed_linear(float* out, const float* inp, const float* W, const float* b, int64_t M, int64_t K,
                   int64_t N) {
  parallel_for(0, M, M * N >= kParallelMinWork, [&](int64_t m) {
    for (int64_t n = 0; n < N; ++n) out[m * N + n] = b[n];
  });
  gemm_packed(false, true, M, N, K, 1.0f, inp, K, W, K, 1.0f, out, N);
}

constexpr int kImpls = 3;
const char* const kImplName[kImpls] = {"openblas", "nt_small", "packed"};

void run(int impl, float* out, const float* inp, const float* W, const float* b, int64_t M, int64_t K,
         int64_t N) {
  if (impl == 0)
    blas_linear(out, inp, W, b, M, K, N);
  else if (impl == 1)
    gemm_nt_small(M, N, K, inp, K, W, K, b, false, out, N);
  else
    packed_linear(out, inp, W, b, M, K, N);
}

// The backward GEMMs of a linear layer (x [M,K], W [N,K], dout [M,N]) with OpenBLAS (impl 0) or gemm_packed.
void run_backward(int impl, bool dw, float* dW, float* dx, const float* x, const float* W, const float* dout,
                  int64_t M, int64_t K, int64_t N) {
  auto g = impl == 0 ? &gemm_openblas : &gemm_packed;
  if (dw)
    g(true, false, N, K, M, 1.0f, dout, N, x, K, 1.0f, dW, K);
  else
    g(false, false, M, K, N, 1.0f, dout, N, W, K, 0.0f, dx, K);
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
  // The implementations alternate within one process, and OpenBLAS's OpenMP threads spin after each of its
  // calls (libgomp's active waiting, 2026-12-05: with the default, gemm_packed's weight gradients at M = 1024
  // measured 206-243 GFLOP/s with 2 threads against 365-381 with passive waiting) -- they took the cores from
  // the implementation timed next. libgomp reads OMP_WAIT_POLICY when it loads, so when it is unset the bench
  // sets it and runs itself again; a policy the user set is kept, with a warning unless it is passive.
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (!policy) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    std::perror("gemm_bench: re-running itself with OMP_WAIT_POLICY=PASSIVE");  // reached only on failure
    return 1;
  }
  if (strcasecmp(policy, "passive") != 0)
    std::printf(
        "warning: OMP_WAIT_POLICY=%s: OpenBLAS's spinning threads slow the implementation timed after "
        "it\n",
        policy);
  std::vector<int64_t> ms = {128};
  int threads = 2, repeats = 15, warmup = 2, backward = 0, forward = 1;
  int64_t hidden = 768;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::printf(
          "usage: bertfit_gemm_bench [--m 128,1024] [--threads 2] [--repeats 15] [--warmup 2]\n"
          "                          [--backward 0|1] [--forward 0|1] [--hidden 768]\n"
          "(see the header of bench/gemm/gemm_bench.cpp)\n");
      return 0;
    }
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
    } else if (k == "--backward") {
      backward = std::stoi(v);
    } else if (k == "--forward") {
      forward = std::stoi(v);
    } else if (k == "--hidden") {
      hidden = std::stoll(v);
      if (hidden <= 0) throw std::runtime_error("--hidden: a positive size");
    } else {
      throw std::runtime_error("unknown argument " + k);
    }
  }
  set_shapes(hidden);
  set_num_threads(threads);
  std::printf("hidden %lld, threads %d, repeats %d, gemm_nt_small AVX-512: %s\n",
              static_cast<long long>(hidden), threads, repeats,
              gemm_nt_small_available() ? "yes" : "no (fallback = OpenBLAS)");

  // The 48 weight matrices and biases, back to back as the parameter buffer holds them.
  int64_t per_layer = 0;
  for (const Shape& s : g_shapes) per_layer += s.N * s.K + s.N;
  AlignedBuffer<float> params(static_cast<size_t>(per_layer * kLayers));
  fill(params, 1, 0.05f);
  std::vector<const float*> Ws, bs;
  {
    const float* p = params.data();
    for (int64_t l = 0; l < kLayers; ++l)
      for (const Shape& s : g_shapes) {
        Ws.push_back(p);
        p += s.N * s.K;
        bs.push_back(p);
        p += s.N;
      }
  }

  for (int64_t M : ms) {
    AlignedBuffer<float> x(static_cast<size_t>(M * g_inter)), y(static_cast<size_t>(M * g_inter)),
        y2(static_cast<size_t>(M * g_inter));
    fill(x, 2, 1.0f);
    // Agreement check (not a test: tests/backend has those): max |openblas - other| / max |value|.
    for (int si = 0; si < 4; ++si) {
      const Shape& s = g_shapes[si];
      run(0, y.data(), x.data(), Ws[si], bs[si], M, s.K, s.N);
      for (int impl = 1; impl < kImpls; ++impl) {
        run(impl, y2.data(), x.data(), Ws[si], bs[si], M, s.K, s.N);
        double md = 0, mx = 0;
        for (int64_t i = 0; i < M * s.N; ++i) {
          md = std::max(md, static_cast<double>(std::fabs(y[i] - y2[i])));
          mx = std::max(mx, static_cast<double>(std::fabs(y[i])));
        }
        std::printf("M=%lld %-8s %s max|diff| %.3g (max|y| %.3g)\n", static_cast<long long>(M), s.name,
                    kImplName[impl], md, mx);
      }
    }
    for (int regime = 0; regime < (forward ? 2 : 0); ++regime) {
      // t[impl][shape]: per repeat, the mean time of the 12 calls of that shape in the forward order
      std::vector<double> t[kImpls][4];
      for (int r = -warmup; r < repeats; ++r)
        for (int impl = 0; impl < kImpls; ++impl) {
          double sum[4] = {0, 0, 0, 0};
          for (int64_t l = 0; l < kLayers; ++l)
            for (int si = 0; si < 4; ++si) {
              const Shape& s = g_shapes[si];
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
      double tot[kImpls] = {0, 0, 0};
      for (int si = 0; si < 4; ++si) {
        const Shape& s = g_shapes[si];
        const double flops = 2.0 * M * s.N * s.K;
        std::printf("  %-8s %5lldx%4lldx%4lld", s.name, static_cast<long long>(M),
                    static_cast<long long>(s.N), static_cast<long long>(s.K));
        for (int impl = 0; impl < kImpls; ++impl) {
          const double med = median(t[impl][si]);
          const auto mm = std::minmax_element(t[impl][si].begin(), t[impl][si].end());
          tot[impl] += med * kLayers;
          std::printf("  %s %7.3f ms %6.1f GF/s [%.3f-%.3f]", kImplName[impl], med, flops / med * 1e-6,
                      *mm.first, *mm.second);
        }
        std::printf("\n");
      }
      std::printf("  48 GEMMs: openblas %.2f ms, nt_small %.2f ms, packed %.2f ms\n", tot[0], tot[1], tot[2]);
    }
    if (backward) {
      AlignedBuffer<float> dW(static_cast<size_t>(g_inter * g_hidden)), dx(static_cast<size_t>(M * g_inter));
      std::printf("\nM=%lld BACKWARD, warm weights (median ms per GEMM, GFLOP/s)\n",
                  static_cast<long long>(M));
      for (int si = 0; si < 4; ++si)
        for (int dw = 1; dw >= 0; --dw) {
          const Shape& s = g_shapes[si];
          std::vector<double> t[2];
          for (int r = -warmup; r < repeats; ++r)
            for (int impl = 0; impl < 2; ++impl) {
              const auto t0 = Clock::now();
              run_backward(impl, dw != 0, dW.data(), dx.data(), x.data(), Ws[si], y.data(), M, s.K, s.N);
              if (r >= 0)
                t[impl].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            }
          const double flops = 2.0 * M * s.N * s.K;
          std::printf("  %-8s %-4s", s.name, dw ? "dW" : "dx");
          for (int impl = 0; impl < 2; ++impl)
            std::printf("  %s %7.3f ms %6.1f GF/s", impl == 0 ? "openblas" : "packed", median(t[impl]),
                        flops / median(t[impl]) * 1e-6);
          std::printf("\n");
        }
    }
    std::printf("\n");
  }
  return 0;
}

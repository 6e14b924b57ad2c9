// bertfit_lowp_gemm_bench: the linear-layer products of BERT-base (y = x W^T + b, W [N, K]) at M rows,
// timed for our fp32 GEMM (gemm_bias), our bf16 GEMM (gemm_bf16: float in, operands rounded while packed),
// our int8 GEMM (gemm_int8: activations quantized per row inside the call, weights packed once), and
// oneDNN's matmul in bf16 (bf16 x bf16 -> f32) and int8 (u8 x s8 -> f32 with per-column output scales),
// each with its weights reordered once into the layout oneDNN prefers (what PyTorch does) and with the
// activations already converted: oneDNN's best case. Alternating rounds, median of each.
//
//   bertfit_lowp_gemm_bench [--rows M] [--rounds R] [--threads N]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/bf16.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/gemm_int8.h"
#include "core/rng.h"
#include "core/threading.h"

#ifdef BERTFIT_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using namespace bertfit;
using Clock = std::chrono::steady_clock;

std::vector<float> randn(size_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(r.normal());
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Milliseconds per call: enough calls for ~50 ms per sample.
double time_ms(const std::function<void()>& f) {
  f();
  int n = 1;
  for (;;) {
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) f();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (ms > 50 || n >= 1 << 12) return ms / n;
    n *= 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int64_t M = 4096;
  int rounds = 5, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--rows")
      M = std::stoll(argv[i + 1]);
    else if (k == "--rounds")
      rounds = std::stoi(argv[i + 1]);
    else if (k == "--threads")
      threads = std::stoi(argv[i + 1]);
  }
  set_num_threads(threads);
  std::printf("rows %lld, threads %d, bf16 path: %s, int8 path: %s\n", static_cast<long long>(M), threads,
              gemm_bf16_path(), gemm_int8_path());
  std::printf("%-10s %-12s %9s %9s %9s %9s %9s   (GFLOP/s, median of %d rounds)\n", "shape", "N x K", "fp32",
              "bf16", "dnnl-bf16", "int8", "dnnl-int8", rounds);
  const int64_t shapes[][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
  const char* names[] = {"qkv", "attn_out", "ffn_in", "ffn_out"};
#ifdef BERTFIT_HAVE_DNNL
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
#endif
  for (int s = 0; s < 4; ++s) {
    const int64_t N = shapes[s][0], K = shapes[s][1];
    const double gflop = 2.0 * static_cast<double>(M) * N * K * 1e-9;
    const std::vector<float> x = randn(static_cast<size_t>(M * K), 1),
                             w = randn(static_cast<size_t>(N * K), 2), b = randn(static_cast<size_t>(N), 3);
    std::vector<float> y(static_cast<size_t>(M * N));
    std::vector<int8_t> wq(static_cast<size_t>(N * K));
    std::vector<float> ws(static_cast<size_t>(N));
    quantize_rows(w.data(), N, K, K, wq.data(), K, ws.data());
    const Int8Weights W8(wq.data(), ws.data(), N, K);
    std::vector<std::pair<std::string, std::function<void()>>> cases;
    cases.push_back({"fp32", [&] {
                       gemm_bias(false, true, M, N, K, 1.0f, x.data(), K, w.data(), K, b.data(), 0.0f,
                                 y.data(), N);
                     }});
    cases.push_back({"bf16", [&] {
                       gemm_bf16(false, true, M, N, K, 1.0f, x.data(), K, w.data(), K, b.data(), 0.0f,
                                 y.data(), N);
                     }});
#ifdef BERTFIT_HAVE_DNNL
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dnnl::memory::dims src_d{M, K}, wei_d{K, N}, dst_d{M, N}, bias_d{1, N};
    // bf16: activations converted once (outside the timing), weights reordered once into oneDNN's layout.
    std::vector<uint16_t> xb(x.size()), wb(w.size());
    floats_to_bf16(x.data(), xb.data(), static_cast<int64_t>(x.size()));
    floats_to_bf16(w.data(), wb.data(), static_cast<int64_t>(w.size()));
    dnnl::matmul::primitive_desc bf_pd(dnnl::matmul::desc(dnnl::memory::desc(src_d, dt::bf16, tag::ab),
                                                          dnnl::memory::desc(wei_d, dt::bf16, tag::any),
                                                          dnnl::memory::desc(bias_d, dt::f32, tag::ab),
                                                          dnnl::memory::desc(dst_d, dt::f32, tag::ab)),
                                       eng);
    dnnl::memory bf_src(bf_pd.src_desc(), eng, xb.data());
    dnnl::memory bf_w_user(dnnl::memory::desc(wei_d, dt::bf16, tag::ba), eng, wb.data());
    dnnl::memory bf_w(bf_pd.weights_desc(), eng);
    dnnl::reorder(bf_w_user, bf_w).execute(strm, bf_w_user, bf_w);
    dnnl::memory bf_b(dnnl::memory::desc(bias_d, dt::f32, tag::ab), eng, const_cast<float*>(b.data()));
    dnnl::memory bf_dst(bf_pd.dst_desc(), eng, y.data());
    dnnl::matmul bf_mm(bf_pd);
    cases.push_back({"dnnl-bf16", [&] {
                       bf_mm.execute(strm, {{DNNL_ARG_SRC, bf_src},
                                            {DNNL_ARG_WEIGHTS, bf_w},
                                            {DNNL_ARG_BIAS, bf_b},
                                            {DNNL_ARG_DST, bf_dst}});
                       strm.wait();
                     }});
#endif
    cases.push_back({"int8", [&] { gemm_int8(x.data(), M, K, W8, b.data(), y.data(), N); }});
#ifdef BERTFIT_HAVE_DNNL
    // int8: u8 activations (already quantized), s8 weights reordered once, per-column output scales.
    std::vector<uint8_t> xu(x.size());
    for (size_t i = 0; i < x.size(); ++i)
      xu[i] = static_cast<uint8_t>(std::clamp(x[i] * 30.0f + 128.0f, 0.0f, 255.0f));
    dnnl::primitive_attr attr;
    attr.set_output_scales(2, ws);
    dnnl::matmul::primitive_desc i8_pd(dnnl::matmul::desc(dnnl::memory::desc(src_d, dt::u8, tag::ab),
                                                          dnnl::memory::desc(wei_d, dt::s8, tag::any),
                                                          dnnl::memory::desc(bias_d, dt::f32, tag::ab),
                                                          dnnl::memory::desc(dst_d, dt::f32, tag::ab)),
                                       attr, eng);
    dnnl::memory i8_src(i8_pd.src_desc(), eng, xu.data());
    dnnl::memory i8_w_user(dnnl::memory::desc(wei_d, dt::s8, tag::ba), eng, wq.data());
    dnnl::memory i8_w(i8_pd.weights_desc(), eng);
    dnnl::reorder(i8_w_user, i8_w).execute(strm, i8_w_user, i8_w);
    dnnl::memory i8_b(dnnl::memory::desc(bias_d, dt::f32, tag::ab), eng, const_cast<float*>(b.data()));
    dnnl::memory i8_dst(i8_pd.dst_desc(), eng, y.data());
    dnnl::matmul i8_mm(i8_pd);
    cases.push_back({"dnnl-int8", [&] {
                       i8_mm.execute(strm, {{DNNL_ARG_SRC, i8_src},
                                            {DNNL_ARG_WEIGHTS, i8_w},
                                            {DNNL_ARG_BIAS, i8_b},
                                            {DNNL_ARG_DST, i8_dst}});
                       strm.wait();
                     }});
#endif
    std::vector<std::vector<double>> ms(cases.size());
    for (int r = 0; r < rounds; ++r)
      for (size_t c = 0; c < cases.size(); ++c) ms[c].push_back(time_ms(cases[c].second));
    auto rate = [&](const char* name) {
      for (size_t c = 0; c < cases.size(); ++c)
        if (cases[c].first == name) return gflop / median(ms[c]) * 1e3;
      return 0.0;
    };
    char nk[32];
    std::snprintf(nk, sizeof nk, "%lldx%lld", static_cast<long long>(N), static_cast<long long>(K));
    std::printf("%-10s %-12s %9.0f %9.0f %9.0f %9.0f %9.0f\n", names[s], nk, rate("fp32"), rate("bf16"),
                rate("dnnl-bf16"), rate("int8"), rate("dnnl-int8"));
    std::fflush(stdout);
  }
  return 0;
}

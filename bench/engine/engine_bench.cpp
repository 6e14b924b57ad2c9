// bertfit_engine_bench: times one case of the engine (or OpenBLAS's sgemm alone) and prints one JSON line.
//
//   bertfit_engine_bench --case train|infer|mlm|sgemm|fma|tile --model base|mini --batch B --seq T
//                        --threads N [--warmup W] [--repeats R] [--profile] [--mask-frac 0.15]
//                        [--setting LABEL] [--precision fp32|bf16|int8] [--feature-layer K]
//                        [--cls-query 0|1]
// --case fma / tile: the ceilings, no model: the FMA probe (fma_peak.h) and gemm_packed's register tile alone
// (gemm_packed_tile_gflops); --setting avx2 caps either to AVX2.
// --feature-layer K: the classifier reads hidden state K's [CLS] (the `layer` feature) instead of the pooler.
// --cls-query 0: the last layer's Q and attention on every query (BertModel::last_layer_cls_query_only off).
// --precision bf16: the encoder's products with bf16 operands (--bf16 of finetune / pretrain); int8 (infer
// only): the encoder's linear layers quantized in memory as bertfit quantize does (train/quantized_model.h).
//
// Every case runs the library's real code path (BertModel forward/backward, grad_norm, adamw_step), the
// same calls a trainer makes; nothing here is benchmark-specific in the engine. Random token ids without
// padding, dropout 0.1 as in the config defaults, labels random. Timings: `warmup` untimed steps, then
// `repeats` timed steps; the JSON carries every sample, the median, min and max, FLOPs per step (gflop: the
// model's count, HF's computation; executed_gflop: what the step ran, fewer when the classifier's last layer
// runs on the [CLS] rows) and peak RSS.
// --profile prints the per-kernel profile of the LAST timed step (core/profiler.h) to stderr.
#include <cblas.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/aligned_buffer.h"
#include "core/cpu_features.h"
#include "core/profiler.h"
#include "core/rng.h"
#include "core/threading.h"
#include "fma_peak.h"
#include "kernels/adamw.h"
#include "kernels/cross_entropy.h"
#include "model/bert_model.h"
#include "train/quantized_model.h"

namespace {

using namespace bertfit;

struct Args {
  std::string kase = "train", model = "mini", setting,
              precision = "fp32";  // setting: a label for the result (e.g. p2)
  int64_t batch = 8, seq = 128;
  int threads = 2, warmup = 1, repeats = 3;
  bool profile = false;
  double mask_frac = 0.15;
  int64_t feature_layer = -1;  // classification: the `layer` feature (hidden state k), -1: the pooler
  bool cls_query = true;       // BertModel::last_layer_cls_query_only
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + k);
      return argv[++i];
    };
    if (k == "--help" || k == "-h") {
      std::printf(
          "usage: bertfit_engine_bench --case train|infer|mlm|sgemm|fma|tile --model base|mini --batch B "
          "--seq T\n"
          "                            --threads N [--warmup W] [--repeats R] [--profile] [--mask-frac "
          "0.15]\n"
          "                            [--setting LABEL] [--precision fp32|bf16|int8] [--feature-layer K]\n"
          "                            [--cls-query 0|1]\n"
          "Prints one JSON line (RESULT); see the header of bench/engine/engine_bench.cpp.\n");
      std::exit(0);
    }
    if (k == "--case")
      a.kase = val();
    else if (k == "--model")
      a.model = val();
    else if (k == "--batch")
      a.batch = std::stoll(val());
    else if (k == "--seq")
      a.seq = std::stoll(val());
    else if (k == "--threads")
      a.threads = std::stoi(val());
    else if (k == "--warmup")
      a.warmup = std::stoi(val());
    else if (k == "--repeats")
      a.repeats = std::stoi(val());
    else if (k == "--mask-frac")
      a.mask_frac = std::stod(val());
    else if (k == "--profile")
      a.profile = true;
    else if (k == "--setting")
      a.setting = val();
    else if (k == "--precision")
      a.precision = val();
    else if (k == "--feature-layer")
      a.feature_layer = std::stoll(val());
    else if (k == "--cls-query")
      a.cls_query = std::stoll(val()) != 0;
    else
      throw std::runtime_error("unknown argument " + k);
  }
  if (a.precision != "fp32" && a.precision != "bf16" && a.precision != "int8")
    throw std::runtime_error("--precision: fp32 | bf16 | int8");
  if (a.precision == "int8" && a.kase != "infer") throw std::runtime_error("--precision int8: infer only");
  if (a.repeats < 1 || a.batch < 1 || a.seq < 1)
    throw std::runtime_error("repeats, batch and seq must be >= 1");
  return a;
}

ModelConfig model_config(const std::string& name) {
  ModelConfig
      c;  // BertConfig defaults = bert-base-uncased: 12 layers, 768 hidden, 12 heads, 3072, vocab 30522
  if (name == "mini") {
    c.num_hidden_layers = 4;
    c.hidden_size = 256;
    c.num_attention_heads = 4;
    c.intermediate_size = 1024;
  } else if (name != "base") {
    throw std::runtime_error("unknown model " + name + " (base | mini)");
  }
  return c;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void print_result(const Args& a, const std::vector<double>& ms, double gflop, const std::string& extra) {
  std::vector<double> s = ms;
  std::sort(s.begin(), s.end());
  const double median = s.size() % 2 ? s[s.size() / 2] : 0.5 * (s[s.size() / 2 - 1] + s[s.size() / 2]);
  std::printf(
      "RESULT {\"engine\":\"bertfit\",\"case\":\"%s\",\"model\":\"%s\",\"batch\":%lld,\"seq\":%lld,"
      "\"threads\":%d,\"setting\":\"%s\",\"median_ms\":%.3f,\"min_ms\":%.3f,\"max_ms\":%.3f,\"gflop\":%.4f,"
      "\"peak_rss_mb\":%.1f,\"samples_ms\":[",
      a.kase.c_str(), a.model.c_str(), static_cast<long long>(a.batch), static_cast<long long>(a.seq),
      a.threads, a.setting.empty() ? ("t" + std::to_string(a.threads)).c_str() : a.setting.c_str(), median,
      s.front(), s.back(), gflop, peak_rss_mb());
  for (size_t i = 0; i < ms.size(); ++i) std::printf("%s%.3f", i ? "," : "", ms[i]);
  std::printf("]%s}\n", extra.c_str());
  std::fflush(stdout);
}

// OpenBLAS sgemm alone: C[4096,768] = A[4096,768] B[768,768], the shape of a BERT-base projection at 32x128.
// Milliseconds per product, one sample per repeat.
std::vector<double> sgemm_samples(int warmup, int repeats) {
  const int M = 4096, N = 768, K = 768;
  AlignedBuffer<float> A(static_cast<size_t>(M) * K), B(static_cast<size_t>(K) * N),
      C(static_cast<size_t>(M) * N);
  Rng rng(1);
  for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>(rng.uniform() - 0.5);
  for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>(rng.uniform() - 0.5);
  const int inner = 20;  // one sample = 20 products (~0.1 s), so timer and dispatch noise do not matter
  std::vector<double> ms;
  for (int r = -warmup; r < repeats; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < inner; ++i)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f,
                  C.data(), N);
    if (r >= 0) ms.push_back(seconds_since(t0) * 1e3 / inner);
  }
  return ms;
}
constexpr double kSgemmGflop = 2.0 * 4096 * 768 * 768 * 1e-9;

void run_sgemm(const Args& a) {
  print_result(a, sgemm_samples(a.warmup, a.repeats), kSgemmGflop, "");
}

// Model FLOPs per step, the count: 6 x non-embedding parameters x tokens plus attention (QK^T and PV:
// 4 T C per token per layer forward, x3 with backward); inference is a third of training. The masked-LM step
// counts the encoder (6 x encoder parameters) and its head on the M labelled rows: 6 (C^2 + C V) M, since the
// tied decoder is the embedding matrix and would otherwise be missed.
double model_gflop(const ModelConfig& c, const BertModel& m, const Args& a, int64_t masked_rows) {
  const double C = static_cast<double>(c.hidden_size), L = static_cast<double>(c.num_hidden_layers);
  const double tokens = static_cast<double>(a.batch * a.seq), T = static_cast<double>(a.seq);
  double emb = 0, enc = 0, total = 0;
  for (const ParamEntry& e : m.table().entries()) {
    total += static_cast<double>(e.numel);
    if (e.name.find(".embeddings.") != std::string::npos)
      emb += static_cast<double>(e.numel);
    else if (e.name.find(".encoder.") != std::string::npos)
      enc += static_cast<double>(e.numel);
  }
  const double attn = 12.0 * L * T * C * tokens;
  if (a.kase == "mlm") {
    const double V = static_cast<double>(c.vocab_size);
    return (6.0 * enc * tokens + attn + 6.0 * (C * C + C * V) * static_cast<double>(masked_rows)) * 1e-9;
  }
  const double train = 6.0 * (total - emb) * tokens + attn;
  return (a.kase == "infer" ? train / 3.0 : train) * 1e-9;
}

// The FLOPs the classification step executes, with model_gflop's conventions (2 FLOPs per parameter and row
// forward, 4 backward; attention's two products), where they differ from its count of HF's computation: the
// pooler and classifier run on the B sequences, not on every token; the layers above a `layer` feature do not
// run (BertModel::skip_layers_above_features); the last layer run has its attention output and FFN products
// on the B [CLS] rows only (BertModel::last_layer_cls_only), and its Q product and attention too
// (last_forward_cls_query_only). The masked-LM step: model_gflop's count.
double executed_gflop(const ModelConfig& c, const BertModel& m, const Args& a, int64_t masked_rows) {
  if (a.kase == "mlm") return model_gflop(c, m, a, masked_rows);
  const double C = static_cast<double>(c.hidden_size), I = static_cast<double>(c.intermediate_size);
  const double tokens = static_cast<double>(a.batch * a.seq), T = static_cast<double>(a.seq);
  const double B = static_cast<double>(a.batch), mult = a.kase == "infer" ? 2.0 : 6.0;
  double layer = 0, head = 0;  // parameters of one encoder layer, of the pooler and classifier
  for (const ParamEntry& e : m.table().entries()) {
    if (e.name.find(".encoder.layer.0.") != std::string::npos)
      layer += static_cast<double>(e.numel);
    else if (e.name.find(".encoder.") == std::string::npos &&
             e.name.find(".embeddings.") == std::string::npos)
      head += static_cast<double>(e.numel);
  }
  const double layers = static_cast<double>(m.layers_run());
  double flop = layers * (mult * layer * tokens + 2.0 * mult * T * C * tokens) + mult * head * B;
  if (m.last_forward_cls_rows_only())
    flop -=
        mult * (C * C + 2.0 * C * I + I + 2.0 * C) * (tokens - B);  // attention output, intermediate, output
  if (m.last_forward_cls_query_only())
    flop -= mult * (C * C + C + 2.0 * T * C) * (tokens - B);  // Q, and attention's two products per query
  return flop * 1e-9;
}

void run_model(const Args& a) {
  ModelConfig c = model_config(a.model);
  const HeadKind head = a.kase == "mlm" ? HeadKind::MASKED_LM : HeadKind::SEQUENCE_CLASSIFICATION;
  const int64_t B = a.batch, T = a.seq, N = B * T;
  Rng rng(11);
  std::vector<int32_t> ids(N), labels(head == HeadKind::MASKED_LM ? N : B, kIgnoreIndex);
  std::vector<uint8_t> mask(N, 1);
  for (auto& id : ids) id = static_cast<int32_t>(1 + rng.below(c.vocab_size - 1));
  int64_t masked = 0;
  if (head == HeadKind::MASKED_LM) {
    // Exactly round(frac * N) labelled positions, chosen by a partial Fisher-Yates shuffle.
    std::vector<int64_t> order(N);
    for (int64_t i = 0; i < N; ++i) order[i] = i;
    masked = static_cast<int64_t>(a.mask_frac * static_cast<double>(N) + 0.5);
    for (int64_t i = 0; i < masked; ++i) {
      std::swap(order[i], order[i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(N - i)))]);
      labels[order[i]] = static_cast<int32_t>(rng.below(c.vocab_size));
    }
  } else {
    for (auto& l : labels) l = static_cast<int32_t>(rng.below(2));
  }

  // The hardware's rate right now, in this process, with this thread count: this machine's speed drifts by
  // 10-15% over minutes (other tenants of the host), so "% of the sgemm rate" is computed against this
  // measurement taken seconds before the case rather than only against the run's first and last sgemm cases.
  // Taken before the model exists, so its buffers (37 MB) do not raise the case's peak RSS.
  std::vector<double> sg = sgemm_samples(1, 3);
  std::sort(sg.begin(), sg.end());
  const double sgemm_gflops = kSgemmGflop / sg[1] * 1e3;
  // The FMA peak with this case's thread count, measured the same way (the ceiling issue 12 sets targets
  // against: independent of OpenBLAS's kernel choice).
  const double fma_gflops = bench::fma_peak_gflops(a.threads);

  HeadOptions options;
  if (a.feature_layer >= 0) {
    options.features = FeatureKind::LAYER_CLS;
    options.layer = a.feature_layer;
  }
  BertModel m(c, head, options);
  m.init_weights(1);
  m.dropout_seed = 5;
  m.last_layer_cls_query_only = a.cls_query;
  if (a.precision == "bf16") m.matmul_precision = MatmulPrecision::BF16;
  if (a.precision == "int8") quantize_in_memory(m);
  const bool train = a.kase != "infer";
  // Inference reserves as bertfit predict / evaluate do (classifier.cpp): nothing kept between layers.
  m.reserve(B, T, head == HeadKind::MASKED_LM ? masked : -1,
            train ? ArenaUse::TRAINING : ArenaUse::INFERENCE);
  std::vector<ParamGroup> groups;  // HF Trainer's two groups: no weight decay on biases and LayerNorm weights
  for (const ParamEntry& e : m.table().entries())
    groups.push_back({e.offset, e.numel, 2e-5f, e.no_decay ? 0.0f : 0.01f});
  AlignedBuffer<float> mom, var;
  if (train) {
    mom.resize(m.buffer_floats());
    var.resize(m.buffer_floats());
  }
  const Batch batch{B, T, ids.data(), nullptr, mask.data(), train ? labels.data() : nullptr};
  std::vector<double> ms;
  float loss = 0;
  for (int r = -a.warmup; r < a.repeats; ++r) {
    const bool last = r == a.repeats - 1;
    if (a.profile && last) {
      Profiler::reset();
      Profiler::enable(true);
    }
    const auto t0 = Clock::now();
    if (train) {
      m.zero_grad();
      {
        BERTFIT_PROFILE_SCOPE("forward");
        loss = m.forward(batch, true, static_cast<uint64_t>(r + a.warmup));
      }
      {
        BERTFIT_PROFILE_SCOPE("backward");
        m.backward();
      }
      BERTFIT_PROFILE_SCOPE("optimizer");
      // The training loop's optimizer step: the norm, then AdamW with the clipping factor fused.
      const double norm = grad_norm(m.grads(), m.buffer_floats());
      adamw_step(m.params(), m.grads(), mom.data(), var.data(), groups, AdamWHyper{},
                 static_cast<int64_t>(r + a.warmup + 1), clip_coefficient(norm, 1.0));
    } else {
      BERTFIT_PROFILE_SCOPE("forward");
      m.forward(batch, false);
    }
    const double sec = seconds_since(t0);
    if (r >= 0) ms.push_back(sec * 1e3);
    if (a.profile && last) {
      Profiler::enable(false);
      std::fprintf(stderr, "%s", Profiler::report(sec).c_str());
    }
  }
  char extra[256];
  std::snprintf(extra, sizeof extra,
                ",\"loss\":%.6f,\"masked_rows\":%lld,\"sgemm_gflops\":%.1f,\"fma_gflops\":%.1f,"
                "\"precision\":\"%s\",\"executed_gflop\":%.4f",
                static_cast<double>(loss), static_cast<long long>(masked), sgemm_gflops, fma_gflops,
                a.precision.c_str(), executed_gflop(c, m, a, masked));
  print_result(a, ms, model_gflop(c, m, a, masked), extra);
}

// The FMA peak alone: each sample is one round of the chains on a.threads threads (kFma*Flop per thread);
// --setting avx2 forces the 256-bit chains on an AVX-512 CPU (the AVX2 path's own ceiling).
void run_fma(const Args& a) {
  const bool avx2 = a.setting == "avx2";
  const bool wide = use_avx512() && !avx2;
  const double gflop = (wide ? bench::kFmaAvx512Flop : bench::kFmaAvx2Flop) * a.threads / 1e9;
  std::vector<double> ms;
  for (int r = -a.warmup; r < a.repeats; ++r) {
    // Each sample the best of 3 rounds (~15 ms each), as the model cases' own probe: a peak is a maximum, and
    // single rounds on a shared host were seen to run at half speed for a while (docs/benchmarks.md).
    const double g = bench::fma_peak_gflops(a.threads, avx2, 3);
    if (r >= 0) ms.push_back(gflop / g * 1e3);
  }
  print_result(a, ms, gflop, std::string(",\"vector_bits\":") + (wide ? "512" : "256"));
}

// gemm_packed's register tile alone on L2-resident panels (gemm.h): the ceiling of our GEMM on this CPU, next
// to the FMA probe's. --setting avx2 caps the instruction set to AVX2 (the 6 x 16 tile).
void run_tile(const Args& a) {
  const bool avx2 = a.setting == "avx2";
  if (avx2) set_max_isa(Isa::AVX2);
  const int64_t rounds = use_avx512() ? 100 : 200;  // ~20-60 ms per run
  // Samples are the time one GFLOP takes at the measured rate (gflop = 1), so the report's rate is the
  // tile's.
  const double gflop = 1.0;
  std::vector<double> ms;
  for (int r = -a.warmup; r < a.repeats; ++r) {
    double best = 0;  // each sample the best of 3 runs, as the FMA probe's
    for (int i = 0; i < 3; ++i) best = std::max(best, gemm_packed_tile_gflops(a.threads, rounds));
    if (r >= 0) ms.push_back(gflop / best * 1e3);
  }
  print_result(a, ms, gflop, std::string(",\"vector_bits\":") + (use_avx512() ? "512" : "256"));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    set_num_threads(a.threads);
    if (a.kase == "sgemm")
      run_sgemm(a);
    else if (a.kase == "fma")
      run_fma(a);
    else if (a.kase == "tile")
      run_tile(a);
    else if (a.kase == "train" || a.kase == "infer" || a.kase == "mlm")
      run_model(a);
    else
      throw std::runtime_error("unknown case " + a.kase);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bertfit_engine_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

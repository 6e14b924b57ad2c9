// The serving benchmark's tool (bench/serve/run.sh):
//   make-model TOKENIZER_DIR SIZE OUT_DIR          a classifier of a named size (random weights: speed only)
//   offline MODEL TEXTS REPEATS                    what `bertfit predict` does in-process (batches of 32)
//                                                  and one forward pass per text (batch of one): texts/s, ms
//   shapes MODEL                                   forward time per text by batch shape (texts x tokens)
//   inproc MODEL TEXTS CONCURRENCY REQUESTS BUDGET  the batcher without HTTP (threads submitting one text
//   each) load PORT TEXTS CONCURRENCY REQUESTS [PID]     CONCURRENCY kept-alive clients posting one text per
//                                                  /predict request until REQUESTS are answered: throughput,
//                                                  p50 / p99 latency, errors, and the server's RSS before and
//                                                  after (PID)
//   forward MODEL TEXTS                            one forward pass per text, the texts in turn (as a
//                                                  server at concurrency 1 runs them): p50 ms
//   tokenize MODEL TEXTS                           a request's encoding (api::encode_inputs, as the server
//                                                  does) and the tokenizer alone, per text: p50 ms
// TEXTS: one text per line. Prints one line of key=value pairs per measurement.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/inference.h"
#include "bertfit/classifier.h"
#include "serve/batcher.h"
#include "train/hf_model_dir.h"
#include "train/model_factory.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace bertfit;

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  if (out.empty()) throw Error(path + ": no texts");
  return out;
}

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

long rss_kb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string l; std::getline(in, l);)
    if (l.rfind("VmRSS:", 0) == 0) return std::stol(l.substr(6));
  return -1;
}

int make_model(const std::string& tok_dir, const std::string& size, const std::string& out) {
  const Tokenizer tok = Tokenizer::from_directory(tok_dir);
  ModelConfig c = named_config(size, ModelFamily::BERT, tok, 512);
  c.id2label = {"rust", "science", "sound", "tex"};
  ClassifierSettings s;  // the demo's fine-tuning settings: 128 tokens, head+tail with a 32-token head
  s.max_seq_length = 128;
  s.head_length = 32;
  write_classifier_settings(&c, s);
  init_model_dir(c, HeadKind::SEQUENCE_CLASSIFICATION, tok, 1, out);
  return 0;
}

int offline(const std::string& model, const std::string& texts_path, int repeats) {
  const std::vector<std::string> texts = read_lines(texts_path);
  TextClassifier clf(model, {0, 32});
  clf.classify({texts[0]});  // warm-up: arena sized, pages touched
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    clf.classify(texts);
    rates.push_back(static_cast<double>(texts.size()) / seconds(t0, Clock::now()));
  }
  // One forward pass of one text, as a lone request runs it: encode once, then time the batch of one.
  Classifier c = load_classifier(model);
  api::BatchRunner runner(c);
  std::vector<double> fwd;
  std::vector<float> logits;
  int64_t tokens = 0;
  for (const auto& t : texts) {
    const auto ex = api::encode_inputs(c, {{t, "", false}}, 1);
    tokens += ex[0].length();
    runner.run(ex, &logits);  // reserve outside the timing
    const auto t0 = Clock::now();
    runner.run(ex, &logits);
    fwd.push_back(seconds(t0, Clock::now()));
  }
  std::printf(
      "offline model=%s texts=%zu mean_tokens=%.1f predict_texts_per_s_median=%.2f "
      "predict_texts_per_s_best=%.2f "
      "forward_ms_p50=%.3f forward_ms_mean=%.3f\n",
      model.c_str(), texts.size(), static_cast<double>(tokens) / static_cast<double>(texts.size()),
      percentile(rates, 50), *std::max_element(rates.begin(), rates.end()), 1000 * percentile(fwd, 50),
      1000 * std::accumulate(fwd.begin(), fwd.end(), 0.0) / static_cast<double>(fwd.size()));
  return 0;
}

int load(int port, const std::string& texts_path, int concurrency, int requests, int pid) {
  const std::vector<std::string> texts = read_lines(texts_path);
  std::vector<std::string> bodies;
  for (const auto& t : texts) bodies.push_back(nlohmann::json({{"inputs", t}, {"truncate", true}}).dump());
  std::atomic<int> next{0}, errors{0};
  std::vector<std::vector<double>> lat(static_cast<size_t>(concurrency));
  const long rss_before = pid > 0 ? rss_kb(pid) : -1;
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < concurrency; ++c)
    threads.emplace_back([&, c] {
      httplib::Client cl("127.0.0.1", port);
      cl.set_keep_alive(true);
      cl.set_tcp_nodelay(true);  // as curl: no Nagle wait between the request's header and body writes
      cl.set_read_timeout(600, 0);
      for (int i; (i = next++) < requests;) {
        const auto a = Clock::now();
        auto res = cl.Post("/predict", bodies[static_cast<size_t>(i) % bodies.size()], "application/json");
        if (!res || res->status != 200) ++errors;
        lat[static_cast<size_t>(c)].push_back(seconds(a, Clock::now()));
      }
    });
  for (auto& t : threads) t.join();
  const double wall = seconds(t0, Clock::now());
  std::vector<double> all;
  for (const auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::printf(
      "load concurrency=%d requests=%d errors=%d wall_s=%.2f requests_per_s=%.2f p50_ms=%.2f p99_ms=%.2f "
      "rss_before_kb=%ld rss_after_kb=%ld\n",
      concurrency, requests, errors.load(), wall, static_cast<double>(requests) / wall,
      1000 * percentile(all, 50), 1000 * percentile(all, 99), rss_before, pid > 0 ? rss_kb(pid) : -1);
  return errors ? 1 : 0;
}

// One pass per text in turn, each encoded beforehand, the arena sized once for the longest: what a server
// at concurrency 1 runs, without the server (the denominator of bench/serve/run.sh's wrk ratio).
int forward(const std::string& model, const std::string& texts_path) {
  const std::vector<std::string> texts = read_lines(texts_path);
  Classifier c = load_classifier(model);
  api::BatchRunner runner(c);
  std::vector<float> logits;
  std::string longest;
  for (int i = 0; i < 1000; ++i) longest += "a ";  // truncated to max_seq_length
  runner.run(api::encode_inputs(c, {{longest, "", false}}, 1), &logits);
  std::vector<std::vector<EncodedExample>> encoded;
  for (const auto& t : texts) encoded.push_back(api::encode_inputs(c, {{t, "", false}}, 1));
  std::vector<double> fwd;
  for (const auto& ex : encoded) {
    const auto a = Clock::now();
    runner.run(ex, &logits);
    fwd.push_back(seconds(a, Clock::now()));
  }
  std::printf("forward texts=%zu forward_ms_p50=%.3f\n", texts.size(), 1000 * percentile(fwd, 50));
  return 0;
}

// The request path's encoding of one text (what the server's tokenization metric times) against the
// tokenizer's own pass over it: their difference is truncation and bookkeeping; a ratio near 2 would mean the
// text is tokenized twice.
int tokenize(const std::string& model, const std::string& texts_path) {
  const std::vector<std::string> texts = read_lines(texts_path);
  Classifier c = load_classifier(model);
  std::vector<double> enc, tok;
  for (int round = 0; round < 5; ++round)
    for (const auto& t : texts) {
      auto a = Clock::now();
      const auto ex = api::encode_inputs(c, {{t, "", false}}, 1);
      enc.push_back(seconds(a, Clock::now()));
      a = Clock::now();
      const Encoding e = c.tokenizer->encode_sequence(t);
      tok.push_back(seconds(a, Clock::now()));
      if (ex.empty() || e.size() == 0) throw Error("empty encoding");
    }
  std::printf("tokenize texts=%zu encode_inputs_ms_p50=%.4f tokenizer_ms_p50=%.4f ratio=%.2f\n", texts.size(),
              1000 * percentile(enc, 50), 1000 * percentile(tok, 50),
              percentile(enc, 50) / percentile(tok, 50));
  return 0;
}

// Forward time per text by batch shape (n texts of L tokens): where the engine's per-position cost rises.
int shapes(const std::string& model) {
  Classifier c = load_classifier(model);
  {
    api::BatchRunner runner(c);
    std::vector<float> lg;
    for (int n : {4, 8, 16, 32})
      for (int L : {32, 64, 126}) {
        std::vector<api::TextInput> in;
        std::string t;
        for (int i = 0; i < L; ++i) t += "a ";
        for (int i = 0; i < n; ++i) in.push_back({t, "", false});
        const auto ex = api::encode_inputs(c, in, 1);
        runner.run(ex, &lg);
        const auto a = Clock::now();
        for (int r = 0; r < 5; ++r) runner.run(ex, &lg);
        std::printf("shape n=%d L=%d positions=%d s_per_batch=%.4f ms_per_text=%.3f\n", n, L, n * (L + 2),
                    seconds(a, Clock::now()) / 5, 1000 * seconds(a, Clock::now()) / 5 / n);
      }
  }
  return 0;
}

// The batcher without HTTP: CONCURRENCY threads each submitting one text at a time, a token budget BUDGET.
int inproc(const std::string& model, const std::string& texts_path, int concurrency, int requests,
           int budget) {
  const std::vector<std::string> texts = read_lines(texts_path);
  Classifier c = load_classifier(model);
  serve::Metrics m(128);
  serve::Batcher b(c, {budget, 0}, &m);
  std::atomic<int> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t)
    threads.emplace_back([&] {
      for (int i; (i = next++) < requests;)
        b.run(api::encode_inputs(c, {{texts[static_cast<size_t>(i) % texts.size()], "", false}}, 1));
    });
  for (auto& t : threads) t.join();
  const double wall = seconds(t0, Clock::now());
  std::printf("inproc budget=%d concurrency=%d requests_per_s=%.2f mean_batch=%.2f batch_s=%.4f\n", budget,
              concurrency, requests / wall,
              static_cast<double>(requests) / static_cast<double>(m.batch_size.count()),
              wall / static_cast<double>(m.batch_size.count()));
  return 0;
}

// Alternating measurements, so a machine whose load changes by the minute (other jobs) affects both sides
// alike. Per text: one forward pass in this process (batch of one, encoded beforehand, cold) and one /predict
// request to the server for the same text, back to back (never at the same time); p50 of each and the
// median of the per-text ratios. Then ROUNDS rounds of: the offline pass (predict's batches of 32 over the
// first THROUGHPUT_TEXTS texts) and the same texts as single requests at concurrency 32; each round's ratio.
int alternate(const std::string& model, int port, const std::string& texts_path, int latency_texts,
              int throughput_texts, int rounds) {
  const std::vector<std::string> all = read_lines(texts_path);
  Classifier c = load_classifier(model);
  api::BatchRunner runner(c);
  httplib::Client cl("127.0.0.1", port);
  cl.set_keep_alive(true);
  cl.set_tcp_nodelay(true);
  cl.set_read_timeout(600, 0);
  std::vector<double> fwd, served, ratio;
  std::vector<float> logits;
  // The arena sized once (the longest text), so no pass below allocates. Each pass is then timed cold as
  // the served one is: the other process's pass ran in between (a warm-up of the same text right before
  // would leave its weights in the shared cache and favour the in-process side).
  std::string longest;
  for (int i = 0; i < 1000; ++i) longest += "a ";  // truncated to max_seq_length
  runner.run(api::encode_inputs(c, {{longest, "", false}}, 1), &logits);
  for (int i = 0; i < latency_texts; ++i) {
    const std::string& t = all[static_cast<size_t>(i) % all.size()];
    const auto ex = api::encode_inputs(c, {{t, "", false}}, 1);
    auto a = Clock::now();
    runner.run(ex, &logits);
    fwd.push_back(seconds(a, Clock::now()));
    const std::string body = nlohmann::json({{"inputs", t}, {"truncate", true}}).dump();
    a = Clock::now();
    auto res = cl.Post("/predict", body, "application/json");
    served.push_back(seconds(a, Clock::now()));
    if (!res || res->status != 200) throw Error("request failed");
    ratio.push_back(served.back() / fwd.back());
  }
  // The server's own account of those requests (its metrics' means over the whole run so far; the latency
  // phase is all it has served when the server was started for this run): where the time on top of the
  // forward pass goes.
  auto metric_mean = [&](const std::string& name) {
    auto res = cl.Get("/metrics");
    if (!res) return -1.0;
    double sum = 0, count = 0;
    std::istringstream in(res->body);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name + "_sum ", 0) == 0) sum = std::stod(line.substr(name.size() + 5));
      if (line.rfind(name + "_count ", 0) == 0) count = std::stod(line.substr(name.size() + 7));
    }
    return count > 0 ? sum / count : -1.0;
  };
  std::printf(
      "alternate latency texts=%d forward_ms_p50=%.3f served_ms_p50=%.3f p50_ratio=%.3f "
      "median_pair_ratio=%.3f server_request_ms_mean=%.3f server_tokenization_ms_mean=%.3f "
      "server_queue_ms_mean=%.3f server_inference_ms_mean=%.3f\n",
      latency_texts, 1000 * percentile(fwd, 50), 1000 * percentile(served, 50),
      percentile(served, 50) / percentile(fwd, 50), percentile(ratio, 50),
      1000 * metric_mean("te_request_duration"), 1000 * metric_mean("te_request_tokenization_duration"),
      1000 * metric_mean("te_request_queue_duration"), 1000 * metric_mean("te_request_inference_duration"));
  std::vector<std::string> texts(all.begin(), all.begin() + std::min<size_t>(all.size(), throughput_texts));
  std::vector<std::string> bodies;
  for (const auto& t : texts) bodies.push_back(nlohmann::json({{"inputs", t}, {"truncate", true}}).dump());
  TextClassifier clf(model, {0, 32});
  clf.classify(texts);  // warm-up
  for (int r = 0; r < rounds; ++r) {
    auto a = Clock::now();
    clf.classify(texts);
    const double offline = static_cast<double>(texts.size()) / seconds(a, Clock::now());
    std::atomic<int> next{0}, errors{0};
    a = Clock::now();
    std::vector<std::thread> threads;
    for (int k = 0; k < 32; ++k)
      threads.emplace_back([&] {
        httplib::Client one("127.0.0.1", port);
        one.set_keep_alive(true);
        one.set_tcp_nodelay(true);
        one.set_read_timeout(600, 0);
        for (int i; (i = next++) < static_cast<int>(bodies.size());) {
          auto res = one.Post("/predict", bodies[static_cast<size_t>(i)], "application/json");
          if (!res || res->status != 200) ++errors;
        }
      });
    for (auto& t : threads) t.join();
    const double online = static_cast<double>(texts.size()) / seconds(a, Clock::now());
    std::printf(
        "alternate round=%d texts=%zu offline_texts_per_s=%.2f served_c32_texts_per_s=%.2f ratio=%.3f "
        "errors=%d\n",
        r, texts.size(), offline, online, online / offline, errors.load());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "make-model" && argc == 5) return make_model(argv[2], argv[3], argv[4]);
    if (cmd == "offline" && argc == 5) return offline(argv[2], argv[3], std::stoi(argv[4]));
    if (cmd == "alternate" && argc == 8)
      return alternate(argv[2], std::stoi(argv[3]), argv[4], std::stoi(argv[5]), std::stoi(argv[6]),
                       std::stoi(argv[7]));
    if (cmd == "shapes" && argc == 3) return shapes(argv[2]);
    if (cmd == "tokenize" && argc == 4) return tokenize(argv[2], argv[3]);
    if (cmd == "forward" && argc == 4) return forward(argv[2], argv[3]);
    if (cmd == "inproc" && argc == 7)
      return inproc(argv[2], argv[3], std::stoi(argv[4]), std::stoi(argv[5]), std::stoi(argv[6]));
    if (cmd == "load" && (argc == 6 || argc == 7))
      return load(std::stoi(argv[2]), argv[3], std::stoi(argv[4]), std::stoi(argv[5]),
                  argc == 7 ? std::stoi(argv[6]) : 0);
    std::fprintf(stderr, "usage: see the header of bench/serve/serve_bench.cpp\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serve_bench: %s\n", e.what());
    return 1;
  }
}

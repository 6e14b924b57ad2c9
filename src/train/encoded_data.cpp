#include "train/encoded_data.h"

#include <algorithm>
#include <cstdio>

#include "bertfit/error.h"

namespace bertfit {

int64_t EncodedExample::length() const {
  int64_t n = 0;
  for (const auto& s : seqs) n = std::max<int64_t>(n, static_cast<int64_t>(s.ids.size()));
  return n;
}

namespace {
EncodedSequence to_sequence(const Encoding& e) {
  return {e.ids, e.type_ids};
}
}  // namespace

std::vector<EncodedExample> encode_examples(const Tokenizer& tok, const Dataset& ds, const LabelMap* labels,
                                            const EncodeOptions& options, int threads) {
  const int64_t n = static_cast<int64_t>(ds.examples.size());
  std::vector<EncodedExample> out(static_cast<size_t>(n));
  // Labels first, serially, so the first bad row is the one reported.
  if (labels && ds.has_labels) {
    for (int64_t i = 0; i < n; ++i) {
      const Example& ex = ds.examples[i];
      try {
        out[i].label = static_cast<int32_t>(labels->id(ex.label));
      } catch (const Error& e) {
        throw FormatError(ds.path + ":" + std::to_string(ex.line) + ": label \"" + ex.label +
                          "\" does not occur in the training data (" + e.what() + ")");
      }
    }
  }
  std::string error;
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads > 0 ? threads : 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      const Example& ex = ds.examples[i];
      EncodedExample& e = out[i];
      if (!ex.text_pair.empty()) {
        e.tokens =
            static_cast<int64_t>(tok.encode(ex.text, false).size() + tok.encode(ex.text_pair, false).size());
        e.seqs.push_back(
            to_sequence(encode_pair_truncated(tok, ex.text, ex.text_pair, options.max_seq_length)));
      } else {
        e.tokens = static_cast<int64_t>(tok.encode(ex.text, false).size());
        if (options.max_chunks > 0) {
          for (const Encoding& c : encode_chunks(tok, ex.text, options.max_seq_length, options.max_chunks))
            e.seqs.push_back(to_sequence(c));
        } else {
          e.seqs.push_back(to_sequence(encode_truncated(tok, ex.text, options.max_seq_length,
                                                        options.truncation, options.head_length)));
        }
      }
    } catch (const std::exception& ex) {
#pragma omp critical
      if (error.empty()) error = ds.path + ":" + std::to_string(ds.examples[i].line) + ": " + ex.what();
    }
  }
  if (!error.empty()) throw FormatError(error);
  return out;
}

LengthStats length_stats(const std::vector<EncodedExample>& examples, int64_t limit) {
  LengthStats s;
  s.count = static_cast<int64_t>(examples.size());
  if (examples.empty()) return s;
  std::vector<int64_t> v;
  v.reserve(examples.size());
  double sum = 0;
  int64_t over = 0;
  for (const auto& e : examples) {
    v.push_back(e.tokens);
    sum += static_cast<double>(e.tokens);
    over += e.tokens > limit;
  }
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.p50 = v[v.size() / 2];
  s.p90 = v[std::min(v.size() - 1, v.size() * 90 / 100)];
  s.p95 = v[std::min(v.size() - 1, v.size() * 95 / 100)];
  s.mean = sum / static_cast<double>(v.size());
  s.over_limit = static_cast<double>(over) / static_cast<double>(v.size());
  return s;
}

std::string format_length_stats(const LengthStats& s, int64_t limit) {
  char buf[256];
  std::snprintf(
      buf, sizeof buf,
      "tokens per text: mean %.1f, median %lld, p90 %lld, p95 %lld, min %lld, max %lld; %.1f%% over %lld",
      s.mean, static_cast<long long>(s.p50), static_cast<long long>(s.p90), static_cast<long long>(s.p95),
      static_cast<long long>(s.min), static_cast<long long>(s.max), 100.0 * s.over_limit,
      static_cast<long long>(limit));
  return buf;
}

}  // namespace bertfit

#include "train/encoded_data.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "bertfit/error.h"
#include "train/progress.h"

namespace bertfit {

Dataset read_data_file(const std::string& path, data::DatasetSpec spec) {
  spec.on_progress = file_read_progress(path);
  return data::read_dataset(path, spec);
}

int64_t EncodedExample::length() const {
  int64_t n = 0;
  for (const auto& s : seqs) n = std::max<int64_t>(n, static_cast<int64_t>(s.ids.size()));
  return n;
}

int resolve_head_length(int head_length, int max_seq_length, int specials) {
  if (head_length >= 0) return head_length;
  const int room = std::max(max_seq_length - specials, 0);
  return (room * 128 + 255) / 510;  // round(room / 510 * 128)
}

void check_encode_options(const Tokenizer& tok, const EncodeOptions& options,
                          const std::string& length_option) {
  if (options.truncation != Truncation::HEAD_TAIL || options.max_chunks > 0) return;
  const int room = options.max_seq_length - static_cast<int>(tok.num_special_tokens(false));
  if (options.head_length >= room)
    throw ConfigError("--head_length " + std::to_string(options.head_length) +
                      " leaves no room for the tail: " + length_option + " " +
                      std::to_string(options.max_seq_length) + " holds " + std::to_string(room) +
                      " text tokens next to the special tokens, so head+tail " +
                      "would keep the head only; give a --head_length below " + std::to_string(room) +
                      " or --truncation head");
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
    const std::vector<int64_t> ids = labels->encode(ds);  // FormatError "<file>:<line>: unknown label ..."
    for (int64_t i = 0; i < n; ++i) out[i].label = static_cast<int32_t>(ids[i]);
  }
  std::string error;  // the first failure a thread reports
  std::mutex error_mutex;
  // Large files show a progress display (rate, ETA) while they are tokenized.
  parallel_for_with_progress("tokenize " + ds.path, "texts", n, threads, [&](int64_t i) {
    try {
      const Example& ex = ds.examples[i];
      EncodedExample& e = out[i];
      // Each text is tokenized once: its full length is the statistics' (and the service's limit check),
      // and the same tokens are then cut or chunked (tokenizing dominated encoding when it ran twice).
      Encoding seq = tok.encode_sequence(ex.text);
      if (!ex.text_pair.empty()) {
        Encoding second = tok.encode_sequence(ex.text_pair, true);
        e.tokens = static_cast<int64_t>(seq.size() + second.size());
        e.seqs.push_back(
            to_sequence(truncate_pair(tok, std::move(seq), std::move(second), options.max_seq_length)));
      } else {
        e.tokens = static_cast<int64_t>(seq.size());
        if (options.max_chunks > 0) {
          for (const Encoding& c : chunk_sequence(tok, seq, options.max_seq_length, options.max_chunks))
            e.seqs.push_back(to_sequence(c));
        } else {
          e.seqs.push_back(to_sequence(truncate_sequence(tok, std::move(seq), options.max_seq_length,
                                                         options.truncation, options.head_length)));
        }
      }
    } catch (const std::exception& ex) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (error.empty()) error = data::where(ds, ds.examples[i]) + ": " + ex.what();
    }
  });
  if (!error.empty()) throw FormatError(error);
  return out;
}

LengthStats length_stats(const std::vector<EncodedExample>& examples, int64_t limit) {
  std::vector<int64_t> tokens;
  tokens.reserve(examples.size());
  for (const auto& e : examples) tokens.push_back(e.tokens);
  return data::length_stats(std::move(tokens), limit);
}

std::string format_length_stats(const LengthStats& s, int64_t limit) {
  char buf[256];
  std::snprintf(
      buf, sizeof buf,
      "tokens per text: mean %.1f, median %lld, p90 %lld, p95 %lld, min %lld, max %lld; %.1f%% over %lld",
      s.mean, static_cast<long long>(s.p50), static_cast<long long>(s.p90), static_cast<long long>(s.p95),
      static_cast<long long>(s.min), static_cast<long long>(s.max), 100.0 * std::max(0.0, s.share_over_limit),
      static_cast<long long>(limit));
  return buf;
}

}  // namespace bertfit

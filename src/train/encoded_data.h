// Classification examples turned into token ids, once, before training: truncation (head / tail / head+tail)
// or chunking for hierarchical pooling, with the statistics printed before training.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bertfit/tokenizer.h"
#include "data/dataset.h"
#include "data/labels.h"

namespace bertfit {

using data::Dataset;
using data::Example;
using data::LabelMap;

struct EncodedSequence {
  std::vector<int32_t> ids, types;
};

struct EncodedExample {
  std::vector<EncodedSequence> seqs;  // one sequence, or the chunks of a long document
  int32_t label = -100;               // -100: unlabelled
  int64_t tokens = 0;                 // content tokens before truncation (statistics)
  int64_t length() const;             // longest sequence (for length-grouped batching)
};

struct EncodeOptions {
  int max_seq_length = 512;
  Truncation truncation = Truncation::HEAD_TAIL;
  int head_length = 128;
  int max_chunks = 0;  // > 0: split into chunks of max_seq_length (hierarchical), at most this many
};

// Encodes every example (in parallel; the order is kept). labels, when given, maps ex.label to its id; an
// unknown label is a FormatError naming the file and line.
std::vector<EncodedExample> encode_examples(const Tokenizer& tok, const Dataset& ds, const LabelMap* labels,
                                            const EncodeOptions& options, int threads);

struct LengthStats {
  int64_t count = 0, min = 0, max = 0, p50 = 0, p90 = 0, p95 = 0;
  double mean = 0;
  double over_limit = 0;  // share of examples longer than the model's limit (content tokens)
};
LengthStats length_stats(const std::vector<EncodedExample>& examples, int64_t limit);
std::string format_length_stats(const LengthStats& s, int64_t limit);

}  // namespace bertfit

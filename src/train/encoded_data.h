// Classification examples turned into token ids, once, before training: truncation (head / tail / head+tail)
// or chunking for hierarchical pooling, with the statistics printed before training.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bertfit/tokenizer.h"
#include "data/dataset.h"
#include "data/labels.h"
#include "data/summary.h"

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
  // problem_type multi_label_classification: one 0 / 1 per label; regression: the value (label is then 0
  // for a labelled example). Empty for single-label classification.
  std::vector<float> targets;
  int64_t tokens = 0;      // content tokens before truncation (statistics)
  int64_t length() const;  // longest sequence (for length-grouped batching)
};

struct EncodeOptions {
  int max_seq_length = 512;
  Truncation truncation = Truncation::HEAD_TAIL;
  int head_length = 128;
  int max_chunks = 0;  // > 0: split into chunks of max_seq_length (hierarchical), at most this many
};

// head_length -1 (finetune's default) becomes a quarter of the text tokens of a sequence of max_seq_length
// with `specials` special tokens, rounded: the paper's 128 of 510 at 512. Other values are returned as given.
// data::read_dataset with a progress display for large files (train/progress.h's file_read_progress): what
// every command that reads a data file calls.
Dataset read_data_file(const std::string& path, data::DatasetSpec spec);

int resolve_head_length(int head_length, int max_seq_length, int specials);

// Throws ConfigError naming --head_length when head+tail truncation would keep the head only: a head_length
// that leaves no room for the tail (at or above max_seq_length minus the tokenizer's special tokens). For
// the options of a new run (finetune, tokenize); a trained model's recorded settings are applied as they
// were (encode_for).
// `length_option` names max_seq_length's option in the message (tokenize calls it --max_length).
void check_encode_options(const Tokenizer& tok, const EncodeOptions& options,
                          const std::string& length_option = "--max_seq_length");

// Encodes every example (in parallel; the order is kept). labels, when given,
// maps ex.label to its id; a label not in it is a FormatError naming the file, the line and the label (it
// would otherwise score as a wrong prediction of every class and zero every metric).
std::vector<EncodedExample> encode_examples(const Tokenizer& tok, const Dataset& ds, const LabelMap* labels,
                                            const EncodeOptions& options, int threads);

// Token-length statistics use the data layer's LengthStats (nearest-rank percentiles), so `bertfit
// finetune`'s token line and `bertfit dataset`'s summaries count percentiles by one rule.
using data::LengthStats;
// Content tokens (before truncation) per example; `limit` > 0 fills share_over_limit.
LengthStats length_stats(const std::vector<EncodedExample>& examples, int64_t limit);
std::string format_length_stats(const LengthStats& s, int64_t limit);

}  // namespace bertfit

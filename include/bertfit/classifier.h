// The C++ API of a fine-tuned classifier: load a directory written by `bertfit finetune` once, then classify
// batches of texts (or text pairs) from any number of threads. Texts are encoded and scored exactly as
// `bertfit predict` does (the model's recorded truncation, pairs and chunking; softmax probabilities).
//
//   #include <bertfit/classifier.h>
//   bertfit::TextClassifier clf("out/checkpoint-best");
//   for (const auto& r : clf.classify({"a text", "another"}, /*top_k=*/3))
//     std::cout << r.label << " " << r.probability << "\n";
//
// Models: single-label classifiers (multi-label and regression models are refused by the constructor, with a
// ConfigError; `bertfit predict` labels them). An empty text is classified as the special tokens alone, as
// HF's pipeline does (`bertfit serve` refuses one, as TEI does).
// Thread safety: every const method may be called concurrently; texts are encoded in the calling thread and
// the model runs one batch at a time (callers take turns), on the library's thread pool.
// Errors: bertfit::Error subclasses (bertfit/error.h) naming the file or input at fault; nothing is printed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bertfit/error.h"

namespace bertfit {

struct LabelScore {
  int64_t id = 0;
  std::string label;
  float probability = 0;
};

struct ClassifierResult {
  int64_t label_id = 0;              // the most probable label (the first on ties, as predict)
  std::string label;                 // its name (config.json's id2label)
  float probability = 0;             // its probability
  std::vector<float> probabilities;  // softmax over the logits, one per label id
  std::vector<float> logits;         // the model's raw scores
  std::vector<LabelScore> top;       // the top_k labels, most probable first
};

struct ClassifierOptions {
  int threads = 0;      // > 0: the library's thread count (a process-wide setting); 0: leave it as it is
  int batch_size = 32;  // texts per forward pass (length-sorted batches, as predict's --batch_size)
};

class TextClassifier {
 public:
  // Loads model_dir (config.json with id2label, the weights, the tokenizer). Throws FormatError /
  // ConfigError naming the file when it is not a fine-tuned classifier.
  explicit TextClassifier(const std::string& model_dir, const ClassifierOptions& options = {});
  ~TextClassifier();
  TextClassifier(TextClassifier&&) noexcept;
  TextClassifier& operator=(TextClassifier&&) noexcept;
  TextClassifier(const TextClassifier&) = delete;
  TextClassifier& operator=(const TextClassifier&) = delete;

  // Label names by id.
  const std::vector<std::string>& labels() const;
  // Tokens per sequence the model was fine-tuned with (longer texts are truncated or chunked as it was).
  int64_t max_seq_length() const;

  // One result per text, in order. top_k: how many labels each result's `top` lists (clamped to the number
  // of labels; 0: none).
  std::vector<ClassifierResult> classify(const std::vector<std::string>& texts, int top_k = 1) const;
  // Sentence pairs (for models fine-tuned on pairs).
  std::vector<ClassifierResult> classify_pairs(const std::vector<std::pair<std::string, std::string>>& pairs,
                                               int top_k = 1) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bertfit

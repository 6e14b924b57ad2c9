#include "api/inference.h"

#include <algorithm>
#include <numeric>

#include "bertfit/error.h"
#include "data/dataset.h"

namespace bertfit::api {

std::vector<EncodedExample> encode_inputs(const Classifier& c, const std::vector<TextInput>& inputs,
                                          int threads) {
  data::Dataset ds;
  ds.path = "request";
  ds.examples.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    data::Example& e = ds.examples[i];
    e.text = inputs[i].text;
    e.text_pair = inputs[i].text_pair;
    e.line = static_cast<int64_t>(i) + 1;  // errors name the input ("request:3: ...")
    // encode_examples takes an empty second text for a single text; a pair's empty half is a pair all the
    // same. An empty text is encoded as the special tokens alone (the C++ API classifies it, as HF's
    // pipeline; serve refuses it before encoding, as TEI).
    if (inputs[i].pair) ds.has_pairs = true;
  }
  return encode_for(c, ds, threads);
}

int64_t max_input_tokens(const Classifier& c) {
  const int64_t per_chunk = c.settings.max_seq_length;
  if (c.settings.max_chunks <= 0) return per_chunk;
  // Each chunk carries its own special tokens: max_chunks chunks of (per_chunk - specials) content tokens.
  const int64_t specials = c.tokenizer->num_special_tokens(false);
  return c.settings.max_chunks * (per_chunk - specials) + specials;
}

int64_t input_tokens(const Classifier& c, const EncodedExample& e, bool pair) {
  return e.tokens + c.tokenizer->num_special_tokens(pair);
}

int64_t padded_tokens(int64_t docs, int64_t max_chunks, int64_t max_length) {
  return docs * std::max<int64_t>(1, max_chunks) * max_length;
}

int64_t BatchRunner::num_labels() const {
  return c_.model->config().num_labels();
}

void BatchRunner::run(const std::vector<EncodedExample>& examples, std::vector<float>* logits) {
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t NL = num_labels();
  logits->assign(static_cast<size_t>(n * NL), 0.0f);
  if (n == 0) return;
  indices_.resize(static_cast<size_t>(n));
  std::iota(indices_.begin(), indices_.end(), 0);
  const BatchShape shape = batch_shape(examples, indices_);
  const int64_t rows = shape.rows(), length = shape.length;
  if (rows > reserved_rows_ || length > reserved_length_) {
    int64_t r = std::max(rows, reserved_rows_), t = std::max(length, reserved_length_);
    // The union of the shapes seen keeps the arena from being resized back and forth, unless it would hold
    // far more positions than any one batch does (many short texts, then one long one).
    if (r * t > std::max(keep_positions, rows * length)) r = rows, t = length;
    c_.model->reserve(r, t, -1, ArenaUse::INFERENCE);
    reserved_rows_ = r;
    reserved_length_ = t;
  }
  const Batch b = builder_.build(examples, indices_, c_.tokenizer->pad_id(), /*with_labels=*/false);
  c_.model->forward(b, /*training=*/false);
  const float* out = c_.model->logits();
  std::copy(out, out + n * NL, logits->begin());
}

}  // namespace bertfit::api

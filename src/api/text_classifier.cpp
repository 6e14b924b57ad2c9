// include/bertfit/classifier.h over the fine-tuned classifier of src/train (load_classifier) and the batch
// runner of api/inference.h: the same encoding and the same length-sorted batches as `bertfit predict`.
#include "bertfit/classifier.h"

#include <algorithm>
#include <mutex>

#include "api/inference.h"
#include "core/threading.h"
#include "kernels/cross_entropy.h"

namespace bertfit {

class TextClassifier::Impl {
 public:
  Impl(const std::string& dir, const ClassifierOptions& o)
      : c(load_classifier(dir)), runner(c), batch_size(std::max(1, o.batch_size)) {
    labels = c.labels.id2label();
  }

  std::vector<ClassifierResult> classify(const std::vector<api::TextInput>& inputs, int top_k) {
    // Encoding needs no lock (the tokenizer is immutable); only the model's arena is shared.
    const std::vector<EncodedExample> ex = api::encode_inputs(c, inputs, 1);
    const int64_t NL = runner.num_labels();
    std::vector<float> logits(ex.size() * static_cast<size_t>(NL));
    {
      std::lock_guard<std::mutex> lock(model_mutex);
      std::vector<EncodedExample> batch;
      std::vector<float> out;
      for (const auto& idx : plan_eval_batches(ex, batch_size)) {
        batch.clear();
        for (int64_t i : idx) batch.push_back(ex[i]);
        runner.run(batch, &out);
        for (size_t r = 0; r < idx.size(); ++r)
          std::copy(out.begin() + static_cast<int64_t>(r) * NL,
                    out.begin() + static_cast<int64_t>(r + 1) * NL, logits.begin() + idx[r] * NL);
      }
    }
    std::vector<ClassifierResult> results(ex.size());
    const size_t k = static_cast<size_t>(std::clamp<int64_t>(top_k, 0, NL));
    for (size_t i = 0; i < ex.size(); ++i) {
      ClassifierResult& r = results[i];
      r.logits.assign(logits.begin() + static_cast<int64_t>(i) * NL,
                      logits.begin() + static_cast<int64_t>(i + 1) * NL);
      r.probabilities.resize(static_cast<size_t>(NL));
      softmax_rows(r.probabilities.data(), r.logits.data(), 1, NL);  // predict's softmax
      r.label_id = std::max_element(r.probabilities.begin(), r.probabilities.end()) - r.probabilities.begin();
      r.label = labels[static_cast<size_t>(r.label_id)];
      r.probability = r.probabilities[static_cast<size_t>(r.label_id)];
      std::vector<int64_t> order(static_cast<size_t>(NL));
      for (int64_t j = 0; j < NL; ++j) order[static_cast<size_t>(j)] = j;
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return r.probabilities[static_cast<size_t>(a)] > r.probabilities[static_cast<size_t>(b)];
      });
      for (size_t j = 0; j < k; ++j)
        r.top.push_back({order[j], labels[static_cast<size_t>(order[j])],
                         r.probabilities[static_cast<size_t>(order[j])]});
    }
    return results;
  }

  Classifier c;
  api::BatchRunner runner;
  int batch_size;
  std::vector<std::string> labels;
  std::mutex model_mutex;
};

TextClassifier::TextClassifier(const std::string& model_dir, const ClassifierOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  impl_ = std::make_unique<Impl>(model_dir, options);
}
TextClassifier::~TextClassifier() = default;
TextClassifier::TextClassifier(TextClassifier&&) noexcept = default;
TextClassifier& TextClassifier::operator=(TextClassifier&&) noexcept = default;

const std::vector<std::string>& TextClassifier::labels() const {
  return impl_->labels;
}

int64_t TextClassifier::max_seq_length() const {
  return impl_->c.settings.max_seq_length;
}

std::vector<ClassifierResult> TextClassifier::classify(const std::vector<std::string>& texts,
                                                       int top_k) const {
  std::vector<api::TextInput> in(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) in[i].text = texts[i];
  return impl_->classify(in, top_k);
}

std::vector<ClassifierResult> TextClassifier::classify_pairs(
    const std::vector<std::pair<std::string, std::string>>& pairs, int top_k) const {
  std::vector<api::TextInput> in(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) in[i] = {pairs[i].first, pairs[i].second, true};
  return impl_->classify(in, top_k);
}

}  // namespace bertfit

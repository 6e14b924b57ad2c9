#include "train/classifier.h"

#include <algorithm>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "train/quantized_model.h"

namespace bertfit {

Classifier load_classifier(const std::string& dir) {
  Classifier c;
  const ModelConfig config = read_config_json(dir + "/config.json");
  if (config.problem_type != ProblemType::SINGLE_LABEL)
    throw ConfigError(dir + ": problem_type " + problem_type_name(config.problem_type) +
                      ": evaluate and predict serve single-label classifiers (for multi-label and regression "
                      "models, bertfit finetune --do_predict labels a test file)");
  c.settings = read_classifier_settings(config);
  if (has_quantization_config(config)) {  // bertfit quantize's int8 directory (train/quantized_model.h)
    c.model = load_int8_model(dir, config, HeadKind::SEQUENCE_CLASSIFICATION, c.settings.head);
  } else {
    LoadedModel m = load_pretrained(dir, HeadKind::SEQUENCE_CLASSIFICATION, c.settings.head, &config);
    if (!m.initialized.empty())
      throw FormatError(dir + ": not a fine-tuned classifier, the checkpoint lacks " + m.initialized.front() +
                        " (fine-tune it first with bertfit finetune)");
    c.model = std::move(m.model);
  }
  c.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_directory(dir));
  c.labels = LabelMap::from_id2label(config.id2label);
  return c;
}

std::vector<EncodedExample> encode_for(const Classifier& c, const Dataset& ds, int threads) {
  EncodeOptions o;
  o.max_seq_length = c.settings.max_seq_length;
  o.truncation = parse_truncation(c.settings.truncation);
  o.head_length = c.settings.head_length;
  o.max_chunks = c.settings.max_chunks;
  return encode_examples(*c.tokenizer, ds, ds.has_labels ? &c.labels : nullptr, o, threads);
}

EvalOutput classify(Classifier& c, const std::vector<EncodedExample>& examples, int batch_size,
                    const std::string& progress_name) {
  int64_t longest = 1, max_k = 1;
  for (const auto& e : examples) {
    longest = std::max(longest, e.length());
    max_k = std::max<int64_t>(max_k, static_cast<int64_t>(e.seqs.size()));
  }
  // No larger than the data needs: a --batch_size above the number of examples reserves only what runs.
  const int64_t batch =
      std::max<int64_t>(1, std::min<int64_t>(batch_size, static_cast<int64_t>(examples.size())));
  c.model->reserve(batch * max_k, longest, -1, ArenaUse::INFERENCE);
  return run_evaluation(*c.model, examples, batch_size, c.tokenizer->pad_id(), progress_name);
}

}  // namespace bertfit

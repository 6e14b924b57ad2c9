#include "train/classifier.h"

#include <algorithm>
#include <cstdio>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "train/problem_type.h"
#include "train/quantized_model.h"

namespace bertfit {

Classifier load_classifier(const std::string& dir, bool any_problem_type) {
  Classifier c;
  const ModelConfig config = read_config_json(dir + "/config.json");
  if (!any_problem_type && config.problem_type != ProblemType::SINGLE_LABEL)
    throw ConfigError(
        dir + ": problem_type " + problem_type_name(config.problem_type) +
        ": serving, quantization and the C++ API (TextClassifier) take single-label classifiers (they answer "
        "with class "
        "probabilities); bertfit evaluate, predict and ensemble take multi-label and regression models");
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
  const bool single = c.problem() == ProblemType::SINGLE_LABEL;
  auto ex = encode_examples(*c.tokenizer, ds, single && ds.has_labels ? &c.labels : nullptr, o, threads);
  if (!single) set_problem_targets(ds, c.problem(), &c.labels, &ex);
  return ex;
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
  return run_evaluation(*c.model, examples, batch_size, c.tokenizer->pad_id(), progress_name, 0,
                        c.settings.multi_label_threshold);
}

std::string prediction_text(const Classifier& c, const EvalOutput& e, size_t i) {
  if (c.problem() == ProblemType::SINGLE_LABEL) return c.labels.label(e.predictions[i]);
  const size_t NL = static_cast<size_t>(c.labels.size());
  return format_problem_prediction(c.problem(), e.probs.data() + i * NL, c.labels,
                                   c.settings.multi_label_threshold);
}

nlohmann::ordered_json problem_evaluation_json(const Classifier& c, const EvalOutput& e) {
  nlohmann::ordered_json j;
  j["problem_type"] = problem_type_name(c.problem());
  j["loss"] = e.loss;
  if (c.problem() == ProblemType::MULTI_LABEL) {
    const MultiLabelMetrics& m = e.multi_label;
    j["exact_match"] = m.exact_match;
    j["accuracy"] = m.exact_match;  // sklearn's accuracy on label sets, as finetune's eval_accuracy
    j["micro_f1"] = m.micro_f1;
    j["macro_f1"] = m.macro_f1;
    j["micro_precision"] = m.micro_precision;
    j["micro_recall"] = m.micro_recall;
    j["threshold"] = c.settings.multi_label_threshold;
    nlohmann::ordered_json per;
    for (int64_t k = 0; k < c.labels.size() && k < static_cast<int64_t>(m.f1.size()); ++k)
      per[c.labels.label(k)] = {{"f1", m.f1[static_cast<size_t>(k)]}};
    j["per_label"] = per;
  } else if (c.problem() == ProblemType::REGRESSION) {
    j["mse"] = e.regression.mse;
    j["pearson"] = e.regression.pearson;
    j["spearman"] = e.regression.spearman;
  }
  return j;
}

std::string describe_problem_evaluation(const Classifier& c, const EvalOutput& e) {
  char buf[256];
  if (c.problem() == ProblemType::REGRESSION) {
    std::snprintf(buf, sizeof buf, "mse %.4f, pearson %.4f, spearman %.4f, loss %.4f", e.regression.mse,
                  e.regression.pearson, e.regression.spearman, e.loss);
    return buf;
  }
  const MultiLabelMetrics& m = e.multi_label;
  std::snprintf(buf, sizeof buf,
                "exact match %.4f, micro-F1 %.4f, macro-F1 %.4f, micro precision %.4f, micro recall %.4f, "
                "loss %.4f (labels above %g)",
                m.exact_match, m.micro_f1, m.macro_f1, m.micro_precision, m.micro_recall, e.loss,
                c.settings.multi_label_threshold);
  std::string s = buf;
  for (int64_t k = 0; k < c.labels.size() && k < static_cast<int64_t>(m.f1.size()); ++k) {
    std::snprintf(buf, sizeof buf, "\n  %-20s F1 %.4f", c.labels.label(k).c_str(),
                  m.f1[static_cast<size_t>(k)]);
    s += buf;
  }
  return s;
}

}  // namespace bertfit

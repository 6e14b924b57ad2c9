#include "train/finetune.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "core/atomic_file.h"
#include "core/rng.h"
#include "core/threading.h"
#include "data/split.h"
#include "data/submission.h"
#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "kernels/cross_entropy.h"
#include "train/batching.h"
#include "train/classifier.h"
#include "train/cross_validation.h"
#include "train/hf_model_dir.h"
#include "train/multitask.h"
#include "train/optimizer.h"
#include "train/problem_type.h"
#include "train/progress.h"
#include "train/pseudo_labels.h"
#include "train/report_json.h"
#include "train/training_loop.h"

namespace fs = std::filesystem;

namespace bertfit {

EvalOutput run_evaluation(BertModel& model, const std::vector<EncodedExample>& examples, int batch_size,
                          int32_t pad_id, const std::string& progress_name, int64_t pad_to_length,
                          double multi_label_threshold) {
  EvalOutput out;
  out.problem = model.config().problem_type;
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t NL = model.config().num_labels();
  out.has_labels = n > 0 && std::all_of(examples.begin(), examples.end(),
                                        [](const EncodedExample& e) { return e.label >= 0; });
  out.predictions.assign(static_cast<size_t>(n), -1);
  out.probs.assign(static_cast<size_t>(n * NL), 0.0f);
  const auto plan = plan_eval_batches(examples, batch_size);
  // Data-parallel: each rank evaluates its share of the batches (dist::shard) and the shares are then summed
  // into every rank (dist::OrderedSum; the entries a rank did not compute are zeros, so the sums are exact).
  dist::Communicator& comm = dist::world();
  const dist::Range mine = dist::shard(static_cast<int64_t>(plan.size()), comm.rank(), comm.size());
  BatchBuilder builder;
  // Plain-log mode: a line every quarter of a long evaluation; short ones just print their final line.
  Progress progress(progress_name, mine.size(), std::max<int64_t>(25, mine.size() / 4));
  std::vector<double> batch_loss(plan.size(), 0.0);
  for (size_t bi = static_cast<size_t>(mine.begin); bi < static_cast<size_t>(mine.end); ++bi) {
    const auto& idx = plan[bi];
    const Batch b = builder.build(examples, idx, pad_id, out.has_labels, pad_to_length);
    batch_loss[bi] =
        model.forward(b, /*training=*/false, 0, /*loss_normalizer=*/1.0f);  // a sum over the batch
    const int64_t R = static_cast<int64_t>(idx.size());
    std::vector<float> p(static_cast<size_t>(R * NL));
    if (out.problem == ProblemType::SINGLE_LABEL) {
      softmax_rows(p.data(), model.logits(), R, NL);
    } else {
      for (int64_t k = 0; k < R * NL; ++k) {
        const double x = model.logits()[k];
        p[k] = out.problem == ProblemType::REGRESSION ? static_cast<float>(x)
                                                      : static_cast<float>(1.0 / (1.0 + std::exp(-x)));
      }
    }
    for (int64_t r = 0; r < R; ++r) {
      const int64_t i = idx[r];
      std::copy(p.begin() + r * NL, p.begin() + (r + 1) * NL, out.probs.begin() + i * NL);
      if (out.problem == ProblemType::SINGLE_LABEL)
        out.predictions[i] =
            std::max_element(p.begin() + r * NL, p.begin() + (r + 1) * NL) - (p.begin() + r * NL);
    }
    progress.update(static_cast<int64_t>(bi + 1) - mine.begin);
  }
  if (comm.size() > 1) {
    dist::OrderedSum<float>{comm}(out.probs.data(), static_cast<int64_t>(out.probs.size()));
    dist::OrderedSum<double>{comm}(batch_loss.data(), static_cast<int64_t>(batch_loss.size()));
    for (int64_t i = 0; i < n; ++i)
      out.predictions[i] = std::max_element(out.probs.begin() + i * NL, out.probs.begin() + (i + 1) * NL) -
                           (out.probs.begin() + i * NL);
  }
  double loss_sum = 0;
  for (double l : batch_loss) loss_sum += l;
  out.runtime = progress.elapsed_seconds();
  if (out.has_labels) {
    out.loss = loss_sum / static_cast<double>(std::max<int64_t>(n, 1));
    if (out.problem == ProblemType::SINGLE_LABEL) {
      std::vector<int64_t> labels;
      for (const auto& e : examples) labels.push_back(e.label);
      out.metrics = compute_metrics(out.predictions, labels, NL);
    } else {
      std::vector<float> targets;
      for (const auto& e : examples) targets.insert(targets.end(), e.targets.begin(), e.targets.end());
      if (out.problem == ProblemType::MULTI_LABEL)
        out.multi_label = multi_label_metrics(out.probs, targets, NL, multi_label_threshold);
      else
        out.regression = regression_metrics(out.probs, targets);
    }
  }
  return out;
}

double metric_value(const EvalOutput& e, ClassificationMetric metric) {
  if (e.problem == ProblemType::MULTI_LABEL) {  // sklearn's accuracy on indicator matrices is exact match
    if (metric == ClassificationMetric::ACCURACY) return e.multi_label.exact_match;
    if (metric == ClassificationMetric::MICRO_F1) return e.multi_label.micro_f1;
    if (metric == ClassificationMetric::MACRO_F1) return e.multi_label.macro_f1;
  }
  switch (metric) {
    case ClassificationMetric::ACCURACY:
      return e.metrics.accuracy;
    case ClassificationMetric::MACRO_F1:
      return e.metrics.macro.f1;
    case ClassificationMetric::MICRO_F1:
      return e.metrics.micro.f1;
    case ClassificationMetric::WEIGHTED_F1:
      return e.metrics.weighted.f1;
    case ClassificationMetric::LOSS:
      return e.loss;
    case ClassificationMetric::EXACT_MATCH:
      return e.multi_label.exact_match;
    case ClassificationMetric::MSE:
      return e.regression.mse;
    case ClassificationMetric::PEARSON:
      return e.regression.pearson;
    case ClassificationMetric::SPEARMAN:
      return e.regression.spearman;
  }
  return e.metrics.accuracy;
}

const ChoiceNames<ClassificationMetric>& classification_metric_names() {
  static const ChoiceNames<ClassificationMetric> names = {
      {ClassificationMetric::ACCURACY, "accuracy"}, {ClassificationMetric::MACRO_F1, "macro_f1"},
      {ClassificationMetric::MICRO_F1, "micro_f1"}, {ClassificationMetric::WEIGHTED_F1, "weighted_f1"},
      {ClassificationMetric::LOSS, "loss"},         {ClassificationMetric::EXACT_MATCH, "exact_match"},
      {ClassificationMetric::MSE, "mse"},           {ClassificationMetric::PEARSON, "pearson"},
      {ClassificationMetric::SPEARMAN, "spearman"}};
  return names;
}

// The paper's fine-tuning: lr 2e-5, no weight decay, up to 4 epochs, batch 24, max length 512.
FinetuneArgs::FinetuneArgs() : TrainingArgs(TaskDefaults{2e-5, 0.0, 4, 24, 32, 512}) {}

ClassificationMetric FinetuneArgs::best_metric() const {
  if (metric_for_best_model) return *metric_for_best_model;
  // A multi-task run's metrics are the tasks' means, accuracy among them (multitask.h).
  return multitask.enabled() || parse_problem_type(problem_type) == ProblemType::SINGLE_LABEL
             ? ClassificationMetric::ACCURACY
             : ClassificationMetric::LOSS;
}

void FinetuneArgs::own_fields_to_json(nlohmann::ordered_json* out) const {
  nlohmann::ordered_json& j = *out;
  BF_JSON_FIELDS(j, train_file, do_predict, test_file, max_predict_samples, text_pair_column, label_column,
                 id_column, validation_split, few_shot_per_class, few_shot_fraction, pad_to_max_length,
                 truncation, head_length, chunk_pooling, max_chunks, features, feature_layer,
                 head_learning_rate, layerwise_lr_decay, classifier_dropout, label_smoothing_factor);
  j["metric_for_best_model"] = choice_name(best_metric(), classification_metric_names());
  tricks.to_json(&j);
  BF_JSON_FIELDS(j, problem_type, multi_label_threshold);
  multitask.to_json(&j);
}

namespace {
void require(bool ok, const std::string& option, const std::string& why) {
  if (!ok) throw ConfigError("option --" + option + ": " + why);
}
}  // namespace

void FinetuneArgs::validate() const {
  TrainingArgs::validate();
  require(!model_name_or_path.empty(), "model_name_or_path", "is required");
  require(!runs_training() || !train_file.empty() || multitask.enabled(), "train_file",
          "is required to train");
  require(!runs_training() || !label_column.empty(), "label_column", "is required for training");
  require(runs_training() || !do_eval || !validation_file.empty(), "validation_file",
          "is required with --do_eval without --do_train (the held-out data to evaluate on)");
  require(!do_predict || !test_file.empty(), "test_file", "is required with --do_predict");
  require(max_predict_samples >= 0, "max_predict_samples", "must be >= 0 (0: all)");
  require(validation_split >= 0 && validation_split < 1, "validation_split", "must be in [0, 1)");
  // The names are the parsers' own (one list each), checked here so that a bad one fails before any work.
  auto parses = [](const std::string& option, const auto& parse) {
    try {
      parse();
    } catch (const ConfigError& e) {
      throw ConfigError("option --" + option + ": " + e.what());
    }
  };
  parses("truncation", [&] { parse_truncation(truncation); });
  require(head_length >= -1, "head_length",
          "must be >= 0 (-1: a quarter of the text tokens, the paper's 128 of 510 at length 512)");
  parses("chunk_pooling", [&] { parse_chunk_pooling(chunk_pooling); });
  require(
      chunk_pooling == "none" || text_pair_column.empty(), "chunk_pooling",
      "is for single long texts; sentence pairs (--text_pair_column) are truncated longest_first, as HF's "
      "tokenizers do");
  require(max_chunks >= 1, "max_chunks", "must be >= 1");
  if (features != "default")  // "default": the family's (pooler for BERT, cls else)
    parses("features", [&] { parse_feature_kind(features); });
  require(feature_layer == -1 || features == "layer", "feature_layer",
          "is read only with --features layer (got --features " + features + ")");
  require(layerwise_lr_decay > 0 && layerwise_lr_decay <= 1, "layerwise_lr_decay", "must be in (0, 1]");
  require(classifier_dropout < 1, "classifier_dropout", "must be < 1 (< 0: the model's)");
  require(label_smoothing_factor >= 0 && label_smoothing_factor < 1, "label_smoothing_factor",
          "must be in [0, 1)");
  tricks.validate(label_smoothing_factor);
  const ProblemType problem = parse_problem_type(problem_type);
  if (problem != ProblemType::SINGLE_LABEL) {
    const std::string why = "is single-label classification's (--problem_type " + problem_type + ")";
    require(tricks.class_weights.empty(), "class_weights", why);
    require(tricks.focal_gamma == 0, "focal_gamma", why);
    require(tricks.rdrop_alpha == 0, "rdrop_alpha", why);
    require(label_smoothing_factor == 0, "label_smoothing_factor", why);
    require(few_shot_per_class == 0 && few_shot_fraction == 0, "few_shot_per_class", why);
  }
  require(multi_label_threshold > 0 && multi_label_threshold < 1, "multi_label_threshold",
          "must be in (0, 1)");
  validate_cross_validation(*this);
  validate_pseudo_labels(*this);
  using M = ClassificationMetric;
  const M m = best_metric();
  const std::string metric = choice_name(m, classification_metric_names());
  // A multi-task run's tasks each have their own problem type: validate_multitask checks the metric.
  if (!multitask.enabled()) {
    if (problem == ProblemType::REGRESSION)
      require(m == M::LOSS || m == M::MSE || m == M::PEARSON || m == M::SPEARMAN, "metric_for_best_model",
              metric + " is not a regression metric: pearson, spearman, mse or loss");
    else if (problem == ProblemType::MULTI_LABEL)
      require(m == M::LOSS || m == M::ACCURACY || m == M::EXACT_MATCH || m == M::MICRO_F1 || m == M::MACRO_F1,
              "metric_for_best_model",
              metric + " is not a multi-label metric: exact_match (= accuracy), micro_f1, macro_f1 or loss");
    else
      require(m != M::EXACT_MATCH && m != M::MSE && m != M::PEARSON && m != M::SPEARMAN,
              "metric_for_best_model", metric + " is not a single-label classification metric");
  }
  validate_multitask(*this);
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// The classification task's named metrics (the loop's log_history entries and eval_results.json).
EvalMetrics named_metrics(const EvalOutput& e) {
  EvalMetrics m;
  m.runtime = e.runtime;
  m.samples = static_cast<int64_t>(e.predictions.size());
  if (e.problem == ProblemType::MULTI_LABEL) {
    m.values = {{"loss", e.loss},
                {"accuracy", e.multi_label.exact_match},
                {"exact_match", e.multi_label.exact_match},
                {"micro_f1", e.multi_label.micro_f1},
                {"macro_f1", e.multi_label.macro_f1}};
    return m;
  }
  if (e.problem == ProblemType::REGRESSION) {
    m.values = {{"loss", e.loss},
                {"mse", e.regression.mse},
                {"pearson", e.regression.pearson},
                {"spearman", e.regression.spearman}};
    return m;
  }
  m.values = {{"loss", e.loss},
              {"accuracy", e.metrics.accuracy},
              {"error_rate", e.metrics.error_rate},
              {"macro_f1", e.metrics.macro.f1},
              {"micro_f1", e.metrics.micro.f1},
              {"weighted_f1", e.metrics.weighted.f1}};
  return m;
}

// A seeded subset of k of the examples, in file order (k <= 0 or >= their number: all).
void keep_sample(Dataset* ds, int64_t k, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(ds->examples.size());
  if (k <= 0 || k >= n) return;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(idx[i], idx[rng.below(static_cast<uint64_t>(i + 1))]);
  idx.resize(static_cast<size_t>(k));
  std::sort(idx.begin(), idx.end());
  auto kept = decltype(ds->examples){};
  kept.reserve(idx.size());
  for (int64_t i : idx) kept.push_back(std::move(ds->examples[i]));
  ds->examples = std::move(kept);
}

HeadOptions head_options_from(const FinetuneArgs& a, ModelFamily family) {
  HeadOptions h;
  h.features = a.features == "default"
                   ? (family == ModelFamily::BERT ? FeatureKind::POOLER : FeatureKind::CLS)
                   : parse_feature_kind(a.features);
  h.layer = a.feature_layer;
  h.chunk_pooling = parse_chunk_pooling(a.chunk_pooling);
  return h;
}

// Sequence classification as a task of the training loop: labelled documents, the loss normalised by the
// labelled documents of a step, evaluated by accuracy and F1.
class ClassificationTask : public TrainingTask {
 public:
  ClassificationTask(const std::vector<EncodedExample>& train, const std::vector<EncodedExample>& dev,
                     int32_t pad_id, int64_t pad_to_length, int eval_batch_size, ClassificationMetric metric)
      : train_(train),
        dev_(dev),
        pad_id_(pad_id),
        pad_to_length_(pad_to_length),
        eval_batch_size_(eval_batch_size),
        metric_(metric) {}

  // The competition tricks' training batches (tricks.h): class weights make the step's normaliser the sum
  // of its documents' weights (torch's weighted mean), R-Drop puts every document in a micro-batch twice.
  void set_tricks(std::vector<float> class_weights, bool rdrop) {
    class_weights_ = std::move(class_weights);
    rdrop_ = rdrop;
  }
  const std::vector<EncodedExample>& train_examples() const override { return train_; }
  float begin_step(const std::vector<std::vector<int64_t>>& micro_batches, int64_t /*epoch*/) override {
    micro_ = &micro_batches;
    double labelled = 0;
    for (const auto& mb : micro_batches) {
      for (int64_t i : mb)
        if (train_[i].label >= 0) labelled += class_weights_.empty() ? 1.0 : class_weights_[train_[i].label];
      const BatchTokens t = batch_tokens(train_, mb, pad_to_length_);
      tokens_.real += t.real;
      tokens_.computed += t.computed;
    }
    return labelled > 0 ? static_cast<float>(labelled) : 1.0f;
  }
  bool micro_batch(BertModel& /*model*/, size_t k, Batch* batch) override {
    const std::vector<int64_t>* idx = &(*micro_)[k];
    if (rdrop_) {  // documents d and d + D: the two passes of classification_loss.h
      twice_.assign(idx->begin(), idx->end());
      twice_.insert(twice_.end(), idx->begin(), idx->end());
      idx = &twice_;
    }
    *batch = builder_.build(train_, *idx, pad_id_, true, pad_to_length_);
    return true;
  }
  bool has_eval_data() const override { return !dev_.empty(); }
  void set_multi_label_threshold(double t) { threshold_ = t; }
  EvalMetrics evaluate(BertModel& model, const std::string& what) override {
    last_eval_ = run_evaluation(model, dev_, eval_batch_size_, pad_id_, what, pad_to_length_, threshold_);
    EvalMetrics m = named_metrics(last_eval_);
    if (last_eval_.has_labels && last_eval_.problem == ProblemType::SINGLE_LABEL)
      m.details = classification_details_json(last_eval_.metrics, label_names);
    return m;
  }
  BestModelMetric best_metric() const override {  // loss and mse: lower is better
    return {choice_name(metric_, classification_metric_names()),
            metric_ != ClassificationMetric::LOSS && metric_ != ClassificationMetric::MSE};
  }
  std::string describe(const EvalMetrics& e) const override {
    for (const auto& [name, v] : e.values)
      if (name == "pearson")
        return "loss " + fmt("%.4f", e.value("loss")) + ", pearson " + fmt("%.4f", v) + ", spearman " +
               fmt("%.4f", e.value("spearman"));
      else if (name == "exact_match")
        return "loss " + fmt("%.4f", e.value("loss")) + ", exact match " + fmt("%.4f", v) + ", micro-F1 " +
               fmt("%.4f", e.value("micro_f1")) + ", macro-F1 " + fmt("%.4f", e.value("macro_f1"));
    return "loss " + fmt("%.4f", e.value("loss")) + ", accuracy " + fmt("%.4f", e.value("accuracy")) +
           ", macro-F1 " + fmt("%.4f", e.value("macro_f1"));
  }
  std::string training_summary() const override {
    if (tokens_.computed == 0) return "";
    return "train tokens: " + std::to_string(tokens_.real) + " real, " + std::to_string(tokens_.computed) +
           " computed (" +
           fmt("%.1f", 100.0 * static_cast<double>(tokens_.computed - tokens_.real) /
                           static_cast<double>(tokens_.computed)) +
           "% padding; " +
           (pad_to_length_ > 0 ? "every batch padded to " + std::to_string(pad_to_length_)
                               : std::string("batches padded to their longest sequence")) +
           ")";
  }
  const EvalOutput& last_eval() const { return last_eval_; }
  std::vector<std::string> label_names;  // by class id: the per-class details of eval_results.json

 private:
  const std::vector<EncodedExample>& train_;
  const std::vector<EncodedExample>& dev_;
  int32_t pad_id_;
  int64_t pad_to_length_;
  int eval_batch_size_;
  ClassificationMetric metric_;
  const std::vector<std::vector<int64_t>>* micro_ = nullptr;
  BatchBuilder builder_;
  BatchTokens tokens_;  // of the steps this process ran: what padding costs
  EvalOutput last_eval_;
  std::vector<float> class_weights_;
  bool rdrop_ = false;
  double threshold_ = 0.5;
  std::vector<int64_t> twice_;
};

// --do_predict's output: predict_results.txt (index, prediction: HF's layout) and, with an id column, the
// submission CSV, both in output_dir.
void write_predictions(const FinetuneArgs& args, const Dataset& test_ds,
                       const std::vector<std::string>& predicted, FinetuneResult* result) {
  std::vector<std::string> ids;
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < predicted.size(); ++i) {
    ids.push_back(test_ds.examples[i].id);
    rows.push_back({std::to_string(i), predicted[i]});
  }
  result->predictions_file = args.output_dir + "/predict_results.txt";
  const bool writer = dist::world().rank() == 0;  // data-parallel: every rank predicted, rank 0 writes
  if (writer) data::write_tsv(result->predictions_file, {"index", "prediction"}, rows);
  log_message("wrote " + std::to_string(rows.size()) + " predictions to " + result->predictions_file);
  if (!args.id_column.empty()) {
    result->submission_file = args.output_dir + "/submission.csv";
    if (writer)
      data::write_submission_csv(result->submission_file, ids, predicted, args.id_column, args.label_column);
    log_message("wrote the submission " + result->submission_file);
  }
}

data::DatasetSpec dataset_spec(const FinetuneArgs& args) {
  data::DatasetSpec spec;
  spec.table.format = data::parse_file_format(args.format);
  spec.table.quoting = data::parse_quoting(args.quoting);
  spec.text_columns = args.text_columns;
  spec.text_separator = args.text_separator;
  spec.text_pair_column = args.text_pair_column;
  spec.label_column = args.label_column;
  spec.id_column = args.id_column;
  return spec;
}

// The test file as prediction input: its labels, if any, are not read.
Dataset read_test_file(const FinetuneArgs& args) {
  data::DatasetSpec test_spec = dataset_spec(args);
  test_spec.label_column.clear();
  Dataset test_ds = read_data_file(args.test_file, test_spec);
  // The first rows, as HF's run_classification selects them: predict_results.txt's index is then the row's
  // position in the file (a seeded sample would renumber the rows it kept).
  if (args.max_predict_samples > 0 &&
      static_cast<int64_t>(test_ds.examples.size()) > args.max_predict_samples)
    test_ds.examples.resize(static_cast<size_t>(args.max_predict_samples));
  return test_ds;
}

// --do_eval and / or --do_predict without --do_train (HF run_classification's stages): model_name_or_path is
// a fine-tuned classifier, used with the encoding it was trained with (train/classifier.h).
FinetuneResult evaluate_and_predict(const FinetuneArgs& args) {
  Classifier c = load_classifier(args.model_name_or_path, /*any_problem_type=*/true);
  if (args.multi_label_threshold != 0.5) c.settings.multi_label_threshold = args.multi_label_threshold;
  const bool single = c.problem() == ProblemType::SINGLE_LABEL;
  const int threads = num_threads();
  FinetuneResult result;
  result.output_dir = args.output_dir;
  if (args.do_eval) {
    Dataset dev_ds = read_data_file(args.validation_file, dataset_spec(args));
    keep_sample(&dev_ds, args.max_eval_samples, args.seed ^ 0xE7A1ull);
    const auto dev_ex = encode_for(c, dev_ds, threads);
    result.final_eval = classify(c, dev_ex, args.per_device_eval_batch_size, "eval");
    EvalMetrics m = named_metrics(result.final_eval);
    if (single) m.details = classification_details_json(result.final_eval.metrics, c.labels.id2label());
    const nlohmann::json j = m.eval_results(0, 0, /*trained=*/false);
    if (dist::world().rank() == 0)
      write_file_atomic(args.output_dir + "/eval_results.json", j.dump(2) + "\n");
    if (!single) {
      log_message("eval: " + std::to_string(dev_ex.size()) + " examples, " +
                  describe_problem_evaluation(c, result.final_eval));
    } else {
      log_message("eval: " + std::to_string(dev_ex.size()) + " examples, accuracy " +
                  fmt("%.4f", result.final_eval.metrics.accuracy) + ", macro-F1 " +
                  fmt("%.4f", result.final_eval.metrics.macro.f1) + ", loss " +
                  fmt("%.4f", result.final_eval.loss));
      log_message("validation:\n" + classification_report(result.final_eval.metrics, c.labels.id2label(), 4));
    }
  }
  if (args.do_predict) {
    const Dataset test_ds = read_test_file(args);
    const auto test_ex = encode_for(c, test_ds, threads);
    const EvalOutput e = classify(c, test_ex, args.per_device_eval_batch_size, "predict");
    std::vector<std::string> predicted;
    for (size_t i = 0; i < test_ex.size(); ++i) predicted.push_back(prediction_text(c, e, i));
    write_predictions(args, test_ds, predicted, &result);
  }
  return result;
}

}  // namespace

float accumulate_and_step(BertModel& model, Optimizer& opt, const std::vector<EncodedExample>& examples,
                          const std::vector<std::vector<int64_t>>& micro_batches, int32_t pad_id,
                          double max_grad_norm, double lr_multiplier, uint64_t step_key, double* grad_norm,
                          int64_t pad_to_length) {
  ClassificationTask task(examples, {}, pad_id, pad_to_length, 1, ClassificationMetric::ACCURACY);
  return static_cast<float>(optimizer_step(model, opt, task, micro_batches, 0, static_cast<int64_t>(step_key),
                                           max_grad_norm, lr_multiplier, {}, grad_norm));
}

OptimizerOptions finetune_optimizer_options(const FinetuneArgs& args) {
  OptimizerOptions oo;
  oo.learning_rate = args.learning_rate;
  oo.head_learning_rate = args.head_learning_rate;
  oo.layerwise_lr_decay = args.layerwise_lr_decay;
  oo.weight_decay = args.weight_decay;
  oo.hyper = {static_cast<float>(args.adam_beta1), static_cast<float>(args.adam_beta2),
              static_cast<float>(args.adam_epsilon)};
  return oo;
}

FinetuneModel load_finetune_model(const FinetuneArgs& args, const Tokenizer& tok, const LabelMap& labels,
                                  ProblemType problem, const std::vector<ExtraHead>& extra_heads,
                                  bool resuming) {
  FinetuneModel fm;
  ModelConfig& config = fm.config;
  config = read_config_json(args.model_name_or_path + "/config.json");
  config.id2label = labels.id2label();
  config.problem_type = problem;
  config.problem_type_set = true;  // as HF's model after training: config.json names it
  if (args.hidden_dropout_prob >= 0)
    config.hidden_dropout_prob = static_cast<float>(args.hidden_dropout_prob);
  if (args.attention_probs_dropout_prob >= 0)
    config.attention_probs_dropout_prob = static_cast<float>(args.attention_probs_dropout_prob);
  if (args.classifier_dropout >= 0) config.classifier_dropout = static_cast<float>(args.classifier_dropout);
  const int64_t max_positions =
      config.max_position_embeddings - (config.family == ModelFamily::ROBERTA ? config.pad_token_id + 1 : 0);
  ClassifierSettings& settings = fm.settings;
  settings.head = head_options_from(args, config.family);
  settings.max_seq_length = static_cast<int>(std::min<int64_t>(args.max_seq_length, max_positions));
  if (settings.max_seq_length < args.max_seq_length)
    log_message("note: max_seq_length " + std::to_string(args.max_seq_length) + " exceeds the model's " +
                std::to_string(max_positions) + " positions; using " +
                std::to_string(settings.max_seq_length));
  settings.truncation =
      parse_truncation(args.truncation) == Truncation::HEAD_TAIL ? "head_tail" : args.truncation;
  settings.head_length = resolve_head_length(args.head_length, settings.max_seq_length,
                                             static_cast<int>(tok.num_special_tokens(false)));
  settings.max_chunks = settings.head.chunk_pooling == ChunkPooling::NONE ? 0 : args.max_chunks;
  settings.multi_label_threshold = args.multi_label_threshold;  // evaluate / predict use it
  // A multi-task run's multi-label head saves the threshold too, whatever head 0's problem type.
  write_classifier_settings(&config, settings,
                            std::any_of(extra_heads.begin(), extra_heads.end(), [](const ExtraHead& x) {
                              return x.problem_type == ProblemType::MULTI_LABEL;
                            }));
  HeadOptions head = settings.head;  // the extra heads are the model's, not the saved settings'
  head.extra_heads = extra_heads;
  fm.loaded =
      load_pretrained(args.model_name_or_path, HeadKind::SEQUENCE_CLASSIFICATION, head, &config, args.seed);
  BertModel& model = *fm.loaded.model;
  model.dropout_seed = args.seed;
  model.matmul_precision = args.bf16 ? MatmulPrecision::BF16 : MatmulPrecision::FP32;
  model.label_smoothing = static_cast<float>(args.label_smoothing_factor);
  // A resumed run's head comes from the checkpoint: the warning was the first run's.
  if (!fm.loaded.initialized.empty() && !resuming) {
    std::string s = "newly initialised (not in the checkpoint), train them before use:";
    for (const auto& n : fm.loaded.initialized) s += " " + n;
    log_message(s);
    const bool pooler_untrained =
        std::any_of(fm.loaded.initialized.begin(), fm.loaded.initialized.end(),
                    [](const std::string& n) { return n.find("pooler.") != std::string::npos; });
    // HF does the same (a *ForMaskedLM checkpoint has no pooler), and says nothing: the measured cost is
    // worth a line.
    if (pooler_untrained && head.features == FeatureKind::POOLER)
      log_message(
          "note: the classifier reads the pooler, which this checkpoint does not train (masked-LM "
          "pre-training has no next-sentence prediction); --features cls or last4-concat read the "
          "encoder's own [CLS] (5-8 points of dev accuracy over the untrained pooler on the demo's task: "
          "docs/results.md)");
  }
  EncodeOptions& enc = fm.encode;
  enc.max_seq_length = settings.max_seq_length;
  enc.truncation = parse_truncation(settings.truncation);
  enc.head_length = settings.head_length;
  enc.max_chunks = settings.max_chunks;
  check_encode_options(tok, enc);  // a head_length that leaves no tail is an error, not head-only
  return fm;
}

FinetuneResult finetune(const FinetuneArgs& args, const LoopHooks& hooks) {
  if (args.multitask.enabled()) return finetune_multitask(args, hooks).run;
  args.validate();
  set_num_threads(args.threads);
  const int threads = num_threads();
  if (args.tricks.k_folds >= 2 && args.tricks.fold < 0) return cross_validate(args, hooks);  // every fold
  const std::string resume = prepare_output_dir(args);
  if (!args.runs_training()) return evaluate_and_predict(args);

  // Data.
  const Tokenizer tok = Tokenizer::from_directory(args.model_name_or_path);
  const data::DatasetSpec spec = dataset_spec(args);
  Dataset train_ds = read_data_file(args.train_file, spec);
  // Labels: single-label classes, every label of a multi-label set, or regression's one output (HF: LABEL_0).
  const ProblemType problem = parse_problem_type(args.problem_type);
  const bool single = problem == ProblemType::SINGLE_LABEL;
  const LabelMap labels = problem == ProblemType::MULTI_LABEL  ? multi_label_map(train_ds)
                          : problem == ProblemType::REGRESSION ? LabelMap::from_id2label({"LABEL_0"})
                                                               : LabelMap::from_dataset(train_ds);
  Dataset dev_ds;
  if (args.tricks.fold >= 0) {  // one fold of --k_folds: the fold's rows are the validation data
    select_fold(args, labels, &train_ds, &dev_ds);
  } else if (!args.validation_file.empty()) {
    dev_ds = read_data_file(args.validation_file, spec);
  } else if (args.validation_split > 0) {
    // Stratified by class for single-label data; a seeded random split (one stratum) otherwise.
    const auto ids = single ? labels.encode(train_ds) : std::vector<int64_t>(train_ds.examples.size(), 0);
    const auto split =
        data::stratified_split(ids, single ? labels.size() : 1, args.validation_split, args.seed);
    Dataset t = train_ds, d = train_ds;
    t.examples.clear();
    d.examples.clear();
    for (int64_t i : split.train) t.examples.push_back(train_ds.examples[i]);
    for (int64_t i : split.dev) d.examples.push_back(train_ds.examples[i]);
    train_ds = std::move(t);
    dev_ds = std::move(d);
  }
  if (args.few_shot_per_class > 0 || args.few_shot_fraction > 0) {
    const auto ids = labels.encode(train_ds);
    const auto keep =
        data::few_shot_subset(ids, labels.size(), args.few_shot_per_class, args.few_shot_fraction, args.seed);
    Dataset t = train_ds;
    t.examples.clear();
    for (int64_t i : keep) t.examples.push_back(train_ds.examples[i]);
    train_ds = std::move(t);
  }
  keep_sample(&train_ds, args.max_train_samples, args.seed ^ 0x7A1Eull);
  keep_sample(&dev_ds, args.max_eval_samples, args.seed ^ 0xE7A1ull);
  add_pseudo_labels(args, labels, &train_ds);  // training rows only, never validation rows

  // Model and encoding.
  FinetuneModel fm = load_finetune_model(args, tok, labels, problem, {}, !resume.empty());
  const ModelConfig& config = fm.config;
  const ClassifierSettings& settings = fm.settings;
  BertModel& model = *fm.loaded.model;
  const EncodeOptions& enc = fm.encode;

  // Tokens.
  auto train_ex = encode_examples(tok, train_ds, single ? &labels : nullptr, enc, threads);
  auto dev_ex = encode_examples(tok, dev_ds, single ? &labels : nullptr, enc, threads);
  if (!single) {
    set_problem_targets(train_ds, problem, &labels, &train_ex);
    set_problem_targets(dev_ds, problem, &labels, &dev_ex);
  }
  if (train_ex.empty()) throw ConfigError(args.train_file + ": no training examples");
  std::vector<int64_t> label_counts(static_cast<size_t>(labels.size()), 0);
  for (const auto& e : train_ex)
    if (e.label >= 0) ++label_counts[static_cast<size_t>(e.label)];
  std::vector<float> class_weights =
      single ? resolve_class_weights(args.tricks.class_weights, label_counts, labels.id2label())
             : std::vector<float>{};
  apply_loss_tricks(args.tricks, class_weights, &model);
  if (const std::string t = describe_tricks(args.tricks); !t.empty()) log_message(t);
  {
    std::map<int32_t, int64_t> counts;
    for (const auto& e : train_ex) ++counts[e.label];
    log_message(
        "data: " + std::to_string(train_ex.size()) + " train / " + std::to_string(dev_ex.size()) +
        " validation examples, " +
        (single ? std::to_string(labels.size()) + " classes (smallest class: " +
                      std::to_string(std::min_element(counts.begin(), counts.end(),
                                                      [](auto& a, auto& b) { return a.second < b.second; })
                                         ->second) +
                      " examples)"
         : problem == ProblemType::MULTI_LABEL ? std::to_string(labels.size()) + " labels (multi-label)"
                                               : std::string("regression")));
    log_message("train " + format_length_stats(length_stats(train_ex, settings.max_seq_length - 2),
                                               settings.max_seq_length - 2));
    log_message("model: " + std::string(family_display_name(config.family)) + ", " +
                std::to_string(config.num_hidden_layers) + " layers, hidden " +
                std::to_string(config.hidden_size) + ", " + std::to_string(model.table().num_parameters()) +
                " parameters; features " + feature_kind_name(settings.head.features) + ", " +
                // What encoding does (encoded_data.cpp): pairs always longest_first, chunks the first ones.
                (!args.text_pair_column.empty() ? std::string("pairs truncated longest_first")
                 : settings.max_chunks
                     ? "the first " + std::to_string(settings.max_chunks) + " chunks pooled by " +
                           chunk_pooling_name(settings.head.chunk_pooling)
                     : settings.truncation + (enc.truncation == Truncation::HEAD_TAIL
                                                  ? " (head " + std::to_string(settings.head_length) + ")"
                                                  : "")) +
                (args.bf16 ? "; bf16 products" : "") + "; " + std::to_string(threads) + " threads");
  }
  {
    // The token lengths before truncation, with the truncation point, for the run's report (bertfit report).
    const int64_t limit = settings.max_seq_length - tok.num_special_tokens(false);
    nlohmann::ordered_json j;
    j["max_seq_length"] = settings.max_seq_length;
    j["limit"] = limit;
    j["truncation"] = settings.max_chunks ? "chunks" : settings.truncation;
    j["head_length"] = settings.head_length;
    j["max_chunks"] = settings.max_chunks;
    j["train"] = token_length_histogram_json(train_ex, limit, 1);
    if (!dev_ex.empty()) j["validation"] = token_length_histogram_json(dev_ex, limit, 1);
    write_file_atomic(args.output_dir + "/token_lengths.json", j.dump() + "\n");
  }
  int64_t longest = 1, max_k = 1;
  for (const auto* set : {&train_ex, &dev_ex})
    for (const auto& e : *set) {
      longest = std::max(longest, e.length());
      max_k = std::max<int64_t>(max_k, static_cast<int64_t>(e.seqs.size()));
    }
  // pad_to_max_length (HF run_glue): every batch, training and evaluation, is padded to max_seq_length.
  const int64_t pad_to_length = args.pad_to_max_length ? settings.max_seq_length : 0;
  model.reserve(std::max(args.per_device_train_batch_size * args.tricks.rows_per_document(),
                         static_cast<int64_t>(args.per_device_eval_batch_size)) *
                    max_k,
                std::max(longest, pad_to_length));

  // The loop.
  const OptimizerOptions oo = finetune_optimizer_options(args);
  ClassificationTask task(train_ex, dev_ex, tok.pad_id(), pad_to_length, args.per_device_eval_batch_size,
                          args.best_metric());
  task.label_names = labels.id2label();
  task.set_tricks(class_weights, args.tricks.rdrop_alpha > 0);
  task.set_multi_label_threshold(args.multi_label_threshold);
  LoopHooks all_hooks = hooks;
  for (auto& h : make_trick_hooks(args.tricks)) all_hooks.step_hooks.push_back(std::move(h));
  TrainingLoop loop(args, args.to_json(), task, model, tok, oo, resume, all_hooks);
  const LoopResult r = loop.run();

  FinetuneResult result;
  result.output_dir = args.output_dir;
  result.global_step = r.global_step;
  result.best_checkpoint = r.best_checkpoint;
  result.best_metric = r.best_metric;
  result.train_loss = r.train_loss;
  if (r.final_eval) {
    result.final_eval = task.last_eval();
    if (single)
      log_message("validation:\n" + classification_report(result.final_eval.metrics, labels.id2label(), 4));
    else
      log_message("validation: " + task.describe(*r.final_eval));
  }
  if (args.do_predict) {
    const Dataset test_ds = read_test_file(args);  // encoded as training was
    const auto test_ex = encode_examples(tok, test_ds, &labels, enc, threads);
    int64_t test_longest = 1, test_k = 1;
    for (const auto& e : test_ex) {
      test_longest = std::max(test_longest, e.length());
      test_k = std::max<int64_t>(test_k, static_cast<int64_t>(e.seqs.size()));
    }
    model.reserve(args.per_device_eval_batch_size * test_k, std::max(test_longest, pad_to_length));
    const EvalOutput e = run_evaluation(model, test_ex, args.per_device_eval_batch_size, tok.pad_id(),
                                        "predict", pad_to_length, args.multi_label_threshold);
    std::vector<std::string> predicted;
    const int64_t NL = labels.size();
    for (size_t i = 0; i < test_ex.size(); ++i)
      predicted.push_back(single ? labels.label(e.predictions[i])
                                 : format_problem_prediction(problem, e.probs.data() + i * NL, labels,
                                                             args.multi_label_threshold));
    write_predictions(args, test_ds, predicted, &result);
  }
  return result;
}

data::DatasetSpec finetune_dataset_spec(const FinetuneArgs& args) {
  return dataset_spec(args);
}

Dataset read_finetune_test_file(const FinetuneArgs& args) {
  return read_test_file(args);
}

void write_finetune_predictions(const FinetuneArgs& args, const Dataset& test_ds,
                                const std::vector<std::string>& predicted, FinetuneResult* result) {
  write_predictions(args, test_ds, predicted, result);
}

}  // namespace bertfit

// `bertfit ensemble`: average the predictions of several models or prediction files (optionally weighted;
// single-label also by rank) and write the predictions and the competition's submission CSV as `bertfit
// predict` does for their problem type (train/ensemble.h): the class of the highest mean probability, the
// labels whose mean probability is above the threshold (multi-label), or the mean value (regression).
#include <cstdio>
#include <filesystem>
#include <set>

#include "bertfit/error.h"
#include "cli/commands.h"
#include "cli/data_options.h"
#include "core/threading.h"
#include "data/submission.h"
#include "train/classifier.h"
#include "train/ensemble.h"

namespace bertfit::cli {

namespace {
// A model directory's predictions over --file, as `bertfit predict --all_probs` would write them (any
// problem type: class probabilities, each label's sigmoid with the model's saved threshold, or the values).
PredictionTable predict_table(const std::string& model, const DataOptions& opts) {
  if (opts.file.empty())
    throw ConfigError("ensemble: " + model + " is a model directory: give --file to predict");
  Classifier c = load_classifier(model, /*any_problem_type=*/true);
  const Dataset ds = read_data_file(opts.file, opts.spec(model, false));
  const auto ex = encode_for(c, ds, num_threads());
  const EvalOutput e = classify(c, ex, opts.batch_size, "predict " + model);
  PredictionTable t;
  t.problem = c.problem();
  t.threshold = c.settings.multi_label_threshold;
  for (size_t i = 0; i < ex.size(); ++i) t.ids.push_back(ds.examples[i].id);
  if (t.problem == ProblemType::REGRESSION) {
    t.values.assign(e.probs.begin(), e.probs.end());  // one output per row
  } else {
    t.labels = c.labels.id2label();
    t.probs.assign(e.probs.begin(), e.probs.end());
  }
  return t;
}
}  // namespace

void add_ensemble_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("ensemble",
                                 "Average the predictions of models or prediction files (bertfit predict "
                                 "--all_probs): probabilities (weighted, or by rank), multi-label "
                                 "probabilities, regression values");
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto weights = std::make_shared<std::vector<double>>();
  auto method = std::make_shared<std::string>("mean");
  auto output = std::make_shared<std::string>();
  auto submission = std::make_shared<std::string>();
  auto id_header = std::make_shared<std::string>("paperid");
  auto label_header = std::make_shared<std::string>("categories");
  auto opts = std::make_shared<DataOptions>();
  cmd->add_option(
         "--inputs", *inputs,
         "Prediction files (bertfit predict --all_probs) or fine-tuned model directories (with --file)")
      ->required()
      ->delimiter(',');
  cmd->add_option("--weights", *weights, "One weight > 0 per input (default: equal)")->delimiter(',');
  cmd->add_option(
         "--method", *method,
         "mean: weighted mean of the probabilities (regression: of the values); rank: of their "
         "ranks (single-label only; scores, written as score / s_<label>, for ranking metrics such as "
         "AUC; not an input to ensemble)")
      ->capture_default_str();
  auto threshold = std::make_shared<double>(-1);
  cmd->add_option("--multi_label_threshold,--multi-label-threshold", *threshold,
                  "Multi-label: a label is predicted when its mean probability is above this (default: the "
                  "threshold saved with the model directories among --inputs when they agree, else 0.5)");
  cmd->add_option("--output", *output,
                  "Prediction file of the ensemble, as bertfit predict --all_probs writes for the problem "
                  "type (regression: id, label = the mean value, std = the inputs' spread); chains into "
                  "ensemble and --pseudo_label_file");
  cmd->add_option("--submission", *submission, "Write the competition's submission CSV (id,label) here");
  cmd->add_option("--submission_id_header", *id_header, "Submission header of the id column")
      ->capture_default_str();
  cmd->add_option("--submission_label_header", *label_header, "Submission header of the label column")
      ->capture_default_str();
  opts->add_to(cmd, false);
  cmd->get_option("--file")->required(false)->description(
      "Data file to predict when an input is a model directory");
  cmd->callback([=] {
    if (output->empty() && submission->empty())
      throw ConfigError("ensemble: give --output and/or --submission (nothing would be written)");
    if (*method != "mean" && *method != "rank")
      throw ConfigError("option --method: \"" + *method + "\" is not one of mean, rank");
    if (*threshold != -1 && !(*threshold > 0 && *threshold < 1))
      throw ConfigError("option --multi_label_threshold: must be in (0, 1)");
    set_num_threads(opts->threads);
    std::vector<PredictionTable> tables;
    std::set<double> saved_thresholds;  // of the multi-label model directories
    for (const auto& in : *inputs) {
      const bool model = std::filesystem::is_directory(in);
      tables.push_back(model ? predict_table(in, *opts) : read_prediction_file(in));
      if (model && tables.back().problem == ProblemType::MULTI_LABEL)
        saved_thresholds.insert(tables.back().threshold);
    }
    PredictionTable e = ensemble_predictions(
        tables, *weights, *method == "rank" ? EnsembleMethod::RANK : EnsembleMethod::MEAN, *inputs);
    if (e.problem == ProblemType::MULTI_LABEL) {
      // Prediction files do not record the threshold their labels were cut at: the option, else the models'
      // own when they agree, else HF's 0.5 (logits > 0).
      e.threshold = *threshold != -1               ? *threshold
                    : saved_thresholds.size() == 1 ? *saved_thresholds.begin()
                                                   : 0.5;
      if (*threshold == -1 && saved_thresholds.size() > 1)
        std::printf(
            "note: the model directories were saved with different thresholds; labels are "
            "predicted above 0.5 (set --multi_label_threshold)\n");
    } else if (*threshold != -1) {
      throw ConfigError(std::string("option --multi_label_threshold: the inputs hold ") +
                        prediction_kind(e.problem) + " predictions, not multi-label ones");
    }
    if (!output->empty()) {
      write_prediction_file(*output, e);
      std::printf("wrote %zu ensemble predictions of %zu inputs to %s\n", e.rows(), tables.size(),
                  output->c_str());
    }
    if (!submission->empty()) {
      data::write_submission_csv(*submission, e.ids, predicted_labels(e), *id_header, *label_header);
      std::printf("wrote the submission %s\n", submission->c_str());
    }
  });
}

}  // namespace bertfit::cli

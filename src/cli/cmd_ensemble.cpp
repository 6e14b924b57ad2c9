// `bertfit ensemble`: average the class probabilities of several models or prediction files (optionally
// weighted, or by rank) and write the predictions and the competition's submission CSV (train/ensemble.h).
#include <cstdio>
#include <filesystem>

#include "bertfit/error.h"
#include "cli/commands.h"
#include "cli/data_options.h"
#include "core/threading.h"
#include "data/submission.h"
#include "train/classifier.h"
#include "train/ensemble.h"

namespace bertfit::cli {

namespace {
// A model directory's probabilities over --file, as `bertfit predict --all_probs` would write them.
PredictionTable predict_table(const std::string& model, const DataOptions& opts) {
  if (opts.file.empty())
    throw ConfigError("ensemble: " + model + " is a model directory: give --file to predict");
  Classifier c = load_classifier(model);
  const Dataset ds = read_data_file(opts.file, opts.spec(model, false));
  const auto ex = encode_for(c, ds, num_threads());
  const EvalOutput e = classify(c, ex, opts.batch_size, "predict " + model);
  PredictionTable t;
  t.labels = c.labels.id2label();
  for (size_t i = 0; i < ex.size(); ++i) t.ids.push_back(ds.examples[i].id);
  t.probs.assign(e.probs.begin(), e.probs.end());
  return t;
}
}  // namespace

void add_ensemble_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("ensemble",
                                 "Average the probabilities of models or prediction files (bertfit predict "
                                 "--all_probs), weighted or by rank");
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
  cmd->add_option("--method", *method, "mean: weighted mean of the probabilities; rank: of their ranks")
      ->capture_default_str();
  cmd->add_option("--output", *output, "TSV of id, label, probability, p_<label>... (chains into ensemble)");
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
    set_num_threads(opts->threads);
    std::vector<PredictionTable> tables;
    for (const auto& in : *inputs)
      tables.push_back(std::filesystem::is_directory(in) ? predict_table(in, *opts)
                                                         : read_prediction_file(in));
    const PredictionTable e = ensemble_predictions(
        tables, *weights, *method == "rank" ? EnsembleMethod::RANK : EnsembleMethod::MEAN, *inputs);
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

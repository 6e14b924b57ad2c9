// `bertfit predict`: labels and probabilities for an unlabelled file, and the competition's submission CSV.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "cli/commands.h"
#include "cli/data_options.h"
#include "core/atomic_file.h"
#include "core/threading.h"
#include "data/submission.h"
#include "train/classifier.h"
#include "train/report_json.h"

namespace bertfit::cli {

void add_predict_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("predict", "Predict labels (and probabilities) for a file with a fine-tuned model");
  auto model = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto submission = std::make_shared<std::string>();
  auto id_header = std::make_shared<std::string>("paperid");
  auto label_header = std::make_shared<std::string>("categories");
  auto all_probs = std::make_shared<bool>(false);
  auto metrics = std::make_shared<std::string>();
  auto label_column = std::make_shared<std::string>();
  auto opts = std::make_shared<DataOptions>();
  cmd->add_option("--model", *model, "Fine-tuned model directory (bertfit finetune's output)")->required();
  cmd->add_option("--output", *output, "TSV of id, label, probability (and every class with --all_probs)");
  cmd->add_option("--submission", *submission, "Write the competition's submission CSV (id,label) here");
  cmd->add_option("--submission_id_header", *id_header, "Submission header of the id column")
      ->capture_default_str();
  cmd->add_option("--submission_label_header", *label_header, "Submission header of the label column")
      ->capture_default_str();
  cmd->add_flag("--all_probs,--all-probs", *all_probs, "Write every class's probability");
  cmd->add_option("--metrics", *metrics,
                  "Write JSON here: the number of predictions per label and, with --label_column (a labelled "
                  "file), evaluate's metrics: per-class scores, the labelled confusion matrix");
  cmd->add_option("--label_column,--label-column", *label_column,
                  "--metrics: the file's true labels (prediction never reads them)");
  opts->add_to(cmd, false);
  cmd->callback([=] {
    if (output->empty() && submission->empty() && metrics->empty())
      throw ConfigError(
          "predict: give --output and/or --submission (or --metrics): nothing would be written");
    if (!label_column->empty() && metrics->empty())
      throw ConfigError("predict: --label_column is read only for --metrics");
    set_num_threads(opts->threads);
    Classifier c = load_classifier(*model);
    DataOptions data = *opts;
    data.label_column = *label_column;
    const Dataset ds = read_data_file(opts->file, data.spec(*model, !label_column->empty()));
    const auto ex = encode_for(c, ds, num_threads());
    const EvalOutput e = classify(c, ex, opts->batch_size, "predict");
    const int64_t NL = c.labels.size();
    std::vector<std::string> ids, labels;
    std::vector<std::vector<std::string>> rows;
    for (size_t i = 0; i < ex.size(); ++i) {
      ids.push_back(ds.examples[i].id);
      labels.push_back(c.labels.label(e.predictions[i]));
      std::vector<std::string> row = {ids.back(), labels.back(),
                                      std::to_string(e.probs[i * NL + e.predictions[i]])};
      if (*all_probs)
        for (int64_t k = 0; k < NL; ++k) row.push_back(std::to_string(e.probs[i * NL + k]));
      rows.push_back(std::move(row));
    }
    if (!output->empty()) {
      std::vector<std::string> header = {"id", "label", "probability"};
      if (*all_probs)
        for (const auto& l : c.labels.id2label()) header.push_back("p_" + l);
      data::write_tsv(*output, header, rows);
      std::printf("wrote %zu predictions to %s\n", rows.size(), output->c_str());
    }
    if (!metrics->empty()) {
      nlohmann::ordered_json j;
      j["file"] = opts->file;
      j["examples"] = ex.size();
      nlohmann::ordered_json counts;
      for (int64_t k = 0; k < NL; ++k) counts[c.labels.label(k)] = 0;
      for (const int64_t p : e.predictions)
        counts[c.labels.label(p)] = counts[c.labels.label(p)].get<int64_t>() + 1;
      j["predicted_counts"] = std::move(counts);
      if (e.has_labels) {
        const nlohmann::ordered_json scores = evaluation_json(e.metrics, e.loss, c.labels.id2label());
        for (const auto& [k, v] : scores.items()) j[k] = v;
      }
      write_file_atomic(*metrics, j.dump(2) + "\n");
      std::printf("wrote the metrics %s\n", metrics->c_str());
    }
    if (!submission->empty()) {
      data::write_submission_csv(*submission, ids, labels, *id_header, *label_header);
      std::printf("wrote the submission %s\n", submission->c_str());
    }
  });
}

}  // namespace bertfit::cli

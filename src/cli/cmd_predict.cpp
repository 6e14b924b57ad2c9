// `bertfit predict`: labels and probabilities for an unlabelled file, and the competition's submission CSV.
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "cli/commands.h"
#include "cli/data_options.h"
#include "core/atomic_file.h"
#include "core/threading.h"
#include "data/submission.h"
#include "data/table.h"
#include "train/classifier.h"
#include "train/report_json.h"

namespace bertfit::cli {

namespace {
// Whether the data file has `column`: in the header (TSV / CSV), or in the first object (JSON Lines). A file
// that cannot be read says so later, when it is read for real.
bool has_column(const std::string& file, const data::TableOptions& table, const std::string& column) {
  try {
    data::TableReader reader(file, table, {column});  // TSV / CSV: a missing column throws here
    if (reader.format() != data::FileFormat::JSONL) return true;
    std::vector<std::string> values;
    return reader.next(values) == data::TableReader::Status::OK;
  } catch (const Error&) {
    return false;
  }
}
}  // namespace

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
  auto threshold = std::make_shared<double>(-1);
  cmd->add_option("--multi_label_threshold,--multi-label-threshold", *threshold,
                  "Multi-label models: a label is predicted above this probability (default: the one saved "
                  "with the model, 0.5 when none)");
  opts->add_to(cmd, false);
  cmd->callback([=] {
    if (output->empty() && submission->empty() && metrics->empty())
      throw ConfigError(
          "predict: give --output and/or --submission (or --metrics): nothing would be written");
    if (!label_column->empty() && metrics->empty())
      throw ConfigError("predict: --label_column is read only for --metrics");
    check_output_files({{*output, "--output"}, {*submission, "--submission"}, {*metrics, "--metrics"}},
                       {opts->file});
    set_num_threads(opts->threads);
    Classifier c = load_classifier(*model, /*any_problem_type=*/true);
    const ProblemType problem = c.problem();
    if (*threshold != -1) {
      if (!(*threshold > 0 && *threshold < 1))
        throw ConfigError("option --multi_label_threshold: must be in (0, 1)");
      c.settings.multi_label_threshold = *threshold;
    }
    if (*all_probs && problem == ProblemType::REGRESSION)
      throw ConfigError("predict: --all_probs: " + *model +
                        " is a regression model, it has no probabilities");
    DataOptions data = *opts;
    data.label_column = *label_column;
    data::DatasetSpec spec = data.spec(*model, !label_column->empty());
    if (!submission->empty() && spec.id_column.empty()) {
      // A submission identifies its rows by id. Without --id_column (none given, none saved with the model),
      // the file's column named like the submission's id header is the id; else the rows are numbered, and
      // said so (row numbers under "paperid" would score nothing without a word).
      if (has_column(opts->file, spec.table, *id_header))
        spec.id_column = *id_header;
      else
        std::fprintf(stderr,
                     "note: %s has no column '%s' and no --id_column was given: the submission's ids are "
                     "row numbers (0, 1, ...)\n",
                     opts->file.c_str(), id_header->c_str());
    }
    const Dataset ds = read_data_file(opts->file, spec);
    const auto ex = encode_for(c, ds, num_threads());
    const EvalOutput e = classify(c, ex, opts->batch_size, "predict");
    const int64_t NL = c.labels.size();
    // Columns: id, label (single-label: the class, multi-label: the labels above the threshold joined by
    // ',', regression: the value), then single-label's probability of that class, and with --all_probs every
    // label's probability (multi-label: each label's sigmoid).
    std::vector<std::string> ids, labels;
    std::vector<std::vector<std::string>> rows;
    for (size_t i = 0; i < ex.size(); ++i) {
      ids.push_back(ds.examples[i].id);
      labels.push_back(prediction_text(c, e, i));
      std::vector<std::string> row = {ids.back(), labels.back()};
      if (problem == ProblemType::SINGLE_LABEL)
        row.push_back(std::to_string(e.probs[i * NL + e.predictions[i]]));
      if (*all_probs)
        for (int64_t k = 0; k < NL; ++k) row.push_back(std::to_string(e.probs[i * NL + k]));
      rows.push_back(std::move(row));
    }
    if (!output->empty()) {
      std::vector<std::string> header = {"id", "label"};
      if (problem == ProblemType::SINGLE_LABEL) header.push_back("probability");
      if (*all_probs)
        for (const auto& l : c.labels.id2label()) header.push_back("p_" + l);
      data::write_tsv(*output, header, rows);
      std::printf("wrote %zu predictions to %s\n", rows.size(), output->c_str());
    }
    if (!metrics->empty()) {
      nlohmann::ordered_json j;
      j["file"] = opts->file;
      j["examples"] = ex.size();
      if (problem != ProblemType::REGRESSION) {  // rows predicted with each label
        nlohmann::ordered_json counts;
        for (int64_t k = 0; k < NL; ++k) counts[c.labels.label(k)] = 0;
        for (size_t i = 0; i < ex.size(); ++i)
          for (int64_t k = 0; k < NL; ++k)
            if (problem == ProblemType::SINGLE_LABEL ? e.predictions[i] == k
                                                     : e.probs[i * NL + k] > c.settings.multi_label_threshold)
              counts[c.labels.label(k)] = counts[c.labels.label(k)].get<int64_t>() + 1;
        j["predicted_counts"] = std::move(counts);
      }
      if (e.has_labels) {
        const nlohmann::ordered_json scores = problem == ProblemType::SINGLE_LABEL
                                                  ? evaluation_json(e.metrics, e.loss, c.labels.id2label())
                                                  : problem_evaluation_json(c, e);
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

// `bertfit evaluate`: metrics of a fine-tuned classifier on a labelled file (single-label: accuracy, F1s, the
// classification report and confusion matrix; multi-label and regression: finetune's metrics for them).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "cli/commands.h"
#include "cli/data_options.h"
#include "core/atomic_file.h"
#include "core/threading.h"
#include "train/classifier.h"
#include "train/report_json.h"

namespace bertfit::cli {

void add_evaluate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("evaluate", "Evaluate a fine-tuned classifier on a labelled file");
  auto model = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto opts = std::make_shared<DataOptions>();
  cmd->add_option("--model", *model, "Fine-tuned model directory (bertfit finetune's output)")->required();
  cmd->add_option(
      "--output", *output,
      "Also write the metrics as JSON to this file (per-class scores, the labelled confusion matrix)");
  auto threshold = std::make_shared<double>(-1);
  cmd->add_option("--multi_label_threshold,--multi-label-threshold", *threshold,
                  "Multi-label models: a label is predicted above this probability (default: the one saved "
                  "with the model, 0.5 when none)");
  opts->add_to(cmd, true);
  cmd->callback([model, output, opts, threshold] {
    check_output_files({{*output, "--output"}}, {opts->file});
    set_num_threads(opts->threads);
    Classifier c = load_classifier(*model, /*any_problem_type=*/true);
    if (*threshold != -1) {
      if (!(*threshold > 0 && *threshold < 1))
        throw ConfigError("option --multi_label_threshold: must be in (0, 1)");
      c.settings.multi_label_threshold = *threshold;
    }
    const Dataset ds = read_data_file(opts->file, opts->spec(*model, true));
    const auto ex = encode_for(c, ds, num_threads());
    const EvalOutput e = classify(c, ex, opts->batch_size, "evaluate");
    if (c.problem() != ProblemType::SINGLE_LABEL) {  // multi-label / regression: finetune's metrics
      std::printf("%s: %zu examples, %s\n", opts->file.c_str(), ex.size(),
                  describe_problem_evaluation(c, e).c_str());
      if (!output->empty()) {
        nlohmann::ordered_json j;
        j["file"] = opts->file;
        j["examples"] = ex.size();
        const nlohmann::ordered_json metrics = problem_evaluation_json(c, e);
        for (const auto& [k, v] : metrics.items()) j[k] = v;
        write_file_atomic(*output, j.dump(2) + "\n");
      }
      return;
    }
    std::printf(
        "%s: %zu examples, accuracy %.4f, error rate %.4f, macro-F1 %.4f, micro-F1 %.4f, weighted-F1 %.4f, "
        "loss %.4f\n\n",
        opts->file.c_str(), ex.size(), e.metrics.accuracy, e.metrics.error_rate, e.metrics.macro.f1,
        e.metrics.micro.f1, e.metrics.weighted.f1, e.loss);
    std::printf("%s\n", classification_report(e.metrics, c.labels.id2label(), 4).c_str());
    std::printf("confusion matrix (rows: true, columns: predicted)\n%s\n",
                format_confusion_matrix(e.metrics, c.labels.id2label()).c_str());
    if (!output->empty()) {
      // Per-class scores and the confusion matrix with its label names (train/report_json.h).
      nlohmann::ordered_json j;
      j["file"] = opts->file;
      j["examples"] = ex.size();
      const nlohmann::ordered_json metrics = evaluation_json(e.metrics, e.loss, c.labels.id2label());
      for (const auto& [k, v] : metrics.items()) j[k] = v;
      write_file_atomic(*output, j.dump(2) + "\n");
    }
  });
}

}  // namespace bertfit::cli

#include "cli/data_options.h"

#include <fstream>

#include <nlohmann/json.hpp>

namespace bertfit::cli {

void DataOptions::add_to(CLI::App* cmd, bool labels) {
  cmd->add_option("--file", file, "Data file: .tsv, .csv or .jsonl")->required();
  cmd->add_option("--format", format, "auto | tsv | csv | jsonl (default: as trained)");
  cmd->add_option("--quoting", quoting, "auto | rfc4180 | none (default: as trained)");
  cmd->add_option("--text_columns,--text-columns", text_columns, "Text column(s) (default: as trained)")
      ->delimiter(',');
  cmd->add_option("--text_separator,--text-separator", text_separator,
                  "Joins text columns (default: as trained)");
  cmd->add_option("--text_pair_column,--text-pair-column", text_pair_column, "Second text of pairs");
  if (labels)
    cmd->add_option("--label_column,--label-column", label_column, "Label column (default: as trained)");
  cmd->add_option("--id_column,--id-column", id_column, "Id column (default: as trained)");
  cmd->add_option("--batch_size,--batch-size", batch_size, "Documents per batch")->capture_default_str();
  cmd->add_option("--threads", threads, "Threads (0: all cores)")->capture_default_str();
}

data::DatasetSpec DataOptions::spec(const std::string& model_dir, bool with_labels) const {
  nlohmann::json trained = nlohmann::json::object();
  std::ifstream in(model_dir + "/training_args.json");
  if (in) {
    try {
      in >> trained;
    } catch (const nlohmann::json::exception&) {
      trained = nlohmann::json::object();  // a hand-edited file: fall back to the defaults below
    }
  }
  auto pick = [&](const std::string& given, const char* key, const std::string& fallback) {
    if (!given.empty()) return given;
    if (trained.contains(key) && trained[key].is_string()) return trained[key].get<std::string>();
    return fallback;
  };
  data::DatasetSpec s;
  s.table.format = data::parse_file_format(pick(format, "format", "auto"));
  s.table.quoting = data::parse_quoting(pick(quoting, "quoting", "auto"));
  s.text_columns = text_columns;
  if (s.text_columns.empty()) {
    if (trained.contains("text_columns"))
      s.text_columns = trained["text_columns"].get<std::vector<std::string>>();
    if (s.text_columns.empty()) s.text_columns = {"text"};
  }
  s.text_separator = pick(text_separator, "text_separator", ".");
  s.text_pair_column = pick(text_pair_column, "text_pair_column", "");
  s.label_column = with_labels ? pick(label_column, "label_column", "label") : "";
  s.id_column = pick(id_column, "id_column", "");
  return s;
}

}  // namespace bertfit::cli

// Pseudo-labelled training rows (pseudo_labels.h).
#include "train/pseudo_labels.h"

#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "bertfit/error.h"
#include "data/table.h"
#include "train/problem_type.h"
#include "train/progress.h"

namespace bertfit {

namespace {
void require(bool ok, const std::string& option, const std::string& why) {
  if (!ok) throw ConfigError("option --" + option + ": " + why);
}
}  // namespace

void validate_pseudo_labels(const FinetuneArgs& args) {
  const TrickArgs& t = args.tricks;
  require(t.pseudo_label_threshold > 0 && t.pseudo_label_threshold <= 1, "pseudo_label_threshold",
          "must be in (0, 1]");
  if (t.pseudo_label_file.empty() && t.pseudo_label_data.empty()) return;
  require(!t.pseudo_label_file.empty(), "pseudo_label_file",
          "is required with --pseudo_label_data (the predictions that label its rows)");
  require(!t.pseudo_label_data.empty(), "pseudo_label_data",
          "is required with --pseudo_label_file (the file whose rows its ids name, e.g. the test file)");
  require(parse_problem_type(args.problem_type) == ProblemType::SINGLE_LABEL, "pseudo_label_file",
          "is single-label classification's (--problem_type " + args.problem_type + ")");
  require(args.runs_training(), "pseudo_label_file",
          "adds training rows: give --do_train (or no stage flag)");
}

PseudoLabelCounts add_pseudo_labels(const FinetuneArgs& args, const LabelMap& labels, Dataset* train) {
  PseudoLabelCounts counts;
  const TrickArgs& t = args.tricks;
  if (t.pseudo_label_file.empty()) return counts;
  // The data rows by id, read as the training file is (same columns), without labels.
  data::DatasetSpec spec = finetune_dataset_spec(args);
  spec.label_column.clear();
  const Dataset data = read_data_file(t.pseudo_label_data, spec);
  std::unordered_map<std::string, size_t> row_of;
  for (size_t i = 0; i < data.examples.size(); ++i)
    if (!row_of.emplace(data.examples[i].id, i).second)
      throw FormatError(t.pseudo_label_data + ":" + std::to_string(data.examples[i].line) + ": id '" +
                        data.examples[i].id + "' appears twice (--pseudo_label_file names rows by id)");

  data::TableOptions table;
  table.format = data::FileFormat::TSV;
  table.quoting = data::Quoting::NONE;  // write_tsv's files: no quoting, no tabs inside fields
  data::TableReader reader(t.pseudo_label_file, table, {"id", "label", "probability"});
  counts.per_class.assign(static_cast<size_t>(labels.size()), 0);
  std::vector<std::string> v;
  for (data::TableReader::Status s; (s = reader.next(v)) != data::TableReader::Status::END;) {
    if (s == data::TableReader::Status::BAD_ROW) throw FormatError(reader.error());
    const std::string where = t.pseudo_label_file + ":" + std::to_string(reader.line());
    ++counts.predictions;
    size_t used = 0;
    double p = NAN;
    try {
      p = std::stod(v[2], &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v[2].size() || !std::isfinite(p))
      throw FormatError(where + ": probability '" + v[2] + "' is not a number");
    const auto row = row_of.find(v[0]);
    if (row == row_of.end())
      throw FormatError(where + ": id '" + v[0] + "' is not a row of " + t.pseudo_label_data +
                        (args.id_column.empty() ? " (without --id_column, ids are 0-based row numbers)"
                                                : " (column " + args.id_column + ")"));
    const int64_t id = labels.id(v[1]);
    if (id < 0) throw FormatError(where + ": label '" + v[1] + "' is not one of the training labels");
    if (p < t.pseudo_label_threshold) continue;
    data::Example e = data.examples[row->second];
    e.label = v[1];
    train->examples.push_back(std::move(e));
    ++counts.added;
    ++counts.per_class[static_cast<size_t>(id)];
  }
  char threshold[32];
  std::snprintf(threshold, sizeof threshold, "%g", t.pseudo_label_threshold);
  std::string per_class;
  for (int64_t c = 0; c < labels.size(); ++c)
    per_class +=
        (c ? ", " : "") + labels.label(c) + " " + std::to_string(counts.per_class[static_cast<size_t>(c)]);
  log_message("pseudo-labels: " + std::to_string(counts.added) + " of " + std::to_string(counts.predictions) +
              " predictions in " + t.pseudo_label_file + " have probability >= " + threshold +
              "; their rows of " + t.pseudo_label_data + " added to the training data (" + per_class + ")");
  return counts;
}

}  // namespace bertfit

// Pseudo-labelled training rows (pseudo_labels.h).
#include "train/pseudo_labels.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "data/table.h"
#include "train/problem_type.h"
#include "train/progress.h"

namespace bertfit {

namespace {
void require(bool ok, const std::string& option, const std::string& why) {
  if (!ok) throw ConfigError("option --" + option + ": " + why);
}

// A number cell of the prediction file; FormatError naming the file, line and column otherwise.
double number_of(const std::string& v, const std::string& where, const std::string& column) {
  size_t used = 0;
  double p = NAN;
  try {
    p = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size() || !std::isfinite(p))
    throw FormatError(where + ": " + column + " '" + v + "' is not a number");
  return p;
}

std::string fmt_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

void validate_pseudo_labels(const FinetuneArgs& args) {
  const TrickArgs& t = args.tricks;
  require(t.pseudo_label_threshold > 0 && t.pseudo_label_threshold <= 1, "pseudo_label_threshold",
          "must be in (0, 1]");
  require(t.pseudo_label_max_std >= 0 && std::isfinite(t.pseudo_label_max_std), "pseudo_label_max_std",
          "must be >= 0 (0: every regression row)");
  if (t.pseudo_label_file.empty() && t.pseudo_label_data.empty()) {
    require(t.pseudo_label_max_std == 0, "pseudo_label_max_std", "selects rows of --pseudo_label_file");
    return;
  }
  require(!t.pseudo_label_file.empty(), "pseudo_label_file",
          "is required with --pseudo_label_data (the predictions that label its rows)");
  require(!t.pseudo_label_data.empty(), "pseudo_label_data",
          "is required with --pseudo_label_file (the file whose rows its ids name, e.g. the test file)");
  require(args.runs_training(), "pseudo_label_file",
          "adds training rows: give --do_train (or no stage flag)");
  const ProblemType problem = parse_problem_type(args.problem_type);
  if (problem == ProblemType::MULTI_LABEL)
    require(t.pseudo_label_threshold > 0.5, "pseudo_label_threshold",
            "multi-label: a row passes when every label's probability is >= the threshold or <= 1 - it, so "
            "it must be in (0.5, 1] (got " +
                fmt_g(t.pseudo_label_threshold) + ")");
  if (problem == ProblemType::REGRESSION)
    require(t.pseudo_label_threshold == TrickArgs{}.pseudo_label_threshold, "pseudo_label_threshold",
            "is a probability; regression values have none: every row passes, or give "
            "--pseudo_label_max_std to keep the rows whose ensemble members agree");
  require(t.pseudo_label_max_std == 0 || problem == ProblemType::REGRESSION, "pseudo_label_max_std",
          "is regression's (classification rows pass by --pseudo_label_threshold)");
  // Rows of the validation file would be trained on and then evaluated (a leak); rows of the training file
  // would come twice, once with their own label and once with a predicted one.
  std::error_code ec;
  for (const auto& [file, option] :
       {std::pair{args.validation_file, "--validation_file"}, std::pair{args.train_file, "--train_file"}})
    require(file.empty() || !std::filesystem::equivalent(t.pseudo_label_data, file, ec), "pseudo_label_data",
            t.pseudo_label_data + " is the " + option + ": pseudo-labels are for rows the run neither " +
                "trains nor evaluates on (e.g. the test file)");
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
  const ProblemType problem = parse_problem_type(args.problem_type);
  const std::string& file = t.pseudo_label_file;
  // The data row an id names.
  auto row_for = [&](const std::string& id, const std::string& where) {
    const auto row = row_of.find(id);
    if (row == row_of.end())
      throw FormatError(where + ": id '" + id + "' is not a row of " + t.pseudo_label_data +
                        (args.id_column.empty() ? " (without --id_column, ids are 0-based row numbers)"
                                                : " (column " + args.id_column + ")"));
    return row->second;
  };
  auto add_row = [&](size_t row, std::string label) {
    data::Example e = data.examples[row];
    e.label = std::move(label);
    e.source = t.pseudo_label_data;  // its messages name the file it came from, not the training file
    train->examples.push_back(std::move(e));
    ++counts.added;
  };
  counts.per_class.assign(problem == ProblemType::REGRESSION ? 0 : static_cast<size_t>(labels.size()), 0);
  std::vector<std::string> v;
  if (problem == ProblemType::SINGLE_LABEL) {
    // bertfit ensemble --method rank writes a rank score instead of the probability: the threshold is on it.
    const std::vector<std::string> header = data::TableReader(file, table, {"id"}).header();
    const char* confidence = std::find(header.begin(), header.end(), "probability") == header.end() &&
                                     std::find(header.begin(), header.end(), "score") != header.end()
                                 ? "score"
                                 : "probability";
    data::TableReader reader(file, table, {"id", "label", confidence});
    for (data::TableReader::Status s; (s = reader.next(v)) != data::TableReader::Status::END;) {
      if (s == data::TableReader::Status::BAD_ROW) throw FormatError(reader.error());
      const std::string where = file + ":" + std::to_string(reader.line());
      ++counts.predictions;
      const double p = number_of(v[2], where, confidence);
      const size_t row = row_for(v[0], where);
      const int64_t id = labels.id(v[1]);
      if (id < 0) throw FormatError(where + ": label '" + v[1] + "' is not one of the training labels");
      if (p < t.pseudo_label_threshold) continue;
      add_row(row, v[1]);
      ++counts.per_class[static_cast<size_t>(id)];
    }
  } else if (problem == ProblemType::MULTI_LABEL) {
    // Every training label's probability column, in label-id order.
    const std::vector<std::string> header = data::TableReader(file, table, {"id"}).header();
    if (std::find(header.begin(), header.end(), "probability") != header.end())
      throw FormatError(file +
                        ":1: a single-label prediction file (it has a probability column); a "
                        "multi-label run needs each label's sigmoid, p_<label> (bertfit predict "
                        "--all_probs of a multi-label model, bertfit ensemble of such files)");
    std::vector<std::string> columns = {"id"};
    for (int64_t l = 0; l < labels.size(); ++l) columns.push_back("p_" + labels.label(l));
    for (const auto& h : header)
      if (h.rfind("p_", 0) == 0 && std::find(columns.begin(), columns.end(), h) == columns.end())
        throw FormatError(file + ":1: label '" + h.substr(2) + "' (column " + h +
                          ") is not one of the training labels");
    for (size_t c = 1; c < columns.size(); ++c)
      if (std::find(header.begin(), header.end(), columns[c]) == header.end())
        throw FormatError(file + ":1: no column " + columns[c] +
                          ": a multi-label run needs every training label's probability (bertfit predict "
                          "--all_probs)");
    data::TableReader reader(file, table, columns);
    const double lo = 1 - t.pseudo_label_threshold;
    for (data::TableReader::Status s; (s = reader.next(v)) != data::TableReader::Status::END;) {
      if (s == data::TableReader::Status::BAD_ROW) throw FormatError(reader.error());
      const std::string where = file + ":" + std::to_string(reader.line());
      ++counts.predictions;
      const size_t row = row_for(v[0], where);
      bool confident = true;
      nlohmann::json set = nlohmann::json::array();  // the label cell: a JSON list (labels may hold commas)
      std::vector<size_t> on;
      for (size_t c = 1; c < columns.size(); ++c) {
        const double p = number_of(v[c], where, columns[c]);
        if (p < 0 || p > 1) throw FormatError(where + ": " + columns[c] + " '" + v[c] + "' is not in [0, 1]");
        confident = confident && (p >= t.pseudo_label_threshold || p <= lo);
        if (p > 0.5) {
          set.push_back(labels.label(static_cast<int64_t>(c - 1)));
          on.push_back(c - 1);
        }
      }
      if (!confident) continue;
      add_row(row, set.dump());
      for (size_t l : on) ++counts.per_class[l];
    }
  } else {  // regression
    const bool by_spread = t.pseudo_label_max_std > 0;
    std::vector<std::string> columns = {"id", "label"};
    if (by_spread) {
      const std::vector<std::string> header = data::TableReader(file, table, {"id"}).header();
      if (std::find(header.begin(), header.end(), "std") == header.end())
        throw FormatError(file +
                          ":1: --pseudo_label_max_std needs the std column (the members' spread: "
                          "bertfit ensemble of regression models or files, or a --k_folds run's "
                          "test_predictions.tsv)");
      columns.push_back("std");
    }
    data::TableReader reader(file, table, columns);
    for (data::TableReader::Status s; (s = reader.next(v)) != data::TableReader::Status::END;) {
      if (s == data::TableReader::Status::BAD_ROW) throw FormatError(reader.error());
      const std::string where = file + ":" + std::to_string(reader.line());
      ++counts.predictions;
      number_of(v[1], where, "label (the value)");
      const size_t row = row_for(v[0], where);
      if (by_spread && number_of(v[2], where, "std") > t.pseudo_label_max_std) continue;
      add_row(row, v[1]);
    }
  }
  std::string per_class;
  for (size_t c = 0; c < counts.per_class.size(); ++c)
    per_class +=
        (c ? ", " : "") + labels.label(static_cast<int64_t>(c)) + " " + std::to_string(counts.per_class[c]);
  const std::string rule =
      problem == ProblemType::SINGLE_LABEL ? "have probability >= " + fmt_g(t.pseudo_label_threshold)
      : problem == ProblemType::MULTI_LABEL
          ? "are confident about every label (probability >= " + fmt_g(t.pseudo_label_threshold) +
                " or <= " + fmt_g(1 - t.pseudo_label_threshold) + ")"
      : t.pseudo_label_max_std > 0 ? "have std <= " + fmt_g(t.pseudo_label_max_std)
                                   : "are taken (regression: every row)";
  log_message("pseudo-labels: " + std::to_string(counts.added) + " of " + std::to_string(counts.predictions) +
              " predictions in " + file + " " + rule + "; their rows of " + t.pseudo_label_data +
              " added to the training data" + (per_class.empty() ? "" : " (" + per_class + ")"));
  return counts;
}

}  // namespace bertfit

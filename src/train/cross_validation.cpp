// Stratified k-fold cross-validation (cross_validation.h).
#include "train/cross_validation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "core/atomic_file.h"
#include "core/rng.h"
#include "core/threading.h"
#include "dist/communicator.h"
#include "train/checkpoints.h"
#include "train/classifier.h"
#include "train/ensemble.h"
#include "train/metrics.h"
#include "train/problem_type.h"
#include "train/progress.h"
#include "train/training_loop.h"

namespace fs = std::filesystem;

namespace bertfit {

std::vector<std::vector<int64_t>> stratified_folds(const std::vector<int64_t>& labels, int64_t num_classes,
                                                   int64_t k, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(labels.size());
  if (k < 2) throw ConfigError("option --k_folds: must be >= 2 (got " + std::to_string(k) + ")");
  if (k > n)
    throw ConfigError("option --k_folds: " + std::to_string(k) +
                      " folds need at least as many training rows (" + std::to_string(n) + ")");
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(std::max<int64_t>(num_classes, 0)));
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes)
      throw ConfigError("stratified_folds: label " + std::to_string(labels[i]) + " of row " +
                        std::to_string(i) + " is outside [0, " + std::to_string(num_classes) + ")");
    by_class[static_cast<size_t>(labels[i])].push_back(i);
  }
  Rng rng(seed ^ 0xF01D5ull);
  std::vector<std::vector<int64_t>> folds(static_cast<size_t>(k));
  int64_t position = 0;  // over all classes: keeps the fold sizes within one of each other
  for (auto& rows : by_class) {
    for (int64_t i = static_cast<int64_t>(rows.size()) - 1; i > 0; --i)  // Fisher-Yates, seeded
      std::swap(rows[i], rows[rng.below(static_cast<uint64_t>(i + 1))]);
    for (int64_t r : rows) folds[static_cast<size_t>(position++ % k)].push_back(r);
  }
  for (auto& f : folds) std::sort(f.begin(), f.end());
  return folds;
}

namespace {
void check_fold_count(int64_t k, int64_t n) {
  if (k < 2) throw ConfigError("option --k_folds: must be >= 2 (got " + std::to_string(k) + ")");
  if (k > n)
    throw ConfigError("option --k_folds: " + std::to_string(k) +
                      " folds need at least as many training rows (" + std::to_string(n) + ")");
}
}  // namespace

std::vector<std::vector<int64_t>> multi_label_stratified_folds(const std::vector<std::vector<int64_t>>& sets,
                                                               int64_t num_labels, int64_t k, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(sets.size());
  check_fold_count(k, n);
  const size_t K = static_cast<size_t>(k), L = static_cast<size_t>(std::max<int64_t>(num_labels, 0));
  std::vector<std::vector<int64_t>> rows_of(L);  // each label's rows, in a seeded order
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  Rng rng(seed ^ 0xF01D5ull ^ 0x3117ull);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint64_t>(i + 1))]);
  for (int64_t r : order)
    for (int64_t l : sets[static_cast<size_t>(r)]) {
      if (l < 0 || l >= num_labels)
        throw ConfigError("multi_label_stratified_folds: label " + std::to_string(l) + " of row " +
                          std::to_string(r) + " is outside [0, " + std::to_string(num_labels) + ")");
      rows_of[static_cast<size_t>(l)].push_back(r);
    }
  // What each fold still wants: rows, and rows of each label (fractional: count / k).
  std::vector<double> want(K, static_cast<double>(n) / static_cast<double>(k));
  std::vector<std::vector<double>> want_label(K, std::vector<double>(L));
  for (size_t l = 0; l < L; ++l)
    for (size_t f = 0; f < K; ++f)
      want_label[f][l] = static_cast<double>(rows_of[l].size()) / static_cast<double>(k);
  std::vector<int64_t> fold_of(static_cast<size_t>(n), -1);
  std::vector<size_t> left(L);  // rows of each label not yet dealt
  for (size_t l = 0; l < L; ++l) left[l] = rows_of[l].size();
  // The fold that maximises key(f), ties broken by `second`, then by a seeded draw among the tied.
  auto pick = [&](const std::function<double(size_t)>& key, const std::function<double(size_t)>& second) {
    std::vector<size_t> best;
    for (size_t f = 0; f < K; ++f) {
      if (best.empty() || key(f) > key(best[0]) || (key(f) == key(best[0]) && second(f) > second(best[0])))
        best.assign(1, f);
      else if (key(f) == key(best[0]) && second(f) == second(best[0]))
        best.push_back(f);
    }
    return best[rng.below(best.size())];
  };
  auto assign = [&](int64_t r, size_t f) {
    fold_of[static_cast<size_t>(r)] = static_cast<int64_t>(f);
    want[f] -= 1;
    for (int64_t l : sets[static_cast<size_t>(r)]) {
      want_label[f][static_cast<size_t>(l)] -= 1;
      --left[static_cast<size_t>(l)];
    }
  };
  while (true) {
    size_t rarest = L;  // the label with the fewest rows still to deal (ties: the lowest id)
    for (size_t l = 0; l < L; ++l)
      if (left[l] > 0 && (rarest == L || left[l] < left[rarest])) rarest = l;
    if (rarest == L) break;
    for (int64_t r : rows_of[rarest]) {
      if (fold_of[static_cast<size_t>(r)] >= 0) continue;
      assign(r, pick([&](size_t f) { return want_label[f][rarest]; }, [&](size_t f) { return want[f]; }));
    }
  }
  for (int64_t r : order)  // rows without a label
    if (fold_of[static_cast<size_t>(r)] < 0)
      assign(r, pick([&](size_t f) { return want[f]; }, [](size_t) { return 0.0; }));
  std::vector<std::vector<int64_t>> folds(K);
  for (int64_t i = 0; i < n; ++i) folds[static_cast<size_t>(fold_of[static_cast<size_t>(i)])].push_back(i);
  for (size_t f = 0; f < K; ++f)
    if (folds[f].empty())
      throw ConfigError("option --k_folds: the label sets leave fold " + std::to_string(f) + " of " +
                        std::to_string(k) + " without rows; use fewer folds");
  return folds;  // filled in row order: sorted
}

std::vector<std::vector<int64_t>> regression_stratified_folds(const std::vector<double>& targets, int64_t k,
                                                              uint64_t seed) {
  const int64_t n = static_cast<int64_t>(targets.size());
  check_fold_count(k, n);
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(targets[static_cast<size_t>(i)]))
      throw ConfigError("regression_stratified_folds: the target of row " + std::to_string(i) +
                        " is not a finite number");
  // Sorted by value; equal values in a seeded order, so that no bin depends on the file order of ties.
  std::vector<uint64_t> tie(static_cast<size_t>(n));
  Rng rng(seed ^ 0xB1115ull);
  for (auto& t : tie) t = rng.next_u64();
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const double va = targets[static_cast<size_t>(a)], vb = targets[static_cast<size_t>(b)];
    return va != vb ? va < vb : tie[static_cast<size_t>(a)] < tie[static_cast<size_t>(b)];
  });
  std::vector<int64_t> bin(static_cast<size_t>(n));
  for (int64_t rank = 0; rank < n; ++rank)
    bin[static_cast<size_t>(order[static_cast<size_t>(rank)])] = rank / k;
  // Bins of k rows dealt in turn with the position carried over: each full bin gives every fold one row.
  return stratified_folds(bin, (n + k - 1) / k, k, seed);
}

namespace {
// The training rows' targets as finetune encodes them: multi-hot over the labels, or the value.
std::vector<std::vector<float>> row_targets(const Dataset& ds, ProblemType problem, const LabelMap& labels) {
  std::vector<EncodedExample> ex(ds.examples.size());
  set_problem_targets(ds, problem, &labels, &ex);
  std::vector<std::vector<float>> out;
  out.reserve(ex.size());
  for (auto& e : ex) out.push_back(std::move(e.targets));
  return out;
}
}  // namespace

std::vector<std::vector<int64_t>> cross_validation_folds(const Dataset& train, ProblemType problem,
                                                         const LabelMap& labels, int64_t k, uint64_t seed) {
  if (problem == ProblemType::SINGLE_LABEL)
    return stratified_folds(labels.encode(train), labels.size(), k, seed);
  const auto targets = row_targets(train, problem, labels);
  if (problem == ProblemType::REGRESSION) {
    std::vector<double> values;
    for (const auto& t : targets) values.push_back(t.empty() ? NAN : static_cast<double>(t[0]));
    return regression_stratified_folds(values, k, seed);
  }
  std::vector<std::vector<int64_t>> sets(targets.size());
  for (size_t i = 0; i < targets.size(); ++i)
    for (size_t l = 0; l < targets[i].size(); ++l)
      if (targets[i][l] > 0.5f) sets[i].push_back(static_cast<int64_t>(l));
  return multi_label_stratified_folds(sets, labels.size(), k, seed);
}

namespace {

void require(bool ok, const std::string& option, const std::string& why) {
  if (!ok) throw ConfigError("option --" + option + ": " + why);
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string fold_dir(const FinetuneArgs& args, int64_t k) {
  return args.output_dir + "/fold-" + std::to_string(k);
}

// FNV-1a over the rows' ids, labels and texts: which rows a fold holds, so a resumed run can tell a fold of
// another split (other k, seed or training file) from its own.
std::string rows_fingerprint(const Dataset& ds, const std::vector<int64_t>& rows) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto add = [&h](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    h = (h ^ 0xFFu) * 0x100000001b3ull;  // a separator no UTF-8 text holds
  };
  for (int64_t i : rows) {
    const data::Example& e = ds.examples[static_cast<size_t>(i)];
    add(e.id);
    add(e.label);
    add(e.text);
    add(e.text_pair);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

nlohmann::ordered_json read_json_file(const std::string& path) {
  std::ifstream in(path);
  try {
    return nlohmann::ordered_json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": not valid JSON (" + e.what() + ")");
  }
}

// Settings a resumed cross-validation may change: they do not change what a fold trains.
bool may_change_on_resume(const std::string& key) {
  static const char* const keys[] = {"resume_from_checkpoint",
                                     "overwrite_output_dir",
                                     "do_eval",
                                     "do_predict",
                                     "test_file",
                                     "max_predict_samples",
                                     "threads",
                                     "per_device_eval_batch_size",
                                     "logging_dir",
                                     "report_to",
                                     "logging_steps"};
  return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
}

// The output directory of the whole run: as prepare_output_dir, but a rerun resumes with "latest" (each fold
// from its own latest checkpoint), after checking that the settings are the saved ones.
bool prepare_cv_dir(const FinetuneArgs& args) {
  std::error_code ec;
  const std::string& dir = args.output_dir;
  const bool resuming = !args.resume_from_checkpoint.empty();
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw ConfigError("option --output_dir: " + dir + " exists and is not a directory");
  const bool non_empty = fs::is_directory(dir, ec) && !fs::is_empty(dir, ec);
  if (!resuming && non_empty && !args.overwrite_output_dir)
    throw ConfigError("output_dir " + dir +
                      " exists and is not empty: pass --overwrite_output_dir (trains every fold again), or "
                      "--resume_from_checkpoint latest (skips the finished folds)");
  const std::string saved = dir + "/training_args.json";
  if (resuming && fs::exists(saved, ec)) {
    const nlohmann::ordered_json before = read_json_file(saved), now = args.to_json();
    std::string diff;
    for (const auto& [key, value] : now.items())
      if (!may_change_on_resume(key) && (!before.contains(key) || before.at(key) != value))
        diff += (diff.empty() ? "" : ", ") + key + " (" +
                (before.contains(key) ? before.at(key).dump() : "unset") + " -> " + value.dump() + ")";
    if (!diff.empty())
      throw ConfigError("--resume_from_checkpoint: " + saved +
                        " was written with other settings, so its folds would mix with this run's: " + diff +
                        ". Use another --output_dir, or --overwrite_output_dir to train every fold again");
  }
  if (dist::world().rank() == 0) {
    fs::create_directories(dir, ec);
    if (ec) throw FormatError(dir + ": cannot create the output directory: " + ec.message());
    lock_output_dir(dir);  // before a rerun's clean-up below, which would delete a running run's folds
    // --overwrite_output_dir trains every fold again: a previous run's folds (finished ones would be skipped
    // by a later resume, and would then mix with this run's) go first.
    if (!resuming && non_empty)
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_directory() && name.rfind("fold-", 0) == 0 &&
            name.find_first_not_of("0123456789", 5) == std::string::npos)
          fs::remove_all(entry.path(), ec);
      }
    write_file_atomic(saved, args.to_json().dump(2) + "\n");
  }
  return resuming;
}

// The run's label set, as finetune builds it for the problem type: the classes, every label of a multi-label
// file, or regression's one output (HF: LABEL_0).
LabelMap problem_label_map(const Dataset& ds, ProblemType problem) {
  return problem == ProblemType::MULTI_LABEL  ? multi_label_map(ds)
         : problem == ProblemType::REGRESSION ? LabelMap::from_id2label({"LABEL_0"})
                                              : LabelMap::from_dataset(ds);
}

// Predictions as a prediction file's table: rows `rows` of ds (ids), outputs [rows, labels] (regression: one
// value per row).
PredictionTable table_of(const Dataset& ds, const std::vector<int64_t>& rows, const std::vector<float>& out,
                         const LabelMap& labels, ProblemType problem, double threshold) {
  PredictionTable t;
  t.problem = problem;
  t.threshold = threshold;
  for (int64_t i : rows) t.ids.push_back(ds.examples[static_cast<size_t>(i)].id);
  if (problem == ProblemType::REGRESSION) {
    t.values.assign(out.begin(), out.end());
  } else {
    t.labels = labels.id2label();
    t.probs.assign(out.begin(), out.end());
  }
  return t;
}

// A table's outputs in the run's label order ([rows, labels]; regression [rows]): files are matched by
// column name, not position.
std::vector<float> outputs_in_label_order(const PredictionTable& t, const LabelMap& labels,
                                          const std::string& what) {
  std::vector<float> out;
  if (t.problem == ProblemType::REGRESSION) {
    if (t.values.size() != t.rows()) throw FormatError(what + ": no value per row (not a regression file)");
    out.assign(t.values.begin(), t.values.end());
    return out;
  }
  const size_t NL = static_cast<size_t>(labels.size()), K = t.labels.size();
  std::vector<size_t> col(NL);
  for (size_t c = 0; c < NL; ++c) {
    const auto it = std::find(t.labels.begin(), t.labels.end(), labels.label(static_cast<int64_t>(c)));
    if (it == t.labels.end())
      throw FormatError(what + " lacks label " + labels.label(static_cast<int64_t>(c)));
    col[c] = static_cast<size_t>(it - t.labels.begin());
  }
  out.resize(t.rows() * NL);
  for (size_t r = 0; r < t.rows(); ++r)
    for (size_t c = 0; c < NL; ++c) out[r * NL + c] = static_cast<float>(t.probs[r * K + col[c]]);
  return out;
}

// The training file's labels: class ids (single-label) or finetune's targets (multi-hot rows, values).
struct Truth {
  std::vector<int64_t> ids;
  std::vector<std::vector<float>> targets;
};

// The evaluation of predictions `out` (outputs_in_label_order) of rows `rows` against their labels, with the
// metrics `bertfit evaluate` reports for the problem type (problem_metrics.h; no loss: the files hold
// rounded probabilities).
EvalOutput evaluate_outputs(const std::vector<float>& out, const std::vector<int64_t>& rows,
                            const Truth& truth, const LabelMap& labels, ProblemType problem,
                            double threshold) {
  EvalOutput e;
  e.has_labels = true;
  e.problem = problem;
  e.probs = out;
  const size_t NL = static_cast<size_t>(labels.size());
  e.predictions.assign(rows.size(), -1);
  if (problem == ProblemType::SINGLE_LABEL) {
    std::vector<int64_t> want;
    for (size_t r = 0; r < rows.size(); ++r) {
      const float* p = out.data() + r * NL;
      e.predictions[r] = std::max_element(p, p + NL) - p;
      want.push_back(truth.ids[static_cast<size_t>(rows[r])]);
    }
    e.metrics = compute_metrics(e.predictions, want, labels.size());
    return e;
  }
  std::vector<float> targets;
  for (int64_t i : rows) {
    const auto& t = truth.targets[static_cast<size_t>(i)];
    targets.insert(targets.end(), t.begin(), t.end());
  }
  if (problem == ProblemType::MULTI_LABEL)
    e.multi_label = multi_label_metrics(out, targets, labels.size(), threshold);
  else
    e.regression = regression_metrics(out, targets);
  return e;
}

// The metrics of an evaluation under the names `bertfit evaluate --output` uses for the problem type.
std::vector<std::pair<std::string, double>> metric_values(const EvalOutput& e) {
  if (e.problem == ProblemType::MULTI_LABEL)
    return {{"exact_match", e.multi_label.exact_match},
            {"accuracy", e.multi_label.exact_match},  // sklearn's accuracy on label sets, as finetune's
            {"micro_f1", e.multi_label.micro_f1},
            {"macro_f1", e.multi_label.macro_f1},
            {"micro_precision", e.multi_label.micro_precision},
            {"micro_recall", e.multi_label.micro_recall}};
  if (e.problem == ProblemType::REGRESSION)
    return {
        {"mse", e.regression.mse}, {"pearson", e.regression.pearson}, {"spearman", e.regression.spearman}};
  return {{"accuracy", e.metrics.accuracy},
          {"error_rate", e.metrics.error_rate},
          {"macro_f1", e.metrics.macro.f1},
          {"micro_f1", e.metrics.micro.f1},
          {"weighted_f1", e.metrics.weighted.f1}};
}

// A line of the log: the problem type's headline metrics.
std::string describe(const EvalOutput& e) {
  if (e.problem == ProblemType::MULTI_LABEL)
    return "exact match " + fmt("%.4f", e.multi_label.exact_match) + ", micro-F1 " +
           fmt("%.4f", e.multi_label.micro_f1) + ", macro-F1 " + fmt("%.4f", e.multi_label.macro_f1);
  if (e.problem == ProblemType::REGRESSION)
    return "mse " + fmt("%.4f", e.regression.mse) + ", pearson " + fmt("%.4f", e.regression.pearson) +
           ", spearman " + fmt("%.4f", e.regression.spearman);
  return "accuracy " + fmt("%.4f", e.metrics.accuracy) + ", macro-F1 " + fmt("%.4f", e.metrics.macro.f1);
}

// A fold's own file, checked against the fold being run: a fold of another split is an error.
void check_fold_identity(const std::string& path, const nlohmann::ordered_json& want) {
  const nlohmann::ordered_json have = read_json_file(path);
  if (have != want)
    throw ConfigError(path + " describes another split (" + have.dump() + ", this run: " + want.dump() +
                      "): its fold would mix with this run's. Use another --output_dir, or "
                      "--overwrite_output_dir to train every fold again");
}

}  // namespace

void validate_cross_validation(const FinetuneArgs& args) {
  const TrickArgs& t = args.tricks;
  require(t.k_folds == 0 || t.k_folds >= 2, "k_folds", "must be >= 2 (0: no cross-validation)");
  require(t.fold >= -1 && (t.fold == -1 || t.fold < t.k_folds), "fold",
          "must be in [0, k_folds) with --k_folds (-1: every fold)");
  if (t.k_folds == 0) return;
  require(args.runs_training(), "k_folds", "trains: give --do_train (or no stage flag)");
  require(args.validation_file.empty(), "validation_file",
          "is not used with --k_folds: every fold is evaluated on its own rows of --train_file (the "
          "out-of-fold predictions); drop it, or evaluate the fold models on it with bertfit evaluate");
  require(args.max_eval_samples == 0, "max_eval_samples",
          "is not used with --k_folds: the out-of-fold predictions need every row of every fold");
  require(
      args.resume_from_checkpoint.empty() || args.resume_from_checkpoint == "latest" || t.fold >= 0,
      "resume_from_checkpoint",
      "with --k_folds takes 'latest': finished folds are skipped, the unfinished one resumes from its own "
      "latest checkpoint");
}

void select_fold(const FinetuneArgs& args, const LabelMap& labels, Dataset* train, Dataset* dev) {
  const auto folds = cross_validation_folds(*train, parse_problem_type(args.problem_type), labels,
                                            args.tricks.k_folds, args.seed);
  const std::vector<int64_t>& held = folds[static_cast<size_t>(args.tricks.fold)];
  Dataset t = *train, d = *train;
  t.examples.clear();
  d.examples.clear();
  size_t next = 0;
  for (size_t i = 0; i < train->examples.size(); ++i) {
    const bool in_fold = next < held.size() && held[next] == static_cast<int64_t>(i);
    (in_fold ? d : t).examples.push_back(train->examples[i]);
    next += in_fold;
  }
  *train = std::move(t);
  *dev = std::move(d);
}

FinetuneResult cross_validate(const FinetuneArgs& args, const LoopHooks& hooks) {
  const bool resuming = prepare_cv_dir(args);
  const bool writer = dist::world().rank() == 0;
  const int64_t K = args.tricks.k_folds;
  const ProblemType problem = parse_problem_type(args.problem_type);
  const double threshold = args.multi_label_threshold;

  // The split, as every fold's finetune() computes it again (select_fold: same file, labels, k and seed).
  const Dataset train_ds = read_data_file(args.train_file, finetune_dataset_spec(args));
  const LabelMap labels = problem_label_map(train_ds, problem);
  Truth truth;
  if (problem == ProblemType::SINGLE_LABEL)
    truth.ids = labels.encode(train_ds);
  else
    truth.targets = row_targets(train_ds, problem, labels);
  const auto folds = cross_validation_folds(train_ds, problem, labels, K, args.seed);
  {
    std::string sizes;
    for (const auto& f : folds) sizes += (sizes.empty() ? "" : ", ") + std::to_string(f.size());
    log_message("cross-validation: " + std::to_string(K) + " stratified folds of " + args.train_file + " (" +
                std::to_string(train_ds.examples.size()) + " rows, folds of " + sizes + " rows" +
                (problem == ProblemType::MULTI_LABEL  ? "; iterative stratification of the label sets"
                 : problem == ProblemType::REGRESSION ? "; by quantile bins of the target"
                                                      : "") +
                ")");
    if (problem != ProblemType::REGRESSION) {
      std::vector<int64_t> counts(static_cast<size_t>(labels.size()), 0);
      if (problem == ProblemType::SINGLE_LABEL)
        for (int64_t l : truth.ids) ++counts[static_cast<size_t>(l)];
      else
        for (const auto& t : truth.targets)
          for (size_t l = 0; l < t.size(); ++l) counts[l] += t[l] > 0.5f;
      for (int64_t c = 0; c < labels.size(); ++c)
        if (counts[static_cast<size_t>(c)] < K)
          log_message(std::string("note: ") + (problem == ProblemType::SINGLE_LABEL ? "class " : "label ") +
                      labels.label(c) + " has " + std::to_string(counts[static_cast<size_t>(c)]) +
                      " rows, fewer than the " + std::to_string(K) + " folds: some folds do not evaluate it");
    }
  }
  Dataset test_ds;
  if (args.do_predict) test_ds = read_finetune_test_file(args);

  // A fold model's predictions over the test file, as a prediction file.
  auto predict_test = [&](const std::string& dir, int64_t k, const std::string& path) {
    Classifier c = load_classifier(dir, /*any_problem_type=*/true);
    c.settings.multi_label_threshold = threshold;
    const EvalOutput e = classify(c, encode_for(c, test_ds, num_threads()), args.per_device_eval_batch_size,
                                  "predict fold " + std::to_string(k));
    std::vector<int64_t> all(test_ds.examples.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
    if (writer) write_prediction_file(path, table_of(test_ds, all, e.probs, c.labels, problem, threshold));
  };

  FinetuneResult result;
  result.output_dir = args.output_dir;
  std::vector<std::vector<float>> oof_outputs;  // per fold, in label order
  std::vector<PredictionTable> test_tables;
  nlohmann::ordered_json fold_results = nlohmann::ordered_json::array();
  for (int64_t k = 0; k < K; ++k) {
    const std::string dir = fold_dir(args, k);
    const std::vector<int64_t>& rows = folds[static_cast<size_t>(k)];
    nlohmann::ordered_json identity;
    identity["k_folds"] = K;
    identity["fold"] = k;
    identity["seed"] = args.seed;
    identity["train_file"] = args.train_file;
    identity["train_rows"] = train_ds.examples.size();
    identity["eval_rows"] = rows.size();
    identity["eval_rows_fingerprint"] = rows_fingerprint(train_ds, rows);
    const std::string identity_file = dir + "/fold.json", oof_file = dir + "/oof_predictions.tsv",
                      test_file = dir + "/test_predictions.tsv";
    std::error_code ec;
    if (resuming && fs::exists(identity_file, ec)) check_fold_identity(identity_file, identity);
    const bool finished = resuming && fs::exists(oof_file, ec);
    if (finished) {
      log_message("fold " + std::to_string(k) + ": finished in " + dir + ", skipped");
    } else {
      FinetuneArgs fa = args;
      fa.tricks.fold = k;
      fa.output_dir = dir;
      fa.do_predict = false;  // the test file is predicted below, with probabilities
      if (args.stage_flags_given()) fa.do_eval = true;  // the fold's evaluation is its out-of-fold prediction
      if (!args.logging_dir.empty()) fa.logging_dir = args.logging_dir + "/fold-" + std::to_string(k);
      // A fold dir is this run's own: a fresh fold starts over whatever a killed run left in it (without a
      // checkpoint there is nothing to resume), a resumed one continues from its latest checkpoint.
      fa.overwrite_output_dir = true;
      fa.resume_from_checkpoint =
          resuming && fs::is_directory(dir, ec) && !find_latest_checkpoint(dir).empty() ? "latest" : "";
      if (writer) {
        fs::create_directories(dir, ec);
        if (ec) throw FormatError(dir + ": cannot create the fold's directory: " + ec.message());
        write_file_atomic(identity_file, identity.dump(2) + "\n");
      }
      log_message("fold " + std::to_string(k) + " of " + std::to_string(K) + ": training on " +
                  std::to_string(train_ds.examples.size() - rows.size()) + " rows, evaluating on " +
                  std::to_string(rows.size()) + (fa.resume_from_checkpoint.empty() ? "" : " (resumed)"));
      const FinetuneResult r = finetune(fa, hooks);
      result.global_step += r.global_step;
      if (r.final_eval.probs.size() != rows.size() * static_cast<size_t>(labels.size()))
        throw Error("cross-validation: fold " + std::to_string(k) + "'s evaluation has " +
                    std::to_string(r.final_eval.probs.size()) + " outputs for " +
                    std::to_string(rows.size()) + " rows of " + std::to_string(labels.size()) + " labels");
      if (args.do_predict)
        predict_test(dir, k, test_file);  // before the out-of-fold file: a finished
                                          // fold has both
      if (writer)
        write_prediction_file(oof_file,
                              table_of(train_ds, rows, r.final_eval.probs, labels, problem, threshold));
    }
    // A skipped fold predicts again: the earlier run may have had no --do_predict, or another test file
    // (which may change on resume); inference costs little next to training.
    if (finished && args.do_predict) predict_test(dir, k, test_file);
    dist::world().barrier();  // rank 0 has written the fold's files
    // Read back from the files, so a resumed run computes exactly what an uninterrupted one does.
    const PredictionTable oof = read_prediction_file(oof_file);
    if (oof.rows() != rows.size())
      throw FormatError(oof_file + ": " + std::to_string(oof.rows()) + " rows, fold " + std::to_string(k) +
                        " has " + std::to_string(rows.size()));
    if (oof.problem != problem)
      throw FormatError(oof_file + ": holds " + prediction_kind(oof.problem) + " predictions, this run is " +
                        args.problem_type);
    std::vector<float> out = outputs_in_label_order(oof, labels, oof_file);
    const EvalOutput m = evaluate_outputs(out, rows, truth, labels, problem, threshold);
    nlohmann::ordered_json f;
    f["fold"] = k;
    for (const auto& [name, v] : metric_values(m)) f["eval_" + name] = v;
    f["eval_samples"] = rows.size();
    fold_results.push_back(f);
    log_message("fold " + std::to_string(k) + ": " + describe(m) + " on its " + std::to_string(rows.size()) +
                " rows");
    oof_outputs.push_back(std::move(out));
    if (args.do_predict) test_tables.push_back(read_prediction_file(test_file));
  }

  // The out-of-fold predictions: every row once, in file order.
  const size_t n = train_ds.examples.size(), NL = static_cast<size_t>(labels.size());
  std::vector<float> all(n * NL, 0.0f);
  std::vector<int> seen(n, 0);
  for (int64_t k = 0; k < K; ++k) {
    const std::vector<float>& out = oof_outputs[static_cast<size_t>(k)];
    const std::vector<int64_t>& rows = folds[static_cast<size_t>(k)];
    for (size_t r = 0; r < rows.size(); ++r) {
      const size_t i = static_cast<size_t>(rows[r]);
      ++seen[i];
      std::copy(out.begin() + r * NL, out.begin() + (r + 1) * NL, all.begin() + i * NL);
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (seen[i] != 1)
      throw Error("cross-validation: training row " + std::to_string(i) + " was predicted " +
                  std::to_string(seen[i]) + " times");
  std::vector<int64_t> every(n);
  for (size_t i = 0; i < n; ++i) every[i] = static_cast<int64_t>(i);
  const PredictionTable oof = table_of(train_ds, every, all, labels, problem, threshold);
  const EvalOutput m = evaluate_outputs(all, every, truth, labels, problem, threshold);
  const std::string oof_path = args.output_dir + "/oof_predictions.tsv";
  nlohmann::ordered_json cv;
  cv["k_folds"] = K;
  cv["problem_type"] = args.problem_type;
  for (const auto& [name, v] : metric_values(m)) cv["oof_" + name] = v;
  cv["oof_samples"] = n;
  if (problem == ProblemType::MULTI_LABEL) {
    cv["threshold"] = threshold;
    nlohmann::ordered_json per;
    for (int64_t l = 0; l < labels.size(); ++l)
      per[labels.label(l)] = {{"f1", m.multi_label.f1[static_cast<size_t>(l)]}};
    cv["oof_per_label"] = per;
  }
  // Each metric's mean over the folds and its sample standard deviation: how much the estimate moves with
  // the split.
  std::string headline;  // --metric_for_best_model when the problem type reports it, else its first metric
  std::pair<double, double> headline_spread{0, 0};
  const std::string best = choice_name(args.best_metric(), classification_metric_names());
  for (const auto& [name, unused] : metric_values(m)) {
    double mean = 0, var = 0;
    for (const auto& f : fold_results) mean += f.at("eval_" + name).get<double>() / static_cast<double>(K);
    for (const auto& f : fold_results) var += std::pow(f.at("eval_" + name).get<double>() - mean, 2);
    const double spread = std::sqrt(var / static_cast<double>(K - 1));
    cv["fold_" + name + "_mean"] = mean;
    cv["fold_" + name + "_std"] = spread;
    if (headline.empty() || name == best) {
      headline = name;
      headline_spread = {mean, spread};
    }
  }
  cv["folds"] = fold_results;
  if (writer) {
    write_prediction_file(oof_path, oof);
    write_file_atomic(args.output_dir + "/cv_results.json", cv.dump(2) + "\n");
  }
  log_message("cross-validation: out-of-fold " + describe(m) + " over " + std::to_string(n) +
              " rows (folds: " + headline + " " + fmt("%.4f", headline_spread.first) + " +- " +
              fmt("%.4f", headline_spread.second) + "); " + oof_path);
  result.final_eval = m;

  if (args.do_predict) {  // the folds' mean predictions (bertfit ensemble --method mean)
    std::vector<std::string> names;
    for (int64_t k = 0; k < K; ++k) names.push_back(fold_dir(args, k) + "/test_predictions.tsv");
    PredictionTable mean_test = ensemble_predictions(test_tables, {}, EnsembleMethod::MEAN, names);
    mean_test.threshold = threshold;
    const std::string path = args.output_dir + "/test_predictions.tsv";
    if (writer) write_prediction_file(path, mean_test);
    log_message("wrote the folds' mean test " +
                std::string(problem == ProblemType::REGRESSION ? "values" : "probabilities") + " to " + path);
    write_finetune_predictions(args, test_ds, predicted_labels(mean_test), &result);
  }
  return result;
}

}  // namespace bertfit

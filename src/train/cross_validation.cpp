// Stratified k-fold cross-validation (cross_validation.h).
#include "train/cross_validation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

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
    // --overwrite_output_dir trains every fold again: a previous run's folds (finished ones would be skipped
    // by a later resume, and would then mix with this run's) go first.
    if (!resuming && non_empty)
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_directory() && name.rfind("fold-", 0) == 0 &&
            name.find_first_not_of("0123456789", 5) == std::string::npos)
          fs::remove_all(entry.path(), ec);
      }
    fs::create_directories(dir, ec);
    if (ec) throw FormatError(dir + ": cannot create the output directory: " + ec.message());
    write_file_atomic(saved, args.to_json().dump(2) + "\n");
  }
  return resuming;
}

// Predictions as a prediction file's table: rows `rows` of ds (ids), probabilities [rows, labels].
PredictionTable table_of(const Dataset& ds, const std::vector<int64_t>& rows, const std::vector<float>& probs,
                         const std::vector<std::string>& labels) {
  PredictionTable t;
  t.labels = labels;
  for (int64_t i : rows) t.ids.push_back(ds.examples[static_cast<size_t>(i)].id);
  t.probs.assign(probs.begin(), probs.end());
  return t;
}

// Metrics of a prediction table against the labels of `rows` of the training data.
ClassificationMetrics table_metrics(const PredictionTable& t, const std::vector<int64_t>& label_ids,
                                    const std::vector<int64_t>& rows, const LabelMap& labels) {
  const size_t K = t.labels.size();
  std::vector<int64_t> predicted, truth;
  for (size_t r = 0; r < t.rows(); ++r) {
    const double* p = t.probs.data() + r * K;
    predicted.push_back(labels.id(t.labels[static_cast<size_t>(std::max_element(p, p + K) - p)]));
    truth.push_back(label_ids[static_cast<size_t>(rows[r])]);
  }
  return compute_metrics(predicted, truth, labels.size());
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
  require(parse_problem_type(args.problem_type) == ProblemType::SINGLE_LABEL, "k_folds",
          "is single-label classification's (--problem_type " + args.problem_type + ")");
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
  const auto folds = stratified_folds(labels.encode(*train), labels.size(), args.tricks.k_folds, args.seed);
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

  // The split, as every fold's finetune() computes it again (select_fold: same file, labels, k and seed).
  const Dataset train_ds = read_data_file(args.train_file, finetune_dataset_spec(args));
  const LabelMap labels = LabelMap::from_dataset(train_ds);
  const std::vector<int64_t> label_ids = labels.encode(train_ds);
  const auto folds = stratified_folds(label_ids, labels.size(), K, args.seed);
  {
    std::string sizes;
    for (const auto& f : folds) sizes += (sizes.empty() ? "" : ", ") + std::to_string(f.size());
    log_message("cross-validation: " + std::to_string(K) + " stratified folds of " + args.train_file + " (" +
                std::to_string(train_ds.examples.size()) + " rows, folds of " + sizes + " rows)");
    std::vector<int64_t> counts(static_cast<size_t>(labels.size()), 0);
    for (int64_t l : label_ids) ++counts[static_cast<size_t>(l)];
    for (int64_t c = 0; c < labels.size(); ++c)
      if (counts[static_cast<size_t>(c)] < K)
        log_message("note: class " + labels.label(c) + " has " +
                    std::to_string(counts[static_cast<size_t>(c)]) + " rows, fewer than the " +
                    std::to_string(K) + " folds: some folds do not evaluate it");
  }
  Dataset test_ds;
  if (args.do_predict) test_ds = read_finetune_test_file(args);

  // A fold model's probabilities over the test file, as a prediction file.
  auto predict_test = [&](const std::string& dir, int64_t k, const std::string& path) {
    Classifier c = load_classifier(dir);
    const EvalOutput e = classify(c, encode_for(c, test_ds, num_threads()), args.per_device_eval_batch_size,
                                  "predict fold " + std::to_string(k));
    std::vector<int64_t> all(test_ds.examples.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
    if (writer) write_prediction_file(path, table_of(test_ds, all, e.probs, c.labels.id2label()));
  };

  FinetuneResult result;
  result.output_dir = args.output_dir;
  std::vector<PredictionTable> oof_tables, test_tables;
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
                    std::to_string(r.final_eval.probs.size()) + " probabilities for " +
                    std::to_string(rows.size()) + " rows of " + std::to_string(labels.size()) + " labels");
      if (args.do_predict)
        predict_test(dir, k, test_file);  // before the out-of-fold file: a finished
                                          // fold has both
      if (writer)
        write_prediction_file(oof_file, table_of(train_ds, rows, r.final_eval.probs, labels.id2label()));
    }
    // A skipped fold predicts again: the earlier run may have had no --do_predict, or another test file
    // (which may change on resume); inference costs little next to training.
    if (finished && args.do_predict) predict_test(dir, k, test_file);
    dist::world().barrier();  // rank 0 has written the fold's files
    // Read back from the files, so a resumed run computes exactly what an uninterrupted one does.
    PredictionTable oof = read_prediction_file(oof_file);
    if (oof.rows() != rows.size())
      throw FormatError(oof_file + ": " + std::to_string(oof.rows()) + " rows, fold " + std::to_string(k) +
                        " has " + std::to_string(rows.size()));
    const ClassificationMetrics m = table_metrics(oof, label_ids, rows, labels);
    nlohmann::ordered_json f;
    f["fold"] = k;
    f["eval_accuracy"] = m.accuracy;
    f["eval_macro_f1"] = m.macro.f1;
    f["eval_micro_f1"] = m.micro.f1;
    f["eval_weighted_f1"] = m.weighted.f1;
    f["eval_samples"] = rows.size();
    fold_results.push_back(f);
    log_message("fold " + std::to_string(k) + ": accuracy " + fmt("%.4f", m.accuracy) + ", macro-F1 " +
                fmt("%.4f", m.macro.f1) + " on its " + std::to_string(rows.size()) + " rows");
    oof_tables.push_back(std::move(oof));
    if (args.do_predict) test_tables.push_back(read_prediction_file(test_file));
  }

  // The out-of-fold predictions: every row once, in file order.
  const size_t n = train_ds.examples.size(), NL = static_cast<size_t>(labels.size());
  PredictionTable oof;
  oof.labels = labels.id2label();
  oof.ids.resize(n);
  oof.probs.assign(n * NL, 0.0);
  std::vector<int> seen(n, 0);
  for (int64_t k = 0; k < K; ++k) {
    const PredictionTable& t = oof_tables[static_cast<size_t>(k)];
    const std::vector<int64_t>& rows = folds[static_cast<size_t>(k)];
    for (size_t r = 0; r < rows.size(); ++r) {
      const size_t i = static_cast<size_t>(rows[r]);
      ++seen[i];
      oof.ids[i] = train_ds.examples[i].id;
      for (size_t c = 0; c < NL; ++c) {  // columns by name: the fold file's order is the labels' order
        const size_t col = static_cast<size_t>(std::find(t.labels.begin(), t.labels.end(), oof.labels[c]) -
                                               t.labels.begin());
        if (col == t.labels.size())
          throw FormatError("fold " + std::to_string(k) + "'s out-of-fold predictions lack label " +
                            oof.labels[c]);
        oof.probs[i * NL + c] = t.probs[r * t.labels.size() + col];
      }
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (seen[i] != 1)
      throw Error("cross-validation: training row " + std::to_string(i) + " was predicted " +
                  std::to_string(seen[i]) + " times");
  std::vector<int64_t> every(n);
  for (size_t i = 0; i < n; ++i) every[i] = static_cast<int64_t>(i);
  const ClassificationMetrics m = table_metrics(oof, label_ids, every, labels);
  const std::string oof_path = args.output_dir + "/oof_predictions.tsv";
  double mean = 0, var = 0;
  for (const auto& f : fold_results) mean += f.at("eval_accuracy").get<double>() / static_cast<double>(K);
  for (const auto& f : fold_results) var += std::pow(f.at("eval_accuracy").get<double>() - mean, 2);
  const double spread = std::sqrt(var / static_cast<double>(K - 1));  // sample standard deviation
  nlohmann::ordered_json cv;
  cv["k_folds"] = K;
  cv["oof_accuracy"] = m.accuracy;
  cv["oof_error_rate"] = m.error_rate;
  cv["oof_macro_f1"] = m.macro.f1;
  cv["oof_micro_f1"] = m.micro.f1;
  cv["oof_weighted_f1"] = m.weighted.f1;
  cv["oof_samples"] = n;
  cv["fold_accuracy_mean"] = mean;
  cv["fold_accuracy_std"] = spread;
  cv["folds"] = fold_results;
  if (writer) {
    write_prediction_file(oof_path, oof);
    write_file_atomic(args.output_dir + "/cv_results.json", cv.dump(2) + "\n");
  }
  log_message("cross-validation: out-of-fold accuracy " + fmt("%.4f", m.accuracy) + ", macro-F1 " +
              fmt("%.4f", m.macro.f1) + " over " + std::to_string(n) + " rows (folds: accuracy " +
              fmt("%.4f", mean) + " +- " + fmt("%.4f", spread) + "); " + oof_path);
  result.final_eval.has_labels = true;
  result.final_eval.metrics = m;
  result.final_eval.probs.assign(oof.probs.begin(), oof.probs.end());
  for (const auto& l : predicted_labels(oof)) result.final_eval.predictions.push_back(labels.id(l));

  if (args.do_predict) {  // the folds' mean probabilities (bertfit ensemble --method mean)
    std::vector<std::string> names;
    for (int64_t k = 0; k < K; ++k) names.push_back(fold_dir(args, k) + "/test_predictions.tsv");
    const PredictionTable mean_test = ensemble_predictions(test_tables, {}, EnsembleMethod::MEAN, names);
    const std::string path = args.output_dir + "/test_predictions.tsv";
    if (writer) write_prediction_file(path, mean_test);
    log_message("wrote the folds' mean test probabilities to " + path);
    write_finetune_predictions(args, test_ds, predicted_labels(mean_test), &result);
  }
  return result;
}

}  // namespace bertfit

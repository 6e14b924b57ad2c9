// k-fold cross-validation and pseudo-labels (issue 15, items 5 and 6):
//  - the fold split is stratified, disjoint, covering, balanced and seeded (stratified_folds on its own);
//  - `finetune` with k_folds 2 on a tiny BERT (the synthetic task of tricks_finetune_test.cpp: the label
//    word at a fixed position) writes a model per fold, out-of-fold predictions covering every training row
//    exactly once, cv_results.json agreeing with that file, and the folds' mean test predictions with the
//    submission; a rerun resumes (finished folds skipped, an unfinished one trained again) and refuses other
//    settings;
//  - pseudo-labels add the confident rows of the unlabelled file to the training rows only, with their
//    predicted label, and bad prediction files are errors naming file and line;
//  - multi-label and regression: the folds stratified (every label in every fold by iterative
//    stratification; every quantile bin of the target dealt one row per fold), a 2-fold run of each whose
//    out-of-fold file covers every row once with cv_results.json's metrics recomputed from it, whose test
//    predictions are the mean of the fold models' own predictions computed here, and pseudo-labels chosen
//    from hand-made probabilities (multi-label: confident about every label) and values (regression: all,
//    or the ensemble's std within --pseudo_label_max_std).
#include <gtest/gtest.h>

#include <unistd.h>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "bertfit/error.h"
#include "core/rng.h"
#include "tiny_word_model.h"
#include "train/classifier.h"
#include "train/cross_validation.h"
#include "train/ensemble.h"
#include "train/finetune.h"
#include "train/model_factory.h"
#include "train/problem_metrics.h"
#include "train/pseudo_labels.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

TEST(StratifiedFolds, DisjointCoveringBalancedAndStratified) {
  // Three classes of 10, 7 and 3 rows, interleaved: 20 rows in 3 folds.
  std::vector<int64_t> labels;
  for (int i = 0; i < 20; ++i) labels.push_back(i < 10 ? (i % 2 ? 0 : 1) : (i < 17 ? 0 : 2));
  std::vector<int64_t> per_class(3, 0);
  for (int64_t l : labels) ++per_class[static_cast<size_t>(l)];
  const int64_t k = 3;
  const auto folds = stratified_folds(labels, 3, k, 7);
  ASSERT_EQ(folds.size(), 3u);
  std::vector<int> seen(labels.size(), 0);
  for (const auto& f : folds) {
    EXPECT_TRUE(std::is_sorted(f.begin(), f.end()));
    // Sizes within one of n / k (20 / 3: 6 or 7).
    EXPECT_GE(f.size(), 6u);
    EXPECT_LE(f.size(), 7u);
    std::vector<int64_t> counts(3, 0);
    for (int64_t i : f) {
      ++seen[static_cast<size_t>(i)];
      ++counts[static_cast<size_t>(labels[static_cast<size_t>(i)])];
    }
    // Stratified: each class's count in a fold is floor or ceil of its share.
    for (size_t c = 0; c < 3; ++c) {
      EXPECT_GE(counts[c], per_class[c] / k) << "class " << c;
      EXPECT_LE(counts[c], (per_class[c] + k - 1) / k) << "class " << c;
    }
  }
  for (int s : seen) EXPECT_EQ(s, 1);  // disjoint and covering
  // Seeded: the same seed gives the same folds, another seed other folds.
  EXPECT_EQ(stratified_folds(labels, 3, k, 7), folds);
  EXPECT_NE(stratified_folds(labels, 3, k, 8), folds);
}

TEST(StratifiedFolds, BadSettingsAreErrors) {
  const std::vector<int64_t> labels = {0, 1, 0, 1};
  EXPECT_THROW(stratified_folds(labels, 2, 1, 0), ConfigError);
  EXPECT_THROW(stratified_folds(labels, 2, 5, 0), ConfigError);  // more folds than rows
  EXPECT_THROW(stratified_folds({0, 2}, 2, 2, 0), ConfigError);  // label out of range
  EXPECT_EQ(stratified_folds(labels, 2, 4, 0).size(), 4u);       // one row per fold is fine
}

TEST(StratifiedFolds, MultiLabelEveryLabelInEveryFold) {
  // 60 rows, 3 folds. Label 0 on the 30 odd rows, label 1 on 6 of them (rare), label 2 on 15, label 3 on 3
  // rows (one per fold at most), the other even rows without a label; rows carry up to three labels.
  std::vector<std::vector<int64_t>> sets(60);
  for (int i = 0; i < 60; ++i) {
    if (i % 2) sets[i].push_back(0);
    if (i % 10 == 3) sets[i].push_back(1);
    if (i % 4 == 1) sets[i].push_back(2);
    if (i == 7 || i == 30 || i == 51) sets[i].push_back(3);
  }
  std::vector<int64_t> per_label(4, 0);
  for (const auto& s : sets)
    for (int64_t l : s) ++per_label[static_cast<size_t>(l)];
  ASSERT_EQ(per_label, (std::vector<int64_t>{30, 6, 15, 3}));
  const int64_t k = 3;
  // Over 20 seeds (a split that ignored the labels would leave label 3 out of a fold 7 times in 9).
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto folds = multi_label_stratified_folds(sets, 4, k, seed);
    ASSERT_EQ(folds.size(), 3u);
    std::vector<int> seen(sets.size(), 0);
    for (const auto& f : folds) {
      EXPECT_TRUE(std::is_sorted(f.begin(), f.end()));
      EXPECT_NEAR(static_cast<double>(f.size()), 20.0, 1.0) << "seed " << seed;  // n / k
      std::vector<int64_t> counts(4, 0);
      for (int64_t i : f) {
        ++seen[static_cast<size_t>(i)];
        for (int64_t l : sets[static_cast<size_t>(i)]) ++counts[static_cast<size_t>(l)];
      }
      // Every label in every fold, each near its share count / k (within one row).
      for (size_t l = 0; l < 4; ++l) {
        EXPECT_GE(counts[l], 1) << "label " << l << ", seed " << seed;
        EXPECT_NEAR(static_cast<double>(counts[l]), per_label[l] / 3.0, 1.0)
            << "label " << l << ", seed " << seed;
      }
    }
    for (int s : seen) EXPECT_EQ(s, 1);  // disjoint and covering
  }
  const auto folds = multi_label_stratified_folds(sets, 4, k, 11);
  EXPECT_EQ(multi_label_stratified_folds(sets, 4, k, 11), folds);
  EXPECT_NE(multi_label_stratified_folds(sets, 4, k, 12), folds);
  EXPECT_THROW(multi_label_stratified_folds(sets, 4, 61, 0), ConfigError);
  EXPECT_THROW(multi_label_stratified_folds({{0}, {4}}, 4, 2, 0), ConfigError);  // label out of range
}

TEST(StratifiedFolds, RegressionEveryQuantileBinInEveryFold) {
  // 23 values with ties, 4 folds: bins of 4 consecutive sorted rows (the last of 3).
  Rng rng(3);
  std::vector<double> y;
  for (int i = 0; i < 23; ++i) y.push_back(static_cast<double>(rng.below(9)) * 0.5 - 1);
  const int64_t k = 4;
  const auto folds = regression_stratified_folds(y, k, 7);
  ASSERT_EQ(folds.size(), 4u);
  std::vector<int64_t> fold_of(y.size(), -1);
  for (size_t f = 0; f < folds.size(); ++f) {
    EXPECT_TRUE(std::is_sorted(folds[f].begin(), folds[f].end()));
    EXPECT_GE(folds[f].size(), 5u);  // 23 / 4: sizes 5 or 6
    EXPECT_LE(folds[f].size(), 6u);
    for (int64_t i : folds[f]) {
      EXPECT_EQ(fold_of[static_cast<size_t>(i)], -1) << "row " << i << " in two folds";
      fold_of[static_cast<size_t>(i)] = static_cast<int64_t>(f);
    }
  }
  for (int64_t f : fold_of) EXPECT_GE(f, 0);  // covering
  // The values sorted: every run of 4 (the quantile bins, ties in any order) spans all four folds, so each
  // fold's i-th smallest value lies within the i-th bin's range.
  std::vector<double> sorted = y;
  std::sort(sorted.begin(), sorted.end());
  for (size_t f = 0; f < folds.size(); ++f) {
    std::vector<double> v;
    for (int64_t i : folds[f]) v.push_back(y[static_cast<size_t>(i)]);
    std::sort(v.begin(), v.end());
    for (size_t b = 0; b < 5; ++b) {  // the five full bins
      EXPECT_GE(v[b], sorted[4 * b]) << "fold " << f << " bin " << b;
      EXPECT_LE(v[b], sorted[4 * b + 3]) << "fold " << f << " bin " << b;
    }
  }
  EXPECT_EQ(regression_stratified_folds(y, k, 7), folds);
  EXPECT_NE(regression_stratified_folds(y, k, 8), folds);
  EXPECT_THROW(regression_stratified_folds({1.0, NAN}, 2, 0), ConfigError);
}

using test::word;
constexpr int kWords = 60;

// n rows of 8 random words, the label word (alpha: pos, beta: neg) at position 3; ids start at `first_id`.
void write_data(const fs::path& path, int n, uint64_t seed, int first_id = 0, bool labelled = true) {
  Rng rng(seed);
  std::ofstream f(path);
  f << "id\ttext" << (labelled ? "\tlabel" : "") << "\n";
  for (int i = 0; i < n; ++i) {
    const bool pos = rng.below(2) == 1;
    f << "d" << first_id + i << "\t";
    for (int t = 0; t < 8; ++t)
      f << (t ? " " : "") << (t == 3 ? (pos ? "alpha" : "beta") : word(rng.below(kWords)));
    if (labelled) f << "\t" << (pos ? "pos" : "neg");
    f << "\n";
  }
}

std::string bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

class CrossValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(BERTFIT_BINARY_DIR) / ("test-cv-" + std::to_string(::getpid())) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    test::WordModelShape shape;
    shape.words = kWords;
    shape.max_positions = 16;
    shape.hidden = 32;
    shape.intermediate = 64;
    shape.layers = 1;
    shape.heads = 2;
    test::make_word_model(root_, shape);
  }
  void TearDown() override { fs::remove_all(root_.parent_path()); }
  FinetuneArgs args(const std::string& name) {
    FinetuneArgs a;
    a.model_name_or_path = (root_ / "model").string();
    a.output_dir = (root_ / name).string();
    a.max_seq_length = 16;
    a.learning_rate = 3e-3;  // a tiny model from scratch
    a.per_device_train_batch_size = 8;
    a.num_train_epochs = 4;
    a.logging_steps = 1000;
    a.threads = 2;
    a.id_column = "id";
    a.eval_strategy = IntervalStrategy::NO;  // no checkpoints: the final evaluation is what the folds need
    a.load_best_model_at_end = false;
    return a;
  }
  fs::path root_;
};

TEST_F(CrossValidation, TwoFoldsWriteModelsOutOfFoldAndMeanTestPredictions) {
  write_data(root_ / "train.tsv", 64, 1);
  write_data(root_ / "test.tsv", 10, 2, 1000, false);
  FinetuneArgs a = args("cv");
  a.train_file = (root_ / "train.tsv").string();
  a.test_file = (root_ / "test.tsv").string();
  a.do_train = a.do_predict = true;
  a.tricks.k_folds = 2;
  a.num_train_epochs = 20;  // 80 steps of 8 rows per fold: out-of-fold accuracy 0.98-1.0 over 5 data seeds
  const FinetuneResult r = finetune(a);
  const fs::path out = a.output_dir;
  for (const char* f : {"fold-0", "fold-1"}) {
    for (const char* file : {"model.safetensors", "config.json", "training_args.json", "eval_results.json",
                             "fold.json", "oof_predictions.tsv", "test_predictions.tsv"})
      EXPECT_TRUE(fs::exists(out / f / file)) << f << "/" << file;
  }
  EXPECT_EQ(read_json(out / "fold-1" / "training_args.json").at("fold"), 1);
  EXPECT_EQ(read_json(out / "training_args.json").at("k_folds"), 2);
  EXPECT_EQ(read_json(out / "training_args.json").at("fold"), -1);

  // Every training row exactly once, in file order, each predicted by the fold model that held it out.
  const PredictionTable oof = read_prediction_file((out / "oof_predictions.tsv").string());
  ASSERT_EQ(oof.rows(), 64u);
  for (size_t i = 0; i < oof.rows(); ++i) EXPECT_EQ(oof.ids[i], "d" + std::to_string(i));
  const PredictionTable f0 = read_prediction_file((out / "fold-0" / "oof_predictions.tsv").string()),
                        f1 = read_prediction_file((out / "fold-1" / "oof_predictions.tsv").string());
  EXPECT_EQ(f0.rows() + f1.rows(), 64u);
  std::set<std::string> fold_ids(f0.ids.begin(), f0.ids.end());
  for (const auto& id : f1.ids) EXPECT_TRUE(fold_ids.insert(id).second) << id << " is in both folds";
  EXPECT_EQ(fold_ids.size(), 64u);
  // The fold's validation data is exactly its out-of-fold rows, its training data the other fold's.
  EXPECT_EQ(read_json(out / "fold-0" / "token_lengths.json").at("validation").at("count"), f0.rows());
  EXPECT_EQ(read_json(out / "fold-0" / "token_lengths.json").at("train").at("count"), f1.rows());

  // cv_results.json: the accuracy of the out-of-fold file against the training labels.
  std::map<std::string, std::string> truth;
  {
    std::ifstream in(root_ / "train.tsv");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) truth[line.substr(0, line.find('\t'))] = line.substr(line.rfind('\t') + 1);
  }
  const auto predicted = predicted_labels(oof);
  int right = 0;
  for (size_t i = 0; i < oof.rows(); ++i) right += predicted[i] == truth[oof.ids[i]];
  const auto cv = read_json(out / "cv_results.json");
  EXPECT_DOUBLE_EQ(cv.at("oof_accuracy").get<double>(), right / 64.0);
  EXPECT_EQ(cv.at("oof_samples"), 64);
  EXPECT_EQ(cv.at("folds").size(), 2u);
  EXPECT_DOUBLE_EQ(r.final_eval.metrics.accuracy, right / 64.0);
  // The task is learnable from 32 rows: the fold models are trained models, not the initial one.
  EXPECT_GT(cv.at("oof_accuracy").get<double>(), 0.9);  // the majority class is ~0.5

  // Test predictions: the mean of the folds' probabilities, and the submission of its labels.
  const PredictionTable t0 = read_prediction_file((out / "fold-0" / "test_predictions.tsv").string()),
                        t1 = read_prediction_file((out / "fold-1" / "test_predictions.tsv").string()),
                        mean = read_prediction_file((out / "test_predictions.tsv").string());
  ASSERT_EQ(mean.rows(), 10u);
  for (size_t i = 0; i < mean.probs.size(); ++i)
    EXPECT_NEAR(mean.probs[i], (t0.probs[i] + t1.probs[i]) / 2, 1e-6);  // each file rounds to 6 decimals
  std::ifstream sub(out / "submission.csv");
  std::string line;
  std::getline(sub, line);
  EXPECT_EQ(line, "id,label");
  const auto mean_labels = predicted_labels(mean);
  for (size_t i = 0; i < mean.rows(); ++i) {
    ASSERT_TRUE(std::getline(sub, line));
    EXPECT_EQ(line, mean.ids[i] + "," + mean_labels[i]);
  }

  // A rerun needs --resume_from_checkpoint latest (or --overwrite_output_dir).
  EXPECT_THROW(finetune(a), ConfigError);
  // Resuming with every fold finished trains nothing and writes the same results.
  const std::string fold0_model = bytes(out / "fold-0" / "model.safetensors");
  const std::string cv_before = bytes(out / "cv_results.json");
  FinetuneArgs b = a;
  b.resume_from_checkpoint = "latest";
  EXPECT_EQ(finetune(b).global_step, 0);
  EXPECT_EQ(bytes(out / "cv_results.json"), cv_before);
  // An unfinished fold (no out-of-fold file yet) is trained again, the finished one is kept.
  fs::remove(out / "fold-1" / "oof_predictions.tsv");
  EXPECT_GT(finetune(b).global_step, 0);
  EXPECT_EQ(bytes(out / "fold-0" / "model.safetensors"), fold0_model);
  EXPECT_TRUE(fs::exists(out / "fold-1" / "oof_predictions.tsv"));
  // Another test file on resume: the finished folds predict it.
  write_data(root_ / "test2.tsv", 3, 9, 2000, false);
  FinetuneArgs d = b;
  d.test_file = (root_ / "test2.tsv").string();
  EXPECT_EQ(finetune(d).global_step, 0);
  EXPECT_EQ(read_prediction_file((out / "test_predictions.tsv").string()).ids,
            (std::vector<std::string>{"d2000", "d2001", "d2002"}));
  // Other settings would mix folds: refused, naming the setting.
  FinetuneArgs c = b;
  c.seed = 43;
  try {
    finetune(c);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("seed"), std::string::npos) << e.what();
  }
}

TEST_F(CrossValidation, BadSettingsAreErrorsNamingTheOption) {
  write_data(root_ / "train.tsv", 8, 3);
  auto error_of = [&](const std::function<void(FinetuneArgs&)>& set) -> std::string {
    FinetuneArgs a = args("bad");
    a.train_file = (root_ / "train.tsv").string();
    a.max_steps = 1;
    set(a);
    try {
      finetune(a);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(error_of([](FinetuneArgs& a) { a.tricks.k_folds = 1; }).find("--k_folds"), std::string::npos);
  // Pseudo-labels on the rows the run trains or evaluates on: duplicated rows, or a leak into the evaluation.
  EXPECT_NE(error_of([&](FinetuneArgs& a) {
              a.tricks.pseudo_label_file = a.tricks.pseudo_label_data = a.train_file;
            }).find("is the --train_file"),
            std::string::npos);
  write_data(root_ / "dev.tsv", 4, 3, 100);
  EXPECT_NE(error_of([&](FinetuneArgs& a) {
              a.validation_file = (root_ / "dev.tsv").string();
              a.tricks.pseudo_label_file = a.train_file;
              a.tricks.pseudo_label_data = "./" + fs::relative(a.validation_file).string();
            }).find("is the --validation_file"),
            std::string::npos);
  EXPECT_NE(error_of([&](FinetuneArgs& a) {
              a.tricks.k_folds = 2;
              a.validation_file = a.train_file;
            }).find("--validation_file"),
            std::string::npos);
  EXPECT_NE(error_of([](FinetuneArgs& a) {
              a.tricks.k_folds = 2;
              a.max_eval_samples = 3;
            }).find("--max_eval_samples"),
            std::string::npos);
  EXPECT_NE(error_of([](FinetuneArgs& a) {
              a.tricks.k_folds = 2;
              a.problem_type = "regression";
              a.metric_for_best_model = ClassificationMetric::MSE;
              a.tricks.pseudo_label_max_std = -1;
            }).find("--pseudo_label_max_std"),
            std::string::npos);
  EXPECT_NE(error_of([](FinetuneArgs& a) {
              a.tricks.k_folds = 2;
              a.tricks.fold = 2;
            }).find("--fold"),
            std::string::npos);
  EXPECT_NE(error_of([](FinetuneArgs& a) { a.tricks.k_folds = 9; }).find("--k_folds"), std::string::npos);
  EXPECT_NE(
      error_of([](FinetuneArgs& a) { a.tricks.pseudo_label_file = "p.tsv"; }).find("--pseudo_label_data"),
      std::string::npos);
  EXPECT_NE(error_of([](FinetuneArgs& a) {
              a.tricks.pseudo_label_file = a.tricks.pseudo_label_data = "p.tsv";
              a.tricks.pseudo_label_threshold = 0;
            }).find("--pseudo_label_threshold"),
            std::string::npos);
}

// The prediction file of `bertfit predict`: id, label, probability.
void write_predictions(const fs::path& path, const std::vector<std::array<std::string, 3>>& rows) {
  std::ofstream f(path);
  f << "id\tlabel\tprobability\n";
  for (const auto& r : rows) f << r[0] << "\t" << r[1] << "\t" << r[2] << "\n";
}

TEST_F(CrossValidation, PseudoLabelsJoinTheTrainingRowsOnly) {
  write_data(root_ / "train.tsv", 20, 4);
  write_data(root_ / "dev.tsv", 6, 5, 500);
  write_data(root_ / "test.tsv", 5, 6, 1000, false);
  // Rows d1000..d1004: three pass 0.9 (two neg, one pos; 0.9 itself passes), two do not.
  write_predictions(root_ / "pred.tsv", {{"d1000", "neg", "0.97"},
                                         {"d1001", "pos", "0.5"},
                                         {"d1002", "pos", "0.9"},
                                         {"d1003", "neg", "0.95"},
                                         {"d1004", "neg", "0.899"}});
  FinetuneArgs a = args("pseudo");
  a.train_file = (root_ / "train.tsv").string();
  a.validation_file = (root_ / "dev.tsv").string();
  a.max_steps = 1;
  a.tricks.pseudo_label_file = (root_ / "pred.tsv").string();
  a.tricks.pseudo_label_data = (root_ / "test.tsv").string();
  a.tricks.pseudo_label_threshold = 0.9;

  // The rows added, with their predicted labels, after the training rows.
  const LabelMap labels = LabelMap::from_id2label({"neg", "pos"});
  Dataset train = read_data_file(a.train_file, finetune_dataset_spec(a));
  const PseudoLabelCounts counts = add_pseudo_labels(a, labels, &train);
  EXPECT_EQ(counts.predictions, 5);
  EXPECT_EQ(counts.added, 3);
  EXPECT_EQ(counts.per_class, (std::vector<int64_t>{2, 1}));
  ASSERT_EQ(train.examples.size(), 23u);
  std::ifstream test_in(root_ / "test.tsv");
  std::string header, row0;
  std::getline(test_in, header);
  std::getline(test_in, row0);
  EXPECT_EQ(train.examples[20].id, "d1000");
  EXPECT_EQ(train.examples[20].text, row0.substr(row0.find('\t') + 1));
  EXPECT_EQ(train.examples[20].label, "neg");
  EXPECT_EQ(train.examples[21].id, "d1002");
  EXPECT_EQ(train.examples[21].label, "pos");
  EXPECT_EQ(train.examples[22].id, "d1003");
  // Messages about a joined row name test.tsv and its line there (row d1002: the header, then line 4).
  EXPECT_EQ(data::where(train, train.examples[21]), a.tricks.pseudo_label_data + ":4");
  EXPECT_EQ(data::where(train, train.examples[0]), a.train_file + ":2");
  // ensemble --method rank's files carry a rank score under "score": the threshold applies to it alike.
  {
    std::ifstream in(root_ / "pred.tsv");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("probability"), 11, "score");
    std::ofstream(root_ / "rank.tsv") << text;
    FinetuneArgs r = a;
    r.tricks.pseudo_label_file = (root_ / "rank.tsv").string();
    Dataset ranked = read_data_file(a.train_file, finetune_dataset_spec(a));
    EXPECT_EQ(add_pseudo_labels(r, labels, &ranked).added, 3);
  }

  // Through finetune: 23 training rows, the 6 validation rows unchanged, the settings saved.
  finetune(a);
  const auto lengths = read_json(fs::path(a.output_dir) / "token_lengths.json");
  EXPECT_EQ(lengths.at("train").at("count"), 23);
  EXPECT_EQ(lengths.at("validation").at("count"), 6);
  const auto saved = read_json(fs::path(a.output_dir) / "training_args.json");
  EXPECT_EQ(saved.at("pseudo_label_file"), a.tricks.pseudo_label_file);
  EXPECT_EQ(saved.at("pseudo_label_data"), a.tricks.pseudo_label_data);
  EXPECT_EQ(saved.at("pseudo_label_threshold"), 0.9);

  // With --k_folds, every fold trains on its other rows plus the pseudo-labelled ones; its evaluation rows
  // stay the fold's own (10 of 20).
  FinetuneArgs cv = a;
  cv.output_dir = (root_ / "pseudo-cv").string();
  cv.validation_file.clear();
  cv.tricks.k_folds = 2;
  finetune(cv);
  for (const char* f : {"fold-0", "fold-1"}) {
    const auto l = read_json(fs::path(cv.output_dir) / f / "token_lengths.json");
    EXPECT_EQ(l.at("train").at("count"), 13) << f;
    EXPECT_EQ(l.at("validation").at("count"), 10) << f;
  }
  EXPECT_EQ(read_prediction_file(cv.output_dir + "/oof_predictions.tsv").rows(), 20u);

  // Bad prediction files name the file and line.
  auto format_error = [&](const std::vector<std::array<std::string, 3>>& rows) -> std::string {
    write_predictions(root_ / "bad.tsv", rows);
    FinetuneArgs b = a;
    b.tricks.pseudo_label_file = (root_ / "bad.tsv").string();
    Dataset t;
    try {
      add_pseudo_labels(b, labels, &t);
    } catch (const FormatError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(format_error({{"d1000", "neg", "0.9"}, {"d7", "neg", "0.9"}}).find("bad.tsv:3: id 'd7'"),
            std::string::npos);
  EXPECT_NE(format_error({{"d1000", "maybe", "0.9"}}).find("bad.tsv:2: label 'maybe'"), std::string::npos);
  EXPECT_NE(format_error({{"d1000", "neg", "high"}}).find("bad.tsv:2: probability 'high'"),
            std::string::npos);
}

// ---- Multi-label and regression ----

// n rows of 8 random words. Multi-label: "a" when "alpha" is in the text, "b" when "beta" is (a JSON list, []
// for none); regression: the number of "alpha" words (0-3). Ids start at `first_id`.
void write_problem_data(const fs::path& path, int n, uint64_t seed, ProblemType problem, int first_id = 0,
                        bool labelled = true) {
  Rng rng(seed);
  std::ofstream f(path);
  f << "id\ttext" << (labelled ? "\tlabel" : "") << "\n";
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> words;
    for (int t = 0; t < 8; ++t) words.push_back(word(static_cast<int>(rng.below(kWords))));
    std::string label;
    if (problem == ProblemType::REGRESSION) {
      const int alphas = static_cast<int>(rng.below(4));
      for (int k = 0; k < alphas; ++k) words[static_cast<size_t>(2 * k + 1)] = "alpha";
      label = std::to_string(alphas);
    } else {
      const bool a = rng.below(2) == 1, b = rng.below(2) == 1;
      if (a) words[rng.below(4)] = "alpha";
      if (b) words[4 + rng.below(4)] = "beta";
      label = a && b ? "[\"a\", \"b\"]" : a ? "[\"a\"]" : b ? "[\"b\"]" : "[]";
    }
    f << "d" << first_id + i << "\t";
    for (size_t t = 0; t < words.size(); ++t) f << (t ? " " : "") << words[t];
    if (labelled) f << "\t" << label;
    f << "\n";
  }
}

// The fold models' own predictions of the test file, averaged here (loaded and run as bertfit predict
// does): the oracle of the run's test_predictions.tsv.
std::vector<double> mean_of_fold_models(const fs::path& out, int64_t k_folds, const FinetuneArgs& a) {
  data::DatasetSpec spec = finetune_dataset_spec(a);
  spec.label_column.clear();
  const Dataset ds = read_data_file(a.test_file, spec);
  std::vector<double> mean;
  for (int64_t k = 0; k < k_folds; ++k) {
    Classifier c = load_classifier((out / ("fold-" + std::to_string(k))).string(), true);
    c.settings.multi_label_threshold = a.multi_label_threshold;
    const EvalOutput e = classify(c, encode_for(c, ds, 2), 32, "oracle");
    mean.resize(e.probs.size(), 0.0);
    for (size_t i = 0; i < e.probs.size(); ++i) mean[i] += e.probs[i] / static_cast<double>(k_folds);
  }
  return mean;
}

// The training file's labels as finetune's targets: multi-hot over {a, b}, or the value.
std::map<std::string, std::vector<float>> truth_of(const fs::path& train, ProblemType problem) {
  std::map<std::string, std::vector<float>> truth;
  std::ifstream in(train);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    const std::string id = line.substr(0, line.find('\t')), label = line.substr(line.rfind('\t') + 1);
    if (problem == ProblemType::REGRESSION)
      truth[id] = {std::stof(label)};
    else
      truth[id] = {label.find("\"a\"") != std::string::npos ? 1.0f : 0.0f,
                   label.find("\"b\"") != std::string::npos ? 1.0f : 0.0f};
  }
  return truth;
}

// Two folds of a tiny model: each fold's directory, the out-of-fold file covering every row once (in file
// order) with the problem type's columns, and returns it.
PredictionTable check_folds_and_out_of_fold(const fs::path& out, size_t rows, ProblemType problem,
                                            const char* problem_name) {
  for (const char* f : {"fold-0", "fold-1"}) {
    EXPECT_EQ(read_json(out / f / "config.json").at("problem_type"), problem_name) << f;
    EXPECT_TRUE(fs::exists(out / f / "test_predictions.tsv")) << f;
  }
  const PredictionTable oof = read_prediction_file((out / "oof_predictions.tsv").string());
  EXPECT_EQ(oof.problem, problem);
  EXPECT_EQ(oof.rows(), rows);
  for (size_t i = 0; i < oof.rows(); ++i) EXPECT_EQ(oof.ids[i], "d" + std::to_string(i));
  const PredictionTable f0 = read_prediction_file((out / "fold-0" / "oof_predictions.tsv").string()),
                        f1 = read_prediction_file((out / "fold-1" / "oof_predictions.tsv").string());
  std::set<std::string> ids(f0.ids.begin(), f0.ids.end());
  for (const auto& id : f1.ids) EXPECT_TRUE(ids.insert(id).second) << id << " is in both folds";
  EXPECT_EQ(ids.size(), rows);
  EXPECT_NE(f0.rows(), 0u);
  EXPECT_NE(f1.rows(), 0u);
  return oof;
}

TEST_F(CrossValidation, MultiLabelFoldsAverageEachLabelsProbability) {
  write_problem_data(root_ / "train.tsv", 40, 21, ProblemType::MULTI_LABEL);
  write_problem_data(root_ / "test.tsv", 8, 22, ProblemType::MULTI_LABEL, 1000, false);
  FinetuneArgs a = args("cv");
  a.problem_type = "multi_label_classification";
  a.metric_for_best_model = ClassificationMetric::MICRO_F1;
  a.multi_label_threshold = 0.4;
  a.train_file = (root_ / "train.tsv").string();
  a.test_file = (root_ / "test.tsv").string();
  a.do_train = a.do_predict = true;
  a.tricks.k_folds = 2;
  a.num_train_epochs = 3;
  const FinetuneResult r = finetune(a);
  const fs::path out = a.output_dir;
  const PredictionTable oof =
      check_folds_and_out_of_fold(out, 40, ProblemType::MULTI_LABEL, "multi_label_classification");
  ASSERT_EQ(oof.labels, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(bytes(out / "oof_predictions.tsv").substr(0, 17), "id\tlabel\tp_a\tp_b\n");
  // Stratified: both labels are evaluated in both folds.
  const auto truth = truth_of(root_ / "train.tsv", ProblemType::MULTI_LABEL);
  for (const char* f : {"fold-0", "fold-1"}) {
    float a_rows = 0, b_rows = 0;
    for (const auto& id : read_prediction_file((out / f / "oof_predictions.tsv").string()).ids) {
      a_rows += truth.at(id)[0];
      b_rows += truth.at(id)[1];
    }
    EXPECT_GT(a_rows, 0) << f;
    EXPECT_GT(b_rows, 0) << f;
  }

  // cv_results.json: the multi-label metrics of the out-of-fold file, recomputed here.
  std::vector<float> probs(oof.probs.begin(), oof.probs.end()), targets;
  for (const auto& id : oof.ids) targets.insert(targets.end(), truth.at(id).begin(), truth.at(id).end());
  const MultiLabelMetrics want = multi_label_metrics(probs, targets, 2, 0.4);
  const auto cv = read_json(out / "cv_results.json");
  EXPECT_EQ(cv.at("problem_type"), "multi_label_classification");
  EXPECT_EQ(cv.at("threshold"), 0.4);
  EXPECT_DOUBLE_EQ(cv.at("oof_micro_f1").get<double>(), want.micro_f1);
  EXPECT_DOUBLE_EQ(cv.at("oof_macro_f1").get<double>(), want.macro_f1);
  EXPECT_DOUBLE_EQ(cv.at("oof_exact_match").get<double>(), want.exact_match);
  EXPECT_DOUBLE_EQ(cv.at("oof_per_label").at("b").at("f1").get<double>(), want.f1[1]);
  EXPECT_TRUE(cv.contains("fold_micro_f1_mean") && cv.contains("fold_micro_f1_std"));
  EXPECT_EQ(cv.at("folds").at(1).at("eval_samples").get<size_t>() +
                cv.at("folds").at(0).at("eval_samples").get<size_t>(),
            40u);
  EXPECT_FALSE(cv.contains("oof_weighted_f1"));  // single-label's
  EXPECT_EQ(r.final_eval.problem, ProblemType::MULTI_LABEL);
  EXPECT_DOUBLE_EQ(r.final_eval.multi_label.micro_f1, want.micro_f1);

  // Test predictions: each label's probability averaged over the fold models, then the threshold.
  const std::vector<double> oracle = mean_of_fold_models(out, 2, a);
  const PredictionTable mean = read_prediction_file((out / "test_predictions.tsv").string());
  EXPECT_EQ(mean.problem, ProblemType::MULTI_LABEL);
  ASSERT_EQ(mean.probs.size(), oracle.size());
  ASSERT_EQ(mean.rows(), 8u);
  for (size_t i = 0; i < oracle.size(); ++i) EXPECT_NEAR(mean.probs[i], oracle[i], 2e-6) << i;
  std::ifstream results(out / "predict_results.txt");
  std::string line;
  std::getline(results, line);
  EXPECT_EQ(line, "index\tprediction");
  for (size_t i = 0; i < mean.rows(); ++i) {
    std::string set;
    for (size_t l = 0; l < 2; ++l)
      if (mean.probs[i * 2 + l] > 0.4) set += (set.empty() ? "" : ",") + mean.labels[l];
    ASSERT_TRUE(std::getline(results, line));
    EXPECT_EQ(line, std::to_string(i) + "\t" + set);
  }
  EXPECT_TRUE(fs::exists(out / "submission.csv"));
}

TEST_F(CrossValidation, RegressionFoldsAverageTheValues) {
  write_problem_data(root_ / "train.tsv", 40, 31, ProblemType::REGRESSION);
  write_problem_data(root_ / "test.tsv", 8, 32, ProblemType::REGRESSION, 1000, false);
  FinetuneArgs a = args("cv");
  a.problem_type = "regression";
  a.metric_for_best_model = ClassificationMetric::PEARSON;
  a.train_file = (root_ / "train.tsv").string();
  a.test_file = (root_ / "test.tsv").string();
  a.do_train = a.do_predict = true;
  a.tricks.k_folds = 2;
  a.num_train_epochs = 3;
  const FinetuneResult r = finetune(a);
  const fs::path out = a.output_dir;
  const PredictionTable oof = check_folds_and_out_of_fold(out, 40, ProblemType::REGRESSION, "regression");
  EXPECT_EQ(bytes(out / "oof_predictions.tsv").substr(0, 9), "id\tlabel\n");  // predict's regression layout

  // Stratified by the target: of every two consecutive values (sorted), each fold holds one.
  const auto truth = truth_of(root_ / "train.tsv", ProblemType::REGRESSION);
  std::vector<float> sorted;
  for (const auto& [id, v] : truth) sorted.push_back(v[0]);
  std::sort(sorted.begin(), sorted.end());
  const PredictionTable f0 = read_prediction_file((out / "fold-0" / "oof_predictions.tsv").string());
  ASSERT_EQ(f0.rows(), 20u);
  std::vector<float> v0;
  for (const auto& id : f0.ids) v0.push_back(truth.at(id)[0]);
  std::sort(v0.begin(), v0.end());
  for (size_t b = 0; b < 20; ++b) {  // fold 0's b-th value lies in the b-th bin of two sorted values
    EXPECT_GE(v0[b], sorted[2 * b]) << b;
    EXPECT_LE(v0[b], sorted[2 * b + 1]) << b;
  }

  // cv_results.json: the regression metrics of the out-of-fold values, recomputed here.
  std::vector<float> values(oof.values.begin(), oof.values.end()), targets;
  for (const auto& id : oof.ids) targets.push_back(truth.at(id)[0]);
  const RegressionMetrics want = regression_metrics(values, targets);
  const auto cv = read_json(out / "cv_results.json");
  EXPECT_EQ(cv.at("problem_type"), "regression");
  EXPECT_DOUBLE_EQ(cv.at("oof_mse").get<double>(), want.mse);
  EXPECT_DOUBLE_EQ(cv.at("oof_pearson").get<double>(), want.pearson);
  EXPECT_DOUBLE_EQ(cv.at("oof_spearman").get<double>(), want.spearman);
  EXPECT_TRUE(cv.contains("fold_pearson_mean") && cv.contains("fold_mse_std"));
  EXPECT_FALSE(cv.contains("oof_accuracy"));
  EXPECT_EQ(r.final_eval.problem, ProblemType::REGRESSION);
  EXPECT_DOUBLE_EQ(r.final_eval.regression.pearson, want.pearson);

  // Test predictions: the fold models' mean value (each fold file holds 6 significant digits), with the
  // folds' spread, and the values in predict_results.txt.
  const std::vector<double> oracle = mean_of_fold_models(out, 2, a);
  const PredictionTable mean = read_prediction_file((out / "test_predictions.tsv").string());
  const PredictionTable t0 = read_prediction_file((out / "fold-0" / "test_predictions.tsv").string()),
                        t1 = read_prediction_file((out / "fold-1" / "test_predictions.tsv").string());
  EXPECT_EQ(mean.problem, ProblemType::REGRESSION);
  ASSERT_EQ(mean.rows(), 8u);
  ASSERT_EQ(oracle.size(), 8u);
  ASSERT_EQ(mean.spread.size(), 8u);
  std::ifstream results(out / "predict_results.txt");
  std::string line;
  std::getline(results, line);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_NEAR(mean.values[i], oracle[i], 1e-4) << i;
    EXPECT_NEAR(mean.spread[i], std::abs(t0.values[i] - t1.values[i]) / 2, 1e-5) << i;
    ASSERT_TRUE(std::getline(results, line));
    EXPECT_EQ(line, std::to_string(i) + "\t" + predicted_labels(mean)[i]);
    EXPECT_NEAR(std::stod(predicted_labels(mean)[i]), oracle[i], 1e-4);
  }
}

// A multi-label prediction file (bertfit predict --all_probs of a multi-label model): id, label, p_a, p_b.
void write_multi_predictions(const fs::path& path, const std::vector<std::array<std::string, 3>>& rows) {
  std::ofstream f(path);
  f << "id\tlabel\tp_a\tp_b\n";
  for (const auto& r : rows) f << r[0] << "\t?\t" << r[1] << "\t" << r[2] << "\n";
}

TEST_F(CrossValidation, MultiLabelPseudoLabelsAreConfidentAboutEveryLabel) {
  write_problem_data(root_ / "train.tsv", 20, 41, ProblemType::MULTI_LABEL);
  write_problem_data(root_ / "dev.tsv", 6, 42, ProblemType::MULTI_LABEL, 500);
  write_problem_data(root_ / "test.tsv", 5, 43, ProblemType::MULTI_LABEL, 1000, false);
  // Threshold 0.95: a row passes when each label is >= 0.95 or <= 0.05.
  write_multi_predictions(root_ / "pred.tsv", {{"d1000", "0.97", "0.02"},    // {a}
                                               {"d1001", "0.5", "0.99"},     // unsure about a
                                               {"d1002", "0.05", "0.03"},    // {} (confidently none)
                                               {"d1003", "0.95", "0.951"},   // {a, b}
                                               {"d1004", "0.96", "0.06"}});  // unsure about b
  FinetuneArgs a = args("pseudo");
  a.problem_type = "multi_label_classification";
  a.train_file = (root_ / "train.tsv").string();
  a.validation_file = (root_ / "dev.tsv").string();
  a.max_steps = 1;
  a.tricks.pseudo_label_file = (root_ / "pred.tsv").string();
  a.tricks.pseudo_label_data = (root_ / "test.tsv").string();
  a.tricks.pseudo_label_threshold = 0.95;
  const LabelMap labels = LabelMap::from_id2label({"a", "b"});
  Dataset train = read_data_file(a.train_file, finetune_dataset_spec(a));
  const PseudoLabelCounts counts = add_pseudo_labels(a, labels, &train);
  EXPECT_EQ(counts.predictions, 5);
  EXPECT_EQ(counts.added, 3);
  EXPECT_EQ(counts.per_class, (std::vector<int64_t>{2, 1}));  // rows with a, rows with b
  ASSERT_EQ(train.examples.size(), 23u);
  EXPECT_EQ(train.examples[20].id, "d1000");
  EXPECT_EQ(train.examples[20].label, "[\"a\"]");
  EXPECT_EQ(train.examples[21].id, "d1002");
  EXPECT_EQ(train.examples[21].label, "[]");
  EXPECT_EQ(train.examples[22].id, "d1003");
  EXPECT_EQ(train.examples[22].label, "[\"a\",\"b\"]");
  // Through finetune: the label sets parse as training labels; validation rows unchanged.
  finetune(a);
  const auto lengths = read_json(fs::path(a.output_dir) / "token_lengths.json");
  EXPECT_EQ(lengths.at("train").at("count"), 23);
  EXPECT_EQ(lengths.at("validation").at("count"), 6);

  // A threshold that does not split the probabilities in two sides, and files that lack a label or are
  // single-label, are errors naming the option / file.
  FinetuneArgs low = a;
  low.tricks.pseudo_label_threshold = 0.5;
  EXPECT_THROW(low.validate(), ConfigError);
  auto format_error = [&](const std::string& text) -> std::string {
    std::ofstream(root_ / "bad.tsv") << text;
    FinetuneArgs b = a;
    b.tricks.pseudo_label_file = (root_ / "bad.tsv").string();
    Dataset t;
    try {
      add_pseudo_labels(b, labels, &t);
    } catch (const FormatError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(format_error("id\tlabel\tp_a\nd1000\ta\t0.99\n").find("no column p_b"), std::string::npos);
  EXPECT_NE(format_error("id\tlabel\tp_a\tp_b\tp_c\nd1000\ta\t0.99\t0\t0\n").find("label 'c'"),
            std::string::npos);
  EXPECT_NE(format_error("id\tlabel\tprobability\tp_a\tp_b\nd1000\ta\t0.9\t0.9\t0.1\n").find("single-label"),
            std::string::npos);
  EXPECT_NE(format_error("id\tlabel\tp_a\tp_b\nd1000\ta\t0.99\tx\n").find("bad.tsv:2: p_b 'x'"),
            std::string::npos);
}

TEST_F(CrossValidation, RegressionPseudoLabelsAreTheValuesOrTheAgreedOnes) {
  write_problem_data(root_ / "train.tsv", 20, 51, ProblemType::REGRESSION);
  write_problem_data(root_ / "test.tsv", 4, 52, ProblemType::REGRESSION, 1000, false);
  // An ensemble's regression file: the mean value and the members' spread.
  std::ofstream(root_ / "pred.tsv") << "id\tlabel\tstd\nd1000\t2.5\t0.1\nd1001\t0.25\t0.8\nd1002\t-1\t0.2\n"
                                       "d1003\t3\t0.21\n";
  FinetuneArgs a = args("pseudo");
  a.problem_type = "regression";
  a.metric_for_best_model = ClassificationMetric::MSE;
  a.train_file = (root_ / "train.tsv").string();
  a.max_steps = 1;
  a.tricks.pseudo_label_file = (root_ / "pred.tsv").string();
  a.tricks.pseudo_label_data = (root_ / "test.tsv").string();
  const LabelMap labels = LabelMap::from_id2label({"LABEL_0"});
  // Every row, labelled with its value.
  Dataset all = read_data_file(a.train_file, finetune_dataset_spec(a));
  EXPECT_EQ(add_pseudo_labels(a, labels, &all).added, 4);
  ASSERT_EQ(all.examples.size(), 24u);
  EXPECT_EQ(all.examples[21].id, "d1001");
  EXPECT_EQ(all.examples[21].label, "0.25");
  // --pseudo_label_max_std: the rows whose members agree.
  a.tricks.pseudo_label_max_std = 0.2;
  Dataset agreed = read_data_file(a.train_file, finetune_dataset_spec(a));
  const PseudoLabelCounts counts = add_pseudo_labels(a, labels, &agreed);
  EXPECT_EQ(counts.predictions, 4);
  EXPECT_EQ(counts.added, 2);
  ASSERT_EQ(agreed.examples.size(), 22u);
  EXPECT_EQ(agreed.examples[20].id, "d1000");
  EXPECT_EQ(agreed.examples[21].id, "d1002");
  EXPECT_EQ(agreed.examples[21].label, "-1");
  finetune(a);  // the values parse as regression targets
  EXPECT_EQ(
      read_json(fs::path(a.output_dir) / "token_lengths.json").at("train").at("count").get<int>() +
          read_json(fs::path(a.output_dir) / "token_lengths.json").at("validation").at("count").get<int>(),
      22);
  // Options that do not apply are errors naming them; a file without std cannot filter by it.
  FinetuneArgs b = a;
  b.tricks.pseudo_label_threshold = 0.9;
  EXPECT_THROW(b.validate(), ConfigError);
  b = a;
  b.problem_type = "single_label_classification";
  b.metric_for_best_model = ClassificationMetric::ACCURACY;
  EXPECT_THROW(b.validate(), ConfigError);  // max_std is regression's
  std::ofstream(root_ / "nostd.tsv") << "id\tlabel\nd1000\t2.5\n";
  b = a;
  b.tricks.pseudo_label_file = (root_ / "nostd.tsv").string();
  Dataset t;
  try {
    add_pseudo_labels(b, labels, &t);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("needs the std column"), std::string::npos) << e.what();
  }
  std::ofstream(root_ / "text.tsv") << "id\tlabel\nd1000\tpos\n";
  b.tricks.pseudo_label_file = (root_ / "text.tsv").string();
  b.tricks.pseudo_label_max_std = 0;
  try {
    add_pseudo_labels(b, labels, &t);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("text.tsv:2: label (the value) 'pos' is not a number"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace bertfit

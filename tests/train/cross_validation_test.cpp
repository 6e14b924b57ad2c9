// k-fold cross-validation and pseudo-labels (issue 15, items 5 and 6):
//  - the fold split is stratified, disjoint, covering, balanced and seeded (stratified_folds on its own);
//  - `finetune` with k_folds 2 on a tiny BERT (the synthetic task of tricks_finetune_test.cpp: the label
//    word at a fixed position) writes a model per fold, out-of-fold predictions covering every training row
//    exactly once, cv_results.json agreeing with that file, and the folds' mean test predictions with the
//    submission; a rerun resumes (finished folds skipped, an unfinished one trained again) and refuses other
//    settings;
//  - pseudo-labels add the confident rows of the unlabelled file to the training rows only, with their
//    predicted label, and bad prediction files are errors naming file and line.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "bertfit/error.h"
#include "core/rng.h"
#include "tiny_word_model.h"
#include "train/cross_validation.h"
#include "train/ensemble.h"
#include "train/finetune.h"
#include "train/model_factory.h"
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
            }).find("--k_folds"),
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

}  // namespace
}  // namespace bertfit

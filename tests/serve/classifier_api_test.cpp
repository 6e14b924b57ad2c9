// The C++ API: the same probabilities as `bertfit predict`'s code path (run_evaluation over encode_for),
// top-k, pairs, several threads at once, and the library's exceptions for bad directories.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "bertfit/classifier.h"
#include "serve_test_util.h"
#include "train/classifier.h"
#include "train/finetune.h"

namespace bertfit {
namespace {

const std::vector<std::string> kTexts = {
    "the movie was very good",
    "i hated it !",
    "a film",
    "the plot was not great but the actors were good and i liked it , very very much",
    "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 w22 w23 w24 w25 w26 w27 w28 "
    "w29 w30 w31 w32 w33 w34 w35 w36 w37 w38 w39 w0 the end",  // longer than max_seq_length: head+tail cut
    "awful",
};

// What `bertfit predict` computes for these texts: its encoding and run_evaluation with its batch size.
EvalOutput predict_path(const std::string& dir, const std::vector<std::string>& texts, int batch_size) {
  Classifier c = load_classifier(dir);
  data::Dataset ds;
  ds.path = "texts";
  for (size_t i = 0; i < texts.size(); ++i)
    ds.examples.push_back({std::to_string(i), texts[i], "", "", 0, ""});
  const auto ex = encode_for(c, ds, 1);
  return classify(c, ex, batch_size, "predict");
}

TEST(ClassifierApi, ProbabilitiesAreBitwisePredicts) {
  const std::string dir = test::make_classifier_dir(test::unique_dir("api-bitwise"));
  for (int batch_size : {1, 4, 32}) {
    const EvalOutput ref = predict_path(dir, kTexts, batch_size);
    TextClassifier clf(dir, {0, batch_size});
    const auto got = clf.classify(kTexts, 3);
    ASSERT_EQ(got.size(), kTexts.size());
    for (size_t i = 0; i < kTexts.size(); ++i) {
      ASSERT_EQ(got[i].probabilities.size(), 3u);
      // Same encoding, same batches, same kernels: the same floats, not merely close ones.
      for (size_t k = 0; k < 3; ++k)
        EXPECT_EQ(got[i].probabilities[k], ref.probs[i * 3 + k]) << i << " " << k;
      EXPECT_EQ(got[i].label_id, ref.predictions[i]);
      EXPECT_EQ(got[i].label, clf.labels()[static_cast<size_t>(ref.predictions[i])]);
      EXPECT_EQ(got[i].probability, got[i].probabilities[static_cast<size_t>(got[i].label_id)]);
      ASSERT_EQ(got[i].top.size(), 3u);
      EXPECT_EQ(got[i].top[0].id, got[i].label_id);
      EXPECT_GE(got[i].top[0].probability, got[i].top[1].probability);
      EXPECT_GE(got[i].top[1].probability, got[i].top[2].probability);
      EXPECT_EQ(got[i].logits.size(), 3u);
    }
  }
}

TEST(ClassifierApi, TopKIsClampedAndLabelsAreTheConfigs) {
  const std::string dir = test::make_classifier_dir(test::unique_dir("api-topk"));
  TextClassifier clf(dir);
  EXPECT_EQ(clf.labels(), (std::vector<std::string>{"negative", "neutral", "positive"}));
  EXPECT_EQ(clf.max_seq_length(), 32);
  EXPECT_TRUE(clf.classify({"good"}, 0)[0].top.empty());
  EXPECT_EQ(clf.classify({"good"}, 10)[0].top.size(), 3u);
  EXPECT_TRUE(clf.classify({}, 1).empty());
}

TEST(ClassifierApi, PairsMatchPredictOnAPairFile) {
  const std::string dir = test::make_classifier_dir(test::unique_dir("api-pairs"));
  Classifier c = load_classifier(dir);
  data::Dataset ds;
  ds.path = "pairs";
  ds.has_pairs = true;
  ds.examples.push_back({"0", "the movie", "was good", "", 0, ""});
  ds.examples.push_back({"1", "i hated it", "the plot is awful", "", 0, ""});
  const EvalOutput ref = classify(c, encode_for(c, ds, 1), 32, "predict");
  TextClassifier clf(dir);
  const auto got = clf.classify_pairs({{"the movie", "was good"}, {"i hated it", "the plot is awful"}});
  for (size_t i = 0; i < 2; ++i)
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(got[i].probabilities[k], ref.probs[i * 3 + k]);
  // A pair is not the concatenated text: the [SEP] and the type ids differ.
  EXPECT_NE(clf.classify({"the movie was good"})[0].logits, got[0].logits);
}

TEST(ClassifierApi, ChunkedModelsClassifyAsPredict) {
  const std::string dir = test::make_classifier_dir(test::unique_dir("api-chunks"), 16, 3);
  const EvalOutput ref = predict_path(dir, kTexts, 32);
  TextClassifier clf(dir);
  const auto got = clf.classify(kTexts);
  for (size_t i = 0; i < kTexts.size(); ++i)
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(got[i].probabilities[k], ref.probs[i * 3 + k]);
}

TEST(ClassifierApi, ThreadsShareOneClassifier) {
  const std::string dir = test::make_classifier_dir(test::unique_dir("api-threads"));
  const TextClassifier clf(dir, {0, 4});
  const auto expected = clf.classify(kTexts);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(6, 0);
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        // Each thread a different subset, so the shared arena is resized under contention.
        std::vector<std::string> mine(kTexts.begin() + (t + rep) % 3, kTexts.end());
        const auto got = clf.classify(mine);
        for (size_t i = 0; i < mine.size(); ++i) {
          const auto& want = expected[i + static_cast<size_t>((t + rep) % 3)];
          if (got[i].label != want.label) ++mismatches[static_cast<size_t>(t)];
          for (size_t k = 0; k < 3; ++k)
            // Batches differ from the reference run's (other texts, other padding): a float may round
            // differently in a reduction over the padded length; 1e-6 is ~10 ulps of a probability near 1/3.
            if (std::abs(got[i].probabilities[k] - want.probabilities[k]) > 1e-6f)
              ++mismatches[static_cast<size_t>(t)];
        }
      }
    });
  for (auto& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(ClassifierApi, BadDirectoriesAreLibraryErrors) {
  EXPECT_THROW(TextClassifier("/nonexistent/bertfit-model"), Error);
  const std::string root = test::unique_dir("api-bad");
  std::ofstream(root + "/config.json") << "{not json";
  try {
    TextClassifier clf(root);
    FAIL() << "loaded a broken directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bertfit

// Label maps (sorted, numeric order for integer labels, unknown labels named with their row) and the
// stratified, seeded splits and few-shot subsets.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "bertfit/error.h"
#include "data/labels.h"
#include "data/split.h"

namespace bertfit::data {
namespace {

Dataset labelled(const std::vector<std::string>& labels) {
  Dataset ds;
  ds.path = "train.tsv";
  ds.has_labels = true;
  for (size_t i = 0; i < labels.size(); ++i)
    ds.examples.push_back({std::to_string(i), "t", "", labels[i], static_cast<int64_t>(i) + 2, ""});
  return ds;
}

TEST(DataLabelMap, SortedIndependentOfRowOrder) {
  const LabelMap a = LabelMap::from_dataset(labelled({"cs.LG", "astro-ph", "cs.AI", "cs.LG"}));
  const LabelMap b = LabelMap::from_dataset(labelled({"cs.AI", "cs.LG", "astro-ph"}));
  EXPECT_EQ(a.id2label(), (std::vector<std::string>{"astro-ph", "cs.AI", "cs.LG"}));
  EXPECT_EQ(a.id2label(), b.id2label());
  EXPECT_EQ(a.id("cs.LG"), 2);
  EXPECT_EQ(a.id("math"), -1);
}

TEST(DataLabelMap, IntegerLabelsSortNumerically) {
  EXPECT_EQ(LabelMap::from_labels({"10", "2", "0", "1", "-3"}).id2label(),
            (std::vector<std::string>{"-3", "0", "1", "2", "10"}));
  // "01" is not a canonical integer, so the whole set sorts as text.
  EXPECT_EQ(LabelMap::from_labels({"10", "2", "01"}).id2label(), (std::vector<std::string>{"01", "10", "2"}));
}

TEST(DataLabelMap, UnknownDevLabelNamesFileAndLine) {
  const LabelMap m = LabelMap::from_labels({"a", "b"});
  Dataset dev = labelled({"a", "b", "c"});
  dev.path = "dev.tsv";
  try {
    m.encode(dev);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("dev.tsv:4: unknown label 'c'"), std::string::npos) << e.what();
  }
  dev.examples.pop_back();
  EXPECT_EQ(m.encode(dev), (std::vector<int64_t>{0, 1}));
}

// A row joined from another file (pseudo-labelled test rows) is named by its own file, not the data set's.
TEST(DataLabelMap, JoinedRowNamesItsOwnFile) {
  const LabelMap m = LabelMap::from_labels({"a", "b"});
  Dataset train = labelled({"a", "b"});  // train.tsv
  Example joined = train.examples.back();
  joined.label = "c";
  joined.line = 7;
  joined.source = "test.tsv";
  train.examples.push_back(joined);
  EXPECT_EQ(where(train, train.examples[0]), "train.tsv:" + std::to_string(train.examples[0].line));
  EXPECT_EQ(where(train, train.examples[2]), "test.tsv:7");
  try {
    m.encode(train);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("test.tsv:7: unknown label 'c'"), std::string::npos) << e.what();
  }
}

TEST(DataLabelMap, FromId2LabelKeepsOrderAndRejectsDuplicates) {
  EXPECT_EQ(LabelMap::from_id2label({"z", "a"}).id("z"), 0);
  EXPECT_THROW(LabelMap::from_id2label({"z", "z"}), ConfigError);
}

// 87 labels in 3 classes: 7 of class 2 (multiples of 3 below 21), the rest alternating 0 / 1 (40 / 40).
std::vector<int64_t> toy_labels() {
  std::vector<int64_t> y;
  for (int i = 0; i < 87; ++i) y.push_back(i % 3 == 0 && i < 21 ? 2 : (i % 2));
  return y;
}

std::vector<int64_t> counts(const std::vector<int64_t>& y, const std::vector<int64_t>& idx, int C) {
  std::vector<int64_t> c(C, 0);
  for (const int64_t i : idx) ++c[y[i]];
  return c;
}

TEST(DataSplit, StratifiedProportionsAndDisjointCover) {
  const auto y = toy_labels();
  const auto all = counts(
      y,
      [&] {
        std::vector<int64_t> v(y.size());
        for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i);
        return v;
      }(),
      3);
  const auto parts = stratified_partition(y, 3, {0.1, 0.2}, 42);
  ASSERT_EQ(parts.size(), 3u);
  std::set<int64_t> seen;
  for (const auto& p : parts) {
    EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
    for (const int64_t i : p) EXPECT_TRUE(seen.insert(i).second) << "index " << i << " in two parts";
  }
  EXPECT_EQ(seen.size(), y.size());
  // Totals: round(0.1 * 87) = 9 and round(0.2 * 87) = 17; per class within one of f * n_c.
  EXPECT_EQ(parts[1].size(), 9u);
  EXPECT_EQ(parts[2].size(), 17u);
  for (int k = 1; k <= 2; ++k) {
    const double f = k == 1 ? 0.1 : 0.2;
    const auto c = counts(y, parts[k], 3);
    for (int cls = 0; cls < 3; ++cls) {
      EXPECT_GE(c[cls], static_cast<int64_t>(f * all[cls])) << "part " << k << " class " << cls;
      EXPECT_LE(c[cls], static_cast<int64_t>(f * all[cls]) + 1) << "part " << k << " class " << cls;
    }
  }
}

TEST(DataSplit, DeterministicForASeedAndDifferentForAnother) {
  const auto y = toy_labels();
  const auto a = stratified_split(y, 3, 0.2, 7), b = stratified_split(y, 3, 0.2, 7);
  const auto c = stratified_split(y, 3, 0.2, 8);
  EXPECT_EQ(a.dev, b.dev);
  EXPECT_EQ(a.train, b.train);
  EXPECT_NE(a.dev, c.dev);
  EXPECT_EQ(a.dev.size(), c.dev.size());
}

TEST(DataSplit, TinyClassesKeepATrainingExample) {
  // Class 1 has one example, class 2 has two: neither may lose its last training example.
  const std::vector<int64_t> y = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 2};
  const auto parts = stratified_partition(y, 3, {0.4, 0.4}, 1);
  const auto train = counts(y, parts[0], 3);
  EXPECT_GE(train[1], 1);
  EXPECT_GE(train[2], 1);
}

TEST(DataSplit, RejectsBadFractionsAndLabels) {
  EXPECT_THROW(stratified_partition({0, 1}, 2, {0.5, 0.5}, 1), ConfigError);
  EXPECT_THROW(stratified_partition({0, 1}, 2, {0.0}, 1), ConfigError);
  EXPECT_THROW(stratified_partition({0, 5}, 2, {0.1}, 1), ConfigError);
}

TEST(DataFewShot, CountAndFractionPerClass) {
  const auto y = toy_labels();
  std::vector<int64_t> n(3, 0);
  for (const int64_t v : y) ++n[v];
  const auto k8 = few_shot_subset(y, 3, 8, 0, 3);
  const auto c8 = counts(y, k8, 3);
  for (int cls = 0; cls < 3; ++cls) EXPECT_EQ(c8[cls], std::min<int64_t>(8, n[cls]));
  const auto f = few_shot_subset(y, 3, 0, 0.1, 3);
  const auto cf = counts(y, f, 3);
  for (int cls = 0; cls < 3; ++cls)
    EXPECT_EQ(cf[cls], std::max<int64_t>(1, static_cast<int64_t>(0.1 * n[cls] + 0.5)));
  EXPECT_EQ(few_shot_subset(y, 3, 8, 0, 3), k8);
  EXPECT_NE(few_shot_subset(y, 3, 8, 0, 4), k8);
  EXPECT_THROW(few_shot_subset(y, 3, 0, 0, 3), ConfigError);
}

}  // namespace
}  // namespace bertfit::data

// Summaries (length statistics, class counts) and the atomically written submission CSV and TSV files,
// read back with our own reader to prove they round-trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "bertfit/error.h"
#include "data/dataset.h"
#include "data/file_io.h"
#include "data/submission.h"
#include "data/summary.h"

namespace bertfit::data {
namespace {

std::string temp_dir() {
  const auto dir =
      std::filesystem::path(BERTFIT_BINARY_DIR) / "test-tmp" / ("output_test." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(DataSummary, LengthStatsNearestRank) {
  const LengthStats s = length_stats({5, 1, 3, 2, 4, 10, 6, 7, 8, 9}, 8);
  EXPECT_EQ(s.count, 10);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
  EXPECT_EQ(s.p50, 5);  // ceil(0.5 * 10) = 5th smallest
  EXPECT_EQ(s.p90, 9);
  EXPECT_EQ(s.p95, 10);
  EXPECT_DOUBLE_EQ(s.share_over_limit, 0.2);  // 9 and 10 exceed 8
  EXPECT_EQ(length_stats({}).count, 0);
}

TEST(DataSummary, CountsClassesAndCodePoints) {
  Dataset ds;
  ds.path = "x.tsv";
  ds.has_labels = true;
  ds.examples = {
      {"0", "caf\xc3\xa9", "", "b", 2, ""}, {"1", "ab", "", "a", 3, ""}, {"2", "abc", "", "b", 4, ""}};
  const LabelMap m = LabelMap::from_dataset(ds);
  const DataSummary s = summarize(ds, &m);
  EXPECT_EQ(s.rows, 3);
  EXPECT_EQ(s.class_counts, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(s.text_chars.max, 4);  // "café" is 4 characters, 5 bytes
  const std::string text = format_summary(s);
  EXPECT_NE(text.find("x.tsv: 3 rows, 2 classes"), std::string::npos) << text;
  EXPECT_NE(text.find("b 2 (66.7%)"), std::string::npos) << text;
}

TEST(DataSubmission, CsvRoundTripsThroughTheReaderAndQuotesWhenNeeded) {
  const std::string path = temp_dir() + "/submission.csv";
  write_submission_csv(path, {"p1", "p,2", "p3"}, {"cs.AI", "a \"b\"", "x"});
  EXPECT_EQ(read_file(path), "paperid,categories\np1,cs.AI\n\"p,2\",\"a \"\"b\"\"\"\np3,x\n");
  DatasetSpec spec;
  spec.text_columns = {"paperid"};
  spec.label_column = "categories";
  const Dataset back = read_dataset(path, spec);
  ASSERT_EQ(back.examples.size(), 3u);
  EXPECT_EQ(back.examples[1].text, "p,2");
  EXPECT_EQ(back.examples[1].label, "a \"b\"");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(getpid())));
  EXPECT_THROW(write_submission_csv(path, {"a"}, {}), ConfigError);
}

TEST(DataSubmission, TsvRejectsTabsAndWritesPlainRows) {
  const std::string path = temp_dir() + "/t.tsv";
  write_tsv(path, {"a", "b"}, {{"1", "x \"y\""}});
  EXPECT_EQ(read_file(path), "a\tb\n1\tx \"y\"\n");
  EXPECT_THROW(write_tsv(path, {"a", "b"}, {{"1", "x\ty"}}), ConfigError);
  EXPECT_THROW(write_file_atomic("/nonexistent-dir/x", "y"), FormatError);
}

}  // namespace
}  // namespace bertfit::data

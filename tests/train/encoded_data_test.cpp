// Encoding classification data (issue 11's defects): a label the training labels lack is an error naming the
// file, line and label (it scored as all-zero metrics); a --head_length that leaves no room for the tail is
// an error naming the option (it silently turned head+tail into head-only); token statistics use the data
// layer's nearest-rank percentiles (finetune and dataset printed different medians).
#include "train/encoded_data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "bertfit/error.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

class Encoding : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(BERTFIT_BINARY_DIR) / "encoded_data_test" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream v(dir_ / "vocab.txt");
    v << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nd\n";
    v.close();
    tok_ = std::make_unique<Tokenizer>(Tokenizer::from_directory(dir_.string()));
  }
  Dataset read(const std::string& name, const std::string& text) {
    data::DatasetSpec spec;
    return data::read_dataset_text(name, text, spec);
  }
  fs::path dir_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Encoding, LabelOutsideTheTrainingLabelsNamesFileLineAndLabel) {
  const LabelMap labels = LabelMap::from_labels({"neg", "pos"});
  const Dataset dev = read("dev.tsv", "text\tlabel\na b\tpos\nc d\tneutral\n");
  try {
    encode_examples(*tok_, dev, &labels, EncodeOptions{}, 1);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("dev.tsv:3: unknown label 'neutral' (not among the training labels: neg, pos)"),
              std::string::npos)
        << m;
  }
  // Known labels get their ids.
  const Dataset ok = read("ok.tsv", "text\tlabel\na b\tpos\nc d\tneg\n");
  const auto ex = encode_examples(*tok_, ok, &labels, EncodeOptions{}, 1);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].label, 1);
  EXPECT_EQ(ex[1].label, 0);
}

// Each text is tokenized once and its tokens then cut (encode_examples): the full length, head+tail, chunks
// and a pair's longest_first are checked here against ids worked out by hand from the vocabulary above
// (a=5, b=6, c=7, d=8, [CLS]=2, [SEP]=3).
TEST_F(Encoding, FullLengthAndCutSequencesComeFromOneTokenization) {
  const Dataset ds = read("t.tsv", "text\tlabel\nd a b c d a b c d\tx\n");
  EncodeOptions o;
  o.max_seq_length = 6;  // 4 text tokens
  o.truncation = Truncation::HEAD_TAIL;
  o.head_length = 1;
  auto ex = encode_examples(*tok_, ds, nullptr, o, 1);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].tokens, 9);  // the untruncated length
  ASSERT_EQ(ex[0].seqs.size(), 1u);
  EXPECT_EQ(ex[0].seqs[0].ids, (std::vector<int32_t>{2, 8, 6, 7, 8, 3}));  // d + the last three
  o.max_chunks = 2;  // chunks of 4 text tokens, at most two
  ex = encode_examples(*tok_, ds, nullptr, o, 1);
  EXPECT_EQ(ex[0].tokens, 9);
  ASSERT_EQ(ex[0].seqs.size(), 2u);
  EXPECT_EQ(ex[0].seqs[0].ids, (std::vector<int32_t>{2, 8, 5, 6, 7, 3}));
  EXPECT_EQ(ex[0].seqs[1].ids, (std::vector<int32_t>{2, 8, 5, 6, 7, 3}));
  // A pair: longest_first cuts the longer (5 tokens) to leave 7 - 3 specials = 4 in all; types 0 then 1.
  data::DatasetSpec spec;
  spec.text_pair_column = "pair";
  const Dataset pairs = data::read_dataset_text("p.tsv", "text\tpair\tlabel\na b\tc d c d c\tx\n", spec);
  ASSERT_TRUE(pairs.has_pairs);
  EncodeOptions po;
  po.max_seq_length = 7;
  ex = encode_examples(*tok_, pairs, nullptr, po, 1);
  EXPECT_EQ(ex[0].tokens, 7);
  EXPECT_EQ(ex[0].seqs[0].ids, (std::vector<int32_t>{2, 5, 6, 3, 7, 8, 3}));
  EXPECT_EQ(ex[0].seqs[0].types, (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1}));
}

TEST_F(Encoding, HeadLengthWithoutRoomForTheTailIsAnError) {
  EncodeOptions o;
  o.max_seq_length = 16;  // 14 text tokens next to [CLS] and [SEP]
  o.truncation = Truncation::HEAD_TAIL;
  o.head_length = 13;
  EXPECT_NO_THROW(check_encode_options(*tok_, o));
  for (const int head : {14, 15, 128}) {
    o.head_length = head;
    try {
      check_encode_options(*tok_, o);
      FAIL() << "no error for head_length " << head;
    } catch (const ConfigError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("--head_length " + std::to_string(head) + " leaves no room for the tail"),
                std::string::npos)
          << m;
      EXPECT_NE(m.find("--max_seq_length 16 holds 14 text tokens"), std::string::npos) << m;
    }
  }
  // Other truncations and chunking do not use head_length.
  o.truncation = Truncation::HEAD;
  EXPECT_NO_THROW(check_encode_options(*tok_, o));
  o.truncation = Truncation::HEAD_TAIL;
  o.max_chunks = 4;
  EXPECT_NO_THROW(check_encode_options(*tok_, o));
}

TEST_F(Encoding, TokenStatisticsUseTheDataLayersPercentiles) {
  // Token counts 1, 2, 3, 4: the nearest-rank median is 2 (the old rule, v[n/2], said 3).
  const Dataset ds = read("s.tsv", "text\tlabel\na\tx\na b\tx\na b c\tx\na b c d\tx\n");
  const auto ex = encode_examples(*tok_, ds, nullptr, EncodeOptions{}, 1);
  const LengthStats s = length_stats(ex, 3);
  const data::LengthStats d = data::length_stats({1, 2, 3, 4}, 3);
  EXPECT_EQ(s.p50, 2);
  EXPECT_EQ(s.p50, d.p50);
  EXPECT_EQ(s.p90, d.p90);
  EXPECT_EQ(s.p95, d.p95);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 4);
  EXPECT_DOUBLE_EQ(s.share_over_limit, 0.25);  // one of four above 3 (exact in binary)
  EXPECT_EQ(format_length_stats(s, 3),
            "tokens per text: mean 2.5, median 2, p90 4, p95 4, min 1, max 4; 25.0% over 3");
}

}  // namespace
}  // namespace bertfit

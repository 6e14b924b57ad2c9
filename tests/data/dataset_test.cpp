// Reading examples by column name from TSV / CSV / JSONL (files and in-memory text), text joining and
// cleaning, and every kind of bad row reported with file and line (or skipped and counted when allowed).
#include "data/dataset.h"

#include <gtest/gtest.h>

#include "bertfit/error.h"

namespace bertfit::data {
namespace {

const std::string kFixtures = BERTFIT_FIXTURES "/data/";

DatasetSpec competition_spec() {
  DatasetSpec s;
  s.table.quoting = Quoting::NONE;
  s.text_columns = {"title", "abstract"};
  s.text_separator = ".";
  s.label_column = "categories";
  s.id_column = "paperid";
  return s;
}

std::string error_of(const std::string& text, const DatasetSpec& spec) {
  try {
    read_dataset_text("mem.tsv", text, spec);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DataDataset, CompetitionTsvWithBareQuotesInNoQuotingMode) {
  const Dataset ds = read_dataset(kFixtures + "competition_bare_quotes.tsv", competition_spec());
  ASSERT_EQ(ds.examples.size(), 3u);
  EXPECT_EQ(ds.examples[0].id, "p1");
  EXPECT_EQ(ds.examples[0].text,
            "\"Deep\" nets.We study \"deep\" models.");  // the seed: title + '.' + abstract
  EXPECT_EQ(ds.examples[0].label, "cs.LG");
  EXPECT_EQ(ds.examples[1].text,
            "Quantum.Entangled states\xe2\x80\x94"
            "a review.");
  EXPECT_EQ(ds.examples[2].line, 4);
  EXPECT_TRUE(ds.skipped.empty());
}

TEST(DataDataset, CompetitionTsvInRfcModeFailsWithLine) {
  DatasetSpec spec = competition_spec();
  spec.table.quoting = Quoting::RFC4180;
  try {
    read_dataset(kFixtures + "competition_bare_quotes.tsv", spec);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("competition_bare_quotes.tsv:2:"), std::string::npos) << e.what();
  }
}

TEST(DataDataset, QuotedCsvWithCrlfAndEmbeddedNewlines) {
  DatasetSpec spec;
  spec.text_columns = {"sentence"};
  spec.id_column = "id";
  const Dataset ds = read_dataset(kFixtures + "quoted.csv", spec);
  ASSERT_EQ(ds.examples.size(), 3u);
  EXPECT_EQ(ds.examples[0].text, "A, quoted multi-line text");  // CRLF inside the field became one space
  EXPECT_EQ(ds.examples[1].text, "He said \"no\"");
  EXPECT_EQ(ds.examples[1].line, 4);  // row 1 spans physical lines 2-3
  EXPECT_EQ(ds.examples[2].label, "pos");
}

TEST(DataDataset, JsonLinesWithNumericLabelsAndEscapes) {
  DatasetSpec spec;
  spec.id_column = "id";
  const Dataset ds = read_dataset(kFixtures + "labels.jsonl", spec);
  ASSERT_EQ(ds.examples.size(), 3u);
  EXPECT_EQ(ds.examples[0].label, "1");
  EXPECT_EQ(ds.examples[1].text, "second line");
  EXPECT_EQ(ds.examples[1].line, 3);  // line 2 is blank
  EXPECT_EQ(ds.examples[2].text, "caf\xc3\xa9");
  EXPECT_EQ(ds.examples[2].line, 4);
}

TEST(DataDataset, NewlineModes) {
  EXPECT_EQ(clean_text_value("a\nb\r\nc\td\re", NewlineMode::SPACE), "a b c d e");
  EXPECT_EQ(clean_text_value("a\nb\r\nc\td", NewlineMode::REMOVE), "abcd");  // the seed's replace('\n', '')
}

TEST(DataDataset, PairsAndDefaultIds) {
  DatasetSpec spec;
  spec.text_columns = {"a"};
  spec.text_pair_column = "b";
  const Dataset ds = read_dataset_text("m.tsv", "a\tb\tlabel\nx\ty\t1\nz\tw\t0\n", spec);
  ASSERT_EQ(ds.examples.size(), 2u);
  EXPECT_TRUE(ds.has_pairs);
  EXPECT_EQ(ds.examples[1].text_pair, "w");
  EXPECT_EQ(ds.examples[0].id, "0");
  EXPECT_EQ(ds.examples[1].id, "1");
}

TEST(DataDataset, UnlabelledFile) {
  DatasetSpec spec = competition_spec();
  spec.label_column.clear();
  const Dataset ds = read_dataset_text("test.tsv", "paperid\ttitle\tabstract\nq\tT\tA\n", spec);
  ASSERT_EQ(ds.examples.size(), 1u);
  EXPECT_FALSE(ds.has_labels);
  EXPECT_EQ(ds.examples[0].text, "T.A");
}

TEST(DataDataset, MissingColumnNamesTheColumnAndTheHeader) {
  const std::string msg = error_of("paperid\ttitle\tcategories\n1\tt\tc\n", competition_spec());
  EXPECT_NE(msg.find("mem.tsv:1:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'abstract'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'paperid', 'title', 'categories'"), std::string::npos) << msg;
}

TEST(DataDataset, EveryKindOfBadRowNamesItsLine) {
  const std::string header = "paperid\ttitle\tabstract\tcategories\n";
  DatasetSpec spec = competition_spec();
  EXPECT_NE(error_of(header + "1\tt\ta\tc\n2\tt\ta\n", spec).find("mem.tsv:3: expected 4 fields"),
            std::string::npos);
  EXPECT_NE(error_of(header + "1\t\t \tc\n", spec).find("mem.tsv:2: empty text"), std::string::npos);
  EXPECT_NE(error_of(header + "1\tt\ta\t\n", spec).find("mem.tsv:2: empty label"), std::string::npos);
  EXPECT_NE(error_of(header + "\tt\ta\tc\n", spec).find("mem.tsv:2: empty id"), std::string::npos);
  EXPECT_NE(
      error_of(header + "1\tt\t\xff\xfe\tc\n", spec).find("mem.tsv:2: column 'abstract' is not valid UTF-8"),
      std::string::npos);
  // An empty abstract alone is fine: the title is text.
  EXPECT_EQ(error_of(header + "1\tt\t\tc\n", spec), "(no error)");
}

TEST(DataDataset, JsonLinesBadRows) {
  DatasetSpec spec;
  spec.table.format = FileFormat::JSONL;
  auto err = [&](const std::string& text) { return error_of(text, spec); };
  EXPECT_NE(err("{\"text\":\"a\",\"label\":1}\n{\"text\":\"b\",\n").find("mem.tsv:2: invalid JSON"),
            std::string::npos);
  EXPECT_NE(err("{\"text\":\"a\"}\n").find("mem.tsv:1: no key 'label'"), std::string::npos);
  EXPECT_NE(err("[1,2]\n").find("mem.tsv:1: expected a JSON object"), std::string::npos);
  EXPECT_NE(err("{\"text\":[\"a\"],\"label\":1}\n").find("key 'text' is array"), std::string::npos);
  EXPECT_NE(err("{\"text\":null,\"label\":1}\n").find("key 'text' is null"), std::string::npos);
  EXPECT_NE(err("\n{\"text\":\"\xc3\x28\",\"label\":1}\n").find("mem.tsv:2: line is not valid UTF-8"),
            std::string::npos);
  // A number beyond double range is nlohmann's out_of_range, not a parse error (found by fuzz_table).
  EXPECT_NE(err("{\"text\":\"a\",\"label\":2e9999}\n").find("mem.tsv:1: invalid JSON"), std::string::npos);
}

TEST(DataDataset, SkipModeCountsAndReportsEveryBadRow) {
  DatasetSpec spec = competition_spec();
  spec.skip_bad_rows = true;
  const Dataset ds = read_dataset_text(
      "mem.tsv", "paperid\ttitle\tabstract\tcategories\n1\tt\ta\tc\n2\tt\n3\t\t\tc\n4\tu\tb\td\n", spec);
  ASSERT_EQ(ds.examples.size(), 2u);
  EXPECT_EQ(ds.examples[1].id, "4");
  ASSERT_EQ(ds.skipped.size(), 2u);
  EXPECT_NE(ds.skipped[0].find("mem.tsv:3:"), std::string::npos);
  EXPECT_NE(ds.skipped[1].find("mem.tsv:4:"), std::string::npos);
}

TEST(DataDataset, FormatFromExtension) {
  EXPECT_EQ(resolve_format("a/b.TSV", FileFormat::AUTO), FileFormat::TSV);
  EXPECT_EQ(resolve_format("b.csv", FileFormat::AUTO), FileFormat::CSV);
  EXPECT_EQ(resolve_format("b.jsonl", FileFormat::AUTO), FileFormat::JSONL);
  EXPECT_EQ(resolve_format("b.weird", FileFormat::CSV), FileFormat::CSV);
  EXPECT_THROW(resolve_format("b.weird", FileFormat::AUTO), ConfigError);
  EXPECT_THROW(read_dataset(kFixtures + "does-not-exist.tsv", DatasetSpec{}), FormatError);
}

TEST(DataDataset, ReportsProgressInBytesForTsvAndJsonLines) {
  // Issue 17 item 5: reading a large file reports how far it has come (the CLI shows it with rate and ETA).
  // About 3 MiB of rows: calls after each MiB, increasing, and a last call at the whole size.
  const std::string row = "t\t" + std::string(1000, 'a') + "\tx\n";
  std::string tsv = "text\tmore\tlabel\n";
  std::string jsonl;
  for (int i = 0; i < 3000; ++i) {
    tsv += row;
    jsonl += "{\"text\": \"" + std::string(1000, 'a') + "\", \"label\": \"x\"}\n";
  }
  for (const auto& [name, text] : {std::pair{"mem.tsv", tsv}, std::pair{"mem.jsonl", jsonl}}) {
    SCOPED_TRACE(name);
    DatasetSpec spec;
    if (std::string(name) == "mem.jsonl") spec.table.format = FileFormat::JSONL;
    std::vector<std::pair<int64_t, int64_t>> calls;
    spec.on_progress = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
    const Dataset ds = read_dataset_text(name, text, spec);
    EXPECT_EQ(ds.examples.size(), 3000u);
    const auto size = static_cast<int64_t>(text.size());
    ASSERT_EQ(calls.size(), static_cast<size_t>(size >> 20) + 1) << "one call per MiB, and the end";
    for (size_t k = 0; k < calls.size(); ++k) {
      EXPECT_EQ(calls[k].second, size);
      if (k + 1 < calls.size()) {
        EXPECT_GE(calls[k].first, static_cast<int64_t>(k + 1) << 20);
        EXPECT_LT(calls[k].first, calls[k + 1].first);
      }
    }
    EXPECT_EQ(calls.back().first, size);
  }
}

}  // namespace
}  // namespace bertfit::data

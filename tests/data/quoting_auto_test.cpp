// Issue 11's data defects: the default quoting ("auto") reads both the competition's TSVs with bare quotes
// and quoted CSV; quoting errors name the line where the quote opened and the option that reads bare quotes;
// a file with a header and no rows is an error naming the file.
#include <gtest/gtest.h>

#include <string>

#include "bertfit/error.h"
#include "data/dataset.h"

namespace bertfit::data {
namespace {

const std::string kFixtures = BERTFIT_FIXTURES "/data/";

template <typename F>
std::string format_error_of(F&& f) {
  try {
    f();
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no error)";
}

DatasetSpec competition_spec(Quoting q) {
  DatasetSpec s;
  s.table.quoting = q;
  s.text_columns = {"title", "abstract"};
  s.label_column = "categories";
  s.id_column = "paperid";
  return s;
}

TEST(QuotingAuto, IsTheDefaultAndParses) {
  EXPECT_EQ(TableOptions().quoting, Quoting::AUTO);
  EXPECT_EQ(parse_quoting("auto"), Quoting::AUTO);
  EXPECT_EQ(parse_quoting("AUTO"), Quoting::AUTO);
  try {
    parse_quoting("maybe");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--quoting 'maybe' (expected auto, rfc4180 or none)"),
              std::string::npos)
        << e.what();
  }
}

TEST(QuotingAuto, ReadsTheCompetitionTsvWithBareQuotesAsNone) {
  const Dataset a = read_dataset(kFixtures + "competition_bare_quotes.tsv", competition_spec(Quoting::AUTO));
  const Dataset n = read_dataset(kFixtures + "competition_bare_quotes.tsv", competition_spec(Quoting::NONE));
  ASSERT_EQ(a.examples.size(), 3u);
  for (size_t i = 0; i < a.examples.size(); ++i) {
    EXPECT_EQ(a.examples[i].text, n.examples[i].text);
    EXPECT_EQ(a.examples[i].line, n.examples[i].line);
  }
  EXPECT_EQ(a.examples[0].text, "\"Deep\" nets.We study \"deep\" models.");
}

TEST(QuotingAuto, ReadsQuotedCsvAsRfc4180) {
  DatasetSpec spec;
  spec.text_columns = {"sentence"};
  const Dataset ds = read_dataset(kFixtures + "quoted.csv", spec);
  ASSERT_EQ(ds.examples.size(), 3u);
  EXPECT_EQ(ds.examples[0].text, "A, quoted multi-line text");
  EXPECT_EQ(ds.examples[1].text, "He said \"no\"");
}

TEST(QuotingAuto, ReadsADebianStyleTsvWhoseDescriptionStartsWithAQuote) {
  // The demo's data (bertfit dataset debian) is unquoted TSV; a description may open with a quote that
  // closes mid-field, which RFC 4180 rejects.
  const std::string text =
      "paperid\ttitle\tabstract\tcategories\n"
      "a\t\"Hello\" world tool\tPrints \"hello\".\tutils\n"
      "b\tplain\ttext\tnet\n";
  const Dataset ds = read_dataset_text("debian.tsv", text, competition_spec(Quoting::AUTO));
  ASSERT_EQ(ds.examples.size(), 2u);
  EXPECT_EQ(ds.examples[0].text, "\"Hello\" world tool.Prints \"hello\".");
  // The same file with --quoting rfc4180 fails, naming the option that reads it.
  const std::string e =
      format_error_of([&] { read_dataset_text("debian.tsv", text, competition_spec(Quoting::RFC4180)); });
  EXPECT_NE(e.find("debian.tsv:2: field 2: unexpected character after a closing quote"), std::string::npos)
      << e;
  EXPECT_NE(e.find("--quoting none"), std::string::npos) << e;
}

TEST(QuotingAuto, PicksTheModeWithFewerMalformedRecords) {
  // A bare opening quote on line 2 that a bare quote on line 4 "closes" mid-field: RFC 4180 reads lines 2-4
  // as one malformed record; without quoting every record is right.
  const std::string text = "t\tlabel\n\"open\tx\nmid\ty\nclose\" more\tz\n";
  DatasetSpec spec;
  spec.text_columns = {"t"};
  std::string why;
  EXPECT_EQ(resolve_quoting(text, "f.tsv", '\t', &why), Quoting::NONE);
  EXPECT_NE(why.find("first at line 2"), std::string::npos) << why;
  EXPECT_EQ(read_dataset_text("f.tsv", text, spec).examples.size(), 3u);
  // No quote at all: RFC 4180 (the same reading), without a scan.
  EXPECT_EQ(resolve_quoting("a\tb\n1\t2\n", "g.tsv", '\t', nullptr), Quoting::RFC4180);
}

TEST(QuotingErrors, RunOnFieldIsReportedWhereTheQuoteOpened) {
  // The quote opens on line 2; the field runs on to the quote on line 4, after which text follows.
  const std::string text = "t\tlabel\n\"open\tx\nmid\ty\nclose\" more\tz\n";
  DatasetSpec spec;
  spec.text_columns = {"t"};
  spec.table.quoting = Quoting::RFC4180;
  const std::string e = format_error_of([&] { read_dataset_text("r.tsv", text, spec); });
  EXPECT_NE(e.find("r.tsv:2: field 1: unexpected character after a closing quote"), std::string::npos) << e;
  EXPECT_NE(e.find("opens the field on line 2 is closed on line 4"), std::string::npos) << e;
  EXPECT_NE(e.find("--quoting none"), std::string::npos) << e;
}

TEST(QuotingErrors, UnterminatedQuoteNamesItsLineAndTheOption) {
  const std::string text = "t\tlabel\nok\tx\n\"never closed\ty\nmore\tz\n";
  DatasetSpec spec;
  spec.text_columns = {"t"};
  spec.table.quoting = Quoting::RFC4180;
  const std::string e = format_error_of([&] { read_dataset_text("u.tsv", text, spec); });
  EXPECT_NE(e.find("u.tsv:3: field 1: quoted field is never closed"), std::string::npos) << e;
  EXPECT_NE(e.find("--quoting none"), std::string::npos) << e;
}

TEST(QuotingErrors, AutoChoiceIsNamedInFieldCountErrors) {
  // Bare quotes make auto read without quoting; a row with a missing field then names that choice.
  const std::string text = "t\tlabel\n\"Deep\" nets\tx\nno label here\n";
  DatasetSpec spec;
  spec.text_columns = {"t"};
  const std::string e = format_error_of([&] { read_dataset_text("c.tsv", text, spec); });
  EXPECT_NE(e.find("c.tsv:3: expected 2 fields (as the header), got 1"), std::string::npos) << e;
  EXPECT_NE(e.find("--quoting auto read c.tsv without quoting"), std::string::npos) << e;
  EXPECT_NE(e.find("--quoting rfc4180"), std::string::npos) << e;
}

TEST(EmptyData, HeaderWithoutRowsIsAnErrorNamingTheFile) {
  DatasetSpec spec;
  const std::string e = format_error_of([&] { read_dataset_text("dev.tsv", "text\tlabel\n", spec); });
  EXPECT_NE(e.find("dev.tsv: no data rows (the file has a header and nothing else)"), std::string::npos) << e;
  // Blank lines are not rows either.
  EXPECT_NE(format_error_of([&] {
              read_dataset_text("dev.tsv", "text\tlabel\n\n\r\n", spec);
            }).find("dev.tsv: no data rows"),
            std::string::npos);
  DatasetSpec js;
  js.table.format = FileFormat::JSONL;
  EXPECT_NE(format_error_of([&] { read_dataset_text("e.jsonl", "\n", js); }).find("e.jsonl: no data rows"),
            std::string::npos);
}

TEST(EmptyData, EveryRowSkippedIsAnErrorWithTheFirstReason) {
  DatasetSpec spec;
  spec.skip_bad_rows = true;
  const std::string e = format_error_of([&] { read_dataset_text("s.tsv", "text\tlabel\n \tpos\n", spec); });
  EXPECT_NE(e.find("s.tsv: no usable rows: all 1 rows are bad (the first: s.tsv:2: empty text"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace bertfit::data

// TSV / CSV record splitting: RFC 4180 quoting, "" escapes, embedded line breaks, CRLF, blank lines, BOM,
// the no-quoting mode, and the errors (with physical line numbers) for malformed records.
#include "data/delimited.h"

#include <gtest/gtest.h>

#include "bertfit/error.h"

namespace bertfit::data {
namespace {

using Rows = std::vector<std::vector<std::string>>;

Rows parse_all(const std::string& text, char delim, Quoting q, std::vector<int64_t>* lines = nullptr) {
  DelimitedParser p(text, "t.csv", delim, q);
  Rows rows;
  std::vector<std::string> f;
  for (;;) {
    const auto st = p.next(f);
    if (st == DelimitedParser::Status::END) break;
    EXPECT_EQ(st, DelimitedParser::Status::OK) << p.error();
    rows.push_back(f);
    if (lines) lines->push_back(p.line());
  }
  return rows;
}

TEST(DataDelimited, PlainTsvWithCrlfAndMissingFinalNewline) {
  std::vector<int64_t> lines;
  const Rows rows = parse_all("a\tb\r\n1\t2\r\n\t\n3\t4", '\t', Quoting::RFC4180, &lines);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"", ""}));  // a line with one tab is two empty fields
  EXPECT_EQ(rows[3], (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST(DataDelimited, QuotedFieldsEscapesAndEmbeddedNewlines) {
  const std::string text =
      "id,text\n"
      "1,\"hello, world\"\n"
      "2,\"she said \"\"hi\"\"\"\n"
      "3,\"two\nlines\r\nand crlf\"\n"
      "4,\"\"\n"
      "5,plain \"inner\" quotes\n";
  std::vector<int64_t> lines;
  const Rows rows = parse_all(text, ',', Quoting::RFC4180, &lines);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[1][1], "hello, world");
  EXPECT_EQ(rows[2][1], "she said \"hi\"");
  EXPECT_EQ(rows[3][1], "two\nlines\r\nand crlf");  // line breaks inside quotes are data, kept verbatim
  EXPECT_EQ(rows[4][1], "");
  EXPECT_EQ(rows[5][1], "plain \"inner\" quotes");  // a quote inside an unquoted field is data
  // Physical lines: row 3 starts on line 4 and spans lines 4-6, so row 4 starts on line 7.
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 3, 4, 7, 8}));
}

TEST(DataDelimited, BlankLinesAndBomAreSkippedButCounted) {
  std::vector<int64_t> lines;
  const Rows rows = parse_all("\xEF\xBB\xBFh1\th2\n\n\r\nx\ty\n\n", '\t', Quoting::RFC4180, &lines);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0], "h1");  // BOM removed
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 4}));
}

TEST(DataDelimited, NoQuotingModeKeepsBareQuotes) {
  // A competition TSV: the abstract starts with a quote that is never closed on purpose.
  const std::string text = "id\ttitle\n1\t\"Deep\" learning\n2\t\"unbalanced\n3\tx\"y\n";
  const Rows rows = parse_all(text, '\t', Quoting::NONE);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1][1], "\"Deep\" learning");
  EXPECT_EQ(rows[2][1], "\"unbalanced");
  EXPECT_EQ(rows[3][1], "x\"y");
  // The same text in RFC 4180 mode is malformed: row 1 has text after a closing quote.
  DelimitedParser p(text, "t.tsv", '\t', Quoting::RFC4180);
  std::vector<std::string> f;
  ASSERT_EQ(p.next(f), DelimitedParser::Status::OK);
  ASSERT_EQ(p.next(f), DelimitedParser::Status::BAD_RECORD);
  EXPECT_NE(p.error().find("t.tsv:2:"), std::string::npos) << p.error();
  EXPECT_NE(p.error().find("--quoting none"), std::string::npos) << p.error();
}

TEST(DataDelimited, BadRecordIsSkippedAndParsingContinues) {
  DelimitedParser p("a,b\n\"x\"y,1\nc,d\n", "f.csv", ',', Quoting::RFC4180);
  std::vector<std::string> f;
  ASSERT_EQ(p.next(f), DelimitedParser::Status::OK);
  ASSERT_EQ(p.next(f), DelimitedParser::Status::BAD_RECORD);
  EXPECT_NE(p.error().find("f.csv:2:"), std::string::npos) << p.error();
  ASSERT_EQ(p.next(f), DelimitedParser::Status::OK);
  EXPECT_EQ(f, (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(p.line(), 3);
  EXPECT_EQ(p.next(f), DelimitedParser::Status::END);
}

TEST(DataDelimited, UnterminatedQuoteThrowsNamingTheLineItOpens) {
  DelimitedParser p("a,b\n1,2\n3,\"never\nclosed\n", "g.csv", ',', Quoting::RFC4180);
  std::vector<std::string> f;
  ASSERT_EQ(p.next(f), DelimitedParser::Status::OK);
  ASSERT_EQ(p.next(f), DelimitedParser::Status::OK);
  try {
    p.next(f);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("g.csv:3:"), std::string::npos) << e.what();
  }
}

TEST(DataDelimited, QuotedFieldAtEndOfInputAndEmptyInput) {
  Rows rows = parse_all("a,\"b\"", ',', Quoting::RFC4180);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(parse_all("", ',', Quoting::RFC4180).empty());
  EXPECT_TRUE(parse_all("\n\n", ',', Quoting::NONE).empty());
}

TEST(DataDelimited, RejectsQuoteAsDelimiter) {
  EXPECT_THROW(DelimitedParser("x", "s", '"', Quoting::RFC4180), ConfigError);
}

}  // namespace
}  // namespace bertfit::data

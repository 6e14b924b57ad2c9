// Malformed input never crashes the readers: thousands of random texts over the characters that matter
// (quotes, delimiters, CR/LF, JSON punctuation, invalid UTF-8 bytes) through every format and quoting mode.
// Each must end in rows or a bertfit::Error, never another exception, and (in the sanitizer build) never a
// memory error. The fuzz target the integrator may add (fuzz/fuzz_table.cpp) does the same, longer.
#include <gtest/gtest.h>

#include "bertfit/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/debian.h"

namespace bertfit::data {
namespace {

std::string random_text(Rng& rng, size_t max_len) {
  static const char kAlphabet[] = "\"\t,\n\r{}[]:ab \\\xff\xc3\xa9";
  const size_t len = rng.below(max_len);
  std::string s;
  for (size_t i = 0; i < len; ++i) s.push_back(kAlphabet[rng.below(sizeof kAlphabet - 1)]);
  return s;
}

TEST(DataRobustness, RandomInputEndsInRowsOrAnError) {
  Rng rng(2024);
  int64_t rows = 0, errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text = random_text(rng, 120);
    DatasetSpec spec;
    spec.text_columns = {"a"};
    spec.label_column = iter % 2 ? "b" : "";
    spec.skip_bad_rows = iter % 3 == 0;
    const int mode = iter % 4;
    spec.table.format = mode == 3 ? FileFormat::JSONL : mode == 2 ? FileFormat::CSV : FileFormat::TSV;
    spec.table.quoting = mode == 1 ? Quoting::NONE : Quoting::RFC4180;
    if (mode != 3) text = (mode == 2 ? "a,b\n" : "a\tb\n") + text;  // a valid header, random rows
    try {
      rows += static_cast<int64_t>(read_dataset_text("r", text, spec).examples.size());
    } catch (const Error&) {
      ++errors;
    }
    try {
      parse_deb822(text, "r", [](const Stanza& s) { (void)split_description(stanza_field(s, "a")); });
    } catch (const Error&) {
      ++errors;
    }
  }
  // Both outcomes must occur, or the generator is not reaching the interesting cases.
  EXPECT_GT(rows, 0);
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace bertfit::data

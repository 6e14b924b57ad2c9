// A classification data set read from a file: one Example per row, with the text built from named columns.
//
// Text: the values of `text_columns` joined by `text_separator` (the seed: title + "." + abstract). In each
// value, CR, LF and TAB become a space (newline_mode SPACE, the default: "line one\nline two" stays two
// words) or are deleted (REMOVE: exactly the seed's `x.replace('\n', '')`). Values are not otherwise
// changed. An optional second text (`text_pair_column`) makes sentence pairs.
//
// Bad rows, each reported as "<file>:<line>: <what>": a row the table reader rejects (wrong number of
// fields, invalid UTF-8, bad JSON, missing key), an empty text (every text column empty or blank; one empty
// column among several is allowed, like a paper without an abstract), an empty pair text, an empty label.
// By default the first bad row throws FormatError. With `skip_bad_rows`, bad rows are left out, counted,
// and their messages kept in Dataset::skipped so the caller can report them: nothing is dropped silently.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/table.h"

namespace bertfit::data {

enum class NewlineMode { SPACE, REMOVE };

struct DatasetSpec {
  TableOptions table;
  std::vector<std::string> text_columns{"text"};
  std::string text_separator = ".";    // the seed's title + '.' + abstract
  std::string text_pair_column;        // empty: single sentences
  std::string label_column = "label";  // empty: unlabelled (prediction input)
  std::string id_column;               // empty: ids are the 0-based row numbers
  NewlineMode newline_mode = NewlineMode::SPACE;
  bool skip_bad_rows = false;
  // Called as reading goes (bytes done, bytes in the file): after each MiB of input and once at the end. The
  // data layer shows nothing itself; train/progress.h's file_read_progress turns this into a display.
  std::function<void(int64_t done, int64_t total)> on_progress;
};

struct Example {
  std::string id;
  std::string text;
  std::string text_pair;  // empty unless the spec has a pair column
  std::string label;      // empty when the spec has no label column
  int64_t line = 0;       // physical line (1-based) where the row starts
  // The file the row was read from when it is not its Dataset's own (rows joined from another file, e.g.
  // pseudo-labelled test rows); empty: Dataset::path. Messages name the row through where() below.
  std::string source;
};

struct Dataset {
  std::string path;
  std::vector<Example> examples;
  std::vector<std::string> skipped;  // one message per skipped bad row (only with skip_bad_rows)
  bool has_labels = false;
  bool has_pairs = false;
};

// "file:line" of a row, for messages: its own source file when it has one, else the data set's path.
std::string where(const Dataset& ds, const Example& ex);

// Throws FormatError (first bad row, a missing column, or no rows at all: a header alone, or every row bad
// and skipped) or ConfigError (an empty text column list).
Dataset read_dataset(const std::string& path, const DatasetSpec& spec);
// The same over text in memory; `source` names it in messages.
Dataset read_dataset_text(const std::string& source, const std::string& text, const DatasetSpec& spec);

// The cleaning step on one value (CR/LF/TAB to a space or removed, per the mode).
std::string clean_text_value(const std::string& value, NewlineMode mode);

}  // namespace bertfit::data

// Rows of named columns from a data file: TSV / CSV with a header line, or JSON Lines (one object per line).
// The caller names the columns it wants once; each row then yields their values in that order.
//
// Errors: a wanted column missing from the header is a FormatError at open (it would fail every row). Row
// problems (wrong number of fields, invalid UTF-8, bad JSON, a missing or non-text key in a JSON object)
// come back as Status::BAD_ROW with a message "<file>:<line>: <what>", and reading can continue; the caller
// decides whether that is fatal. Line numbers are physical lines (1-based; the header is line 1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/delimited.h"
#include "data/file_io.h"

namespace bertfit::data {

enum class FileFormat { AUTO, TSV, CSV, JSONL };

struct TableOptions {
  FileFormat format =
      FileFormat::AUTO;             // AUTO: from the extension (.tsv/.txt TSV, .csv CSV, .jsonl/.json JSONL)
  Quoting quoting = Quoting::AUTO;  // TSV/CSV only; AUTO: see resolve_quoting
  char delimiter = 0;               // 0: '\t' for TSV, ',' for CSV
};

// "tsv" | "csv" | "jsonl" | "auto" (case-insensitive); throws ConfigError otherwise.
FileFormat parse_file_format(const std::string& name);
// "auto" | "rfc4180" (alias "csv", "quoted") | "none"; throws ConfigError otherwise.
Quoting parse_quoting(const std::string& name);

// What AUTO reads a delimited text with: both modes are tried over the whole text (two passes of the
// splitter, only when the text holds a '"' at all) and the one with fewer malformed records wins, a record
// being malformed when it breaks the quoting rules or has another number of fields than the first record
// (the header); a tie goes to RFC4180. So a proper CSV with quoted commas and line breaks reads quoted, and a
// TSV whose titles start with bare quotes (the competition's `"Deep" nets`, the Debian demo's descriptions)
// reads unquoted, without an option. What it cannot see: a bare quote whose run-on field happens to end at a
// field boundary with the right number of fields reads quoted, as pandas would read it. `why`, when given, is
// set to a sentence saying what was chosen and why, for error messages.
Quoting resolve_quoting(std::string_view text, const std::string& source, char delimiter, std::string* why);
// The format AUTO resolves to for this path; throws ConfigError for an unknown extension.
FileFormat resolve_format(const std::string& path, FileFormat format);

class TableReader {
 public:
  // Opens `path` (memory-mapped) and resolves `columns` against the header. Throws FormatError naming the
  // file, line 1 and the missing column (with the columns that exist) for TSV/CSV.
  TableReader(const std::string& path, const TableOptions& options, std::vector<std::string> columns);
  // The same over text held in memory (tests, fuzzing); `source` names it in messages.
  static std::unique_ptr<TableReader> from_text(std::string source, std::string text,
                                                const TableOptions& options,
                                                std::vector<std::string> columns);

  enum class Status { OK, BAD_ROW, END };
  // values[i] = the value of columns[i] in the next row.
  Status next(std::vector<std::string>& values);

  int64_t line() const { return line_; }  // line where the last row started
  const std::string& error() const { return error_; }
  const std::string& source() const { return source_; }
  FileFormat format() const { return format_; }
  Quoting quoting() const { return quoting_; }  // the mode used (AUTO resolved); TSV/CSV only
  const std::vector<std::string>& header() const { return header_; }  // empty for JSONL
  // How far reading has come, in bytes of the input (for progress displays).
  int64_t bytes_read() const;
  int64_t bytes_total() const { return static_cast<int64_t>(text_.size()); }

 private:
  TableReader(std::string source, std::string owned_text, const TableOptions& options,
              std::vector<std::string> columns);
  void init(const TableOptions& options);
  Status next_delimited(std::vector<std::string>& values);
  Status next_jsonl(std::vector<std::string>& values);
  Status bad(const std::string& what);

  std::unique_ptr<MappedFile> file_;
  std::string owned_text_;
  std::string_view text_;
  std::string source_;
  FileFormat format_ = FileFormat::TSV;
  Quoting quoting_ = Quoting::RFC4180;
  std::string quoting_note_;  // AUTO's choice, appended to field-count errors
  std::vector<std::string> columns_;
  std::vector<std::string> header_;
  std::vector<size_t> column_index_;  // TSV/CSV: header position of each wanted column
  std::unique_ptr<DelimitedParser> parser_;
  std::vector<std::string> fields_;
  size_t pos_ = 0;  // JSONL: offset of the next line
  int64_t next_line_ = 1;
  int64_t line_ = 0;
  std::string error_;
};

}  // namespace bertfit::data

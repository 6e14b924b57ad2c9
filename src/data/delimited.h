// Splitting TSV / CSV text into records of fields, one record at a time over a buffer (a memory-mapped file),
// so memory stays at one record however large the file is.
//
// Two quoting modes (and AUTO, which TableReader resolves to one of them per file; see table.h):
//  * RFC4180: a field that *starts* with '"' is quoted: it ends at the next '"' not doubled, "" inside it is
//    one '"', and it may contain delimiters, CR and LF. After the closing quote only the delimiter or the end
//    of the line may follow. A '"' inside an unquoted field is kept as is (as Python's csv and pandas do).
//  * NONE: no quoting at all; every '"' is data and a record is exactly one physical line (competition TSVs
//    whose abstracts contain bare quotes, e.g. `"Deep" learning`, which RFC 4180 would misread).
// Lines end with LF or CRLF (the CR is dropped). Blank lines are skipped (as pandas does). A UTF-8 byte order
// mark at the start is skipped. Line numbers are physical lines, 1-based, so a user finds the row in an
// editor.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bertfit::data {

enum class Quoting { RFC4180, NONE, AUTO };

class DelimitedParser {
 public:
  // `source` names the input in messages (usually the file path); `data` must outlive the parser. `quoting`
  // is RFC4180 or NONE (AUTO is a ConfigError here: TableReader resolves it).
  DelimitedParser(std::string_view data, std::string source, char delimiter, Quoting quoting);

  enum class Status { OK, BAD_RECORD, END };
  // Reads the next non-blank record into `fields` (their storage is reused between calls).
  // BAD_RECORD: the record is malformed (a character after a closing quote); error() says where and why
  // and the parser has skipped to the end of that physical line, so reading can go on.
  // Throws FormatError for an unterminated quoted field: everything after its quote would be one field, so
  // nothing after it can be trusted. Quoting messages name the record's first line and the line where the
  // quote opened, and the option that reads bare quotes (--quoting none).
  Status next(std::vector<std::string>& fields);

  int64_t line() const { return record_line_; }  // physical line where the last record started
  const std::string& error() const { return error_; }
  const std::string& source() const { return source_; }
  size_t offset() const { return pos_; }  // bytes of the input consumed so far

 private:
  std::string_view data_;
  std::string source_;
  char delimiter_;
  Quoting quoting_;
  size_t pos_ = 0;
  int64_t line_ = 1;  // physical line at pos_
  int64_t record_line_ = 0;
  std::string error_;
};

}  // namespace bertfit::data

// TSV / CSV record splitter (see delimited.h for the accepted syntax).
#include "data/delimited.h"

#include <cstring>

#include "bertfit/error.h"

namespace bertfit::data {

DelimitedParser::DelimitedParser(std::string_view data, std::string source, char delimiter, Quoting quoting)
    : data_(data), source_(std::move(source)), delimiter_(delimiter), quoting_(quoting) {
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r')
    throw ConfigError(source_ + ": the delimiter cannot be a quote or a line break");
  if (quoting == Quoting::AUTO)
    throw ConfigError(source_ + ": quoting 'auto' must be resolved to rfc4180 or none before parsing");
  if (data_.size() >= 3 && data_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
}

DelimitedParser::Status DelimitedParser::next(std::vector<std::string>& fields) {
  const char* d = data_.data();
  const size_t n = data_.size();
  // Skip blank lines (LF or CRLF alone).
  while (pos_ < n) {
    if (d[pos_] == '\n') {
      ++pos_;
      ++line_;
    } else if (d[pos_] == '\r' && pos_ + 1 < n && d[pos_ + 1] == '\n') {
      pos_ += 2;
      ++line_;
    } else {
      break;
    }
  }
  if (pos_ >= n) return Status::END;
  record_line_ = line_;
  size_t count = 0;
  auto field = [&]() -> std::string& {
    if (count == fields.size()) fields.emplace_back();
    std::string& f = fields[count++];
    f.clear();
    return f;
  };
  for (;;) {
    std::string& f = field();
    if (quoting_ == Quoting::RFC4180 && pos_ < n && d[pos_] == '"') {
      const int64_t quote_line = line_;
      ++pos_;
      for (;;) {
        const void* q = std::memchr(d + pos_, '"', n - pos_);
        if (!q) {
          throw FormatError(source_ + ":" + std::to_string(quote_line) + ": field " + std::to_string(count) +
                            ": quoted field is never closed (a '\"' opens it on this line and no closing "
                            "quote follows; if the text has bare quotes, read the file with --quoting none)");
        }
        const size_t qpos = static_cast<const char*>(q) - d;
        for (size_t k = pos_; k < qpos; ++k) line_ += d[k] == '\n';
        f.append(d + pos_, qpos - pos_);
        pos_ = qpos + 1;
        if (pos_ < n && d[pos_] == '"') {  // "" is one quote
          f.push_back('"');
          ++pos_;
          continue;
        }
        break;
      }
      // After the closing quote: delimiter, end of line or end of input.
      if (pos_ >= n) break;
      const char c = d[pos_];
      if (c == delimiter_) {
        ++pos_;
        continue;
      }
      if (c == '\n') {
        ++pos_;
        ++line_;
        break;
      }
      if (c == '\r' && pos_ + 1 < n && d[pos_ + 1] == '\n') {
        pos_ += 2;
        ++line_;
        break;
      }
      // Named at the line where the quote opened (the record's start when the field is its first): a bare
      // quote there makes the field run on to the next quote, possibly many lines below, and the error is
      // only noticed where that run ends.
      error_ =
          source_ + ":" + std::to_string(quote_line) + ": field " + std::to_string(count) +
          ": unexpected character after a closing quote (the '\"' that opens the field on line " +
          std::to_string(quote_line) +
          (line_ != quote_line ? " is closed on line " + std::to_string(line_) : std::string(" is closed")) +
          " and more text follows; a quoted field must end at a delimiter or the end of the line; if the "
          "text has bare quotes, read the file with --quoting none)";
      const void* nl = std::memchr(d + pos_, '\n', n - pos_);
      pos_ = nl ? static_cast<size_t>(static_cast<const char*>(nl) - d) + 1 : n;
      ++line_;
      fields.resize(count);
      return Status::BAD_RECORD;
    }
    // Unquoted field: up to the delimiter or the end of the line.
    size_t end = pos_;
    while (end < n && d[end] != delimiter_ && d[end] != '\n') ++end;
    size_t stop = end;
    const bool at_line_end = end >= n || d[end] == '\n';
    if (at_line_end && stop > pos_ && d[stop - 1] == '\r') --stop;  // CRLF
    f.assign(d + pos_, stop - pos_);
    if (end >= n) {
      pos_ = n;
      break;
    }
    pos_ = end + 1;
    if (at_line_end) {
      ++line_;
      break;
    }
  }
  fields.resize(count);
  return Status::OK;
}

}  // namespace bertfit::data

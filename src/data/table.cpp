// Named-column rows from TSV / CSV / JSON Lines (see table.h).
#include "data/table.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "data/utf8.h"

namespace bertfit::data {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string quote_name(const std::string& s) {
  return "'" + s + "'";
}

}  // namespace

FileFormat parse_file_format(const std::string& name) {
  const std::string n = lower(name);
  if (n == "auto") return FileFormat::AUTO;
  if (n == "tsv") return FileFormat::TSV;
  if (n == "csv") return FileFormat::CSV;
  if (n == "jsonl" || n == "json") return FileFormat::JSONL;
  throw ConfigError("unknown data format '" + name + "' (expected auto, tsv, csv or jsonl)");
}

Quoting parse_quoting(const std::string& name) {
  const std::string n = lower(name);
  if (n == "auto") return Quoting::AUTO;
  if (n == "rfc4180" || n == "csv" || n == "quoted") return Quoting::RFC4180;
  if (n == "none") return Quoting::NONE;
  throw ConfigError("unknown --quoting '" + name + "' (expected auto, rfc4180 or none)");
}

namespace {

// Malformed records of `text` read with `q` (see resolve_quoting), and the line of the first one.
int64_t malformed_records(std::string_view text, const std::string& source, char delimiter, Quoting q,
                          int64_t* first_line) {
  DelimitedParser p(text, source, delimiter, q);
  std::vector<std::string> fields;
  int64_t bad = 0;
  size_t width = 0;
  bool header = true;
  *first_line = 0;
  try {
    for (;;) {
      const auto st = p.next(fields);
      if (st == DelimitedParser::Status::END) break;
      const bool wrong = st == DelimitedParser::Status::BAD_RECORD || (!header && fields.size() != width);
      if (header) width = fields.size();
      header = false;
      if (!wrong) continue;
      if (!bad) *first_line = p.line();
      ++bad;
    }
  } catch (const FormatError&) {  // an unterminated quote: the rest of the text is one field
    if (!bad) *first_line = p.line();
    bad += 1 + static_cast<int64_t>(std::count(text.begin(), text.end(), '\n'));  // worse than any count
  }
  return bad;
}

}  // namespace

Quoting resolve_quoting(std::string_view text, const std::string& source, char delimiter, std::string* why) {
  if (text.find('"') == std::string_view::npos) {
    if (why) *why = "";
    return Quoting::RFC4180;  // no quote at all: both modes read the same
  }
  int64_t rfc_line = 0, none_line = 0;
  const int64_t rfc_bad = malformed_records(text, source, delimiter, Quoting::RFC4180, &rfc_line);
  if (rfc_bad == 0) {
    if (why) *why = "";
    return Quoting::RFC4180;
  }
  const int64_t none_bad = malformed_records(text, source, delimiter, Quoting::NONE, &none_line);
  if (none_bad < rfc_bad) {
    if (why)
      *why = "--quoting auto read " + source +
             " without quoting (as --quoting none) because its quotes do not " +
             "follow RFC 4180 (first at line " + std::to_string(rfc_line) +
             "); pass --quoting rfc4180 to read it quoted";
    return Quoting::NONE;
  }
  if (why)
    *why = "--quoting auto read " + source +
           " with RFC 4180 quoting; pass --quoting none if its quotes are " + "part of the text";
  return Quoting::RFC4180;
}

FileFormat resolve_format(const std::string& path, FileFormat format) {
  if (format != FileFormat::AUTO) return format;
  const std::string p = lower(path);
  if (ends_with(p, ".tsv") || ends_with(p, ".txt")) return FileFormat::TSV;
  if (ends_with(p, ".csv")) return FileFormat::CSV;
  if (ends_with(p, ".jsonl") || ends_with(p, ".json") || ends_with(p, ".ndjson")) return FileFormat::JSONL;
  throw ConfigError(path +
                    ": cannot tell the format from the extension (use .tsv, .csv, .jsonl, or name the "
                    "format explicitly)");
}

TableReader::TableReader(const std::string& path, const TableOptions& options,
                         std::vector<std::string> columns)
    : source_(path), columns_(std::move(columns)) {
  format_ = resolve_format(path, options.format);
  file_ = std::make_unique<MappedFile>(path);
  text_ = file_->view();
  init(options);
}

TableReader::TableReader(std::string source, std::string owned_text, const TableOptions& options,
                         std::vector<std::string> columns)
    : owned_text_(std::move(owned_text)), source_(std::move(source)), columns_(std::move(columns)) {
  format_ = options.format == FileFormat::AUTO ? FileFormat::TSV : options.format;
  text_ = owned_text_;
  init(options);
}

std::unique_ptr<TableReader> TableReader::from_text(std::string source, std::string text,
                                                    const TableOptions& options,
                                                    std::vector<std::string> columns) {
  return std::unique_ptr<TableReader>(
      new TableReader(std::move(source), std::move(text), options, std::move(columns)));
}

void TableReader::init(const TableOptions& options) {
  if (format_ == FileFormat::JSONL) {
    if (text_.size() >= 3 && text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
    return;
  }
  const char delim = options.delimiter ? options.delimiter : (format_ == FileFormat::CSV ? ',' : '\t');
  quoting_ = options.quoting;
  if (quoting_ == Quoting::AUTO) quoting_ = resolve_quoting(text_, source_, delim, &quoting_note_);
  parser_ = std::make_unique<DelimitedParser>(text_, source_, delim, quoting_);
  const auto st = parser_->next(header_);
  if (st == DelimitedParser::Status::END) throw FormatError(source_ + ": empty file (no header line)");
  if (st == DelimitedParser::Status::BAD_RECORD) throw FormatError(parser_->error() + " (in the header)");
  for (const auto& h : header_)
    if (utf8_invalid_offset(h) != std::string_view::npos)
      throw FormatError(source_ + ":" + std::to_string(parser_->line()) + ": header is not valid UTF-8");
  for (const auto& want : columns_) {
    const auto first = std::find(header_.begin(), header_.end(), want);
    if (first == header_.end()) {
      std::string have;
      for (const auto& h : header_) have += (have.empty() ? "" : ", ") + quote_name(h);
      throw FormatError(source_ + ":" + std::to_string(parser_->line()) + ": no column " + quote_name(want) +
                        " in the header (columns: " + have + ")");
    }
    if (std::find(first + 1, header_.end(), want) != header_.end())
      throw FormatError(source_ + ":" + std::to_string(parser_->line()) + ": column " + quote_name(want) +
                        " appears more than once in the header");
    column_index_.push_back(static_cast<size_t>(first - header_.begin()));
  }
}

TableReader::Status TableReader::bad(const std::string& what) {
  error_ = source_ + ":" + std::to_string(line_) + ": " + what;
  return Status::BAD_ROW;
}

int64_t TableReader::bytes_read() const {
  return static_cast<int64_t>(parser_ ? parser_->offset() : pos_);
}

TableReader::Status TableReader::next(std::vector<std::string>& values) {
  values.resize(columns_.size());
  return format_ == FileFormat::JSONL ? next_jsonl(values) : next_delimited(values);
}

TableReader::Status TableReader::next_delimited(std::vector<std::string>& values) {
  const auto st = parser_->next(fields_);
  line_ = parser_->line();
  if (st == DelimitedParser::Status::END) return Status::END;
  if (st == DelimitedParser::Status::BAD_RECORD) {
    error_ = parser_->error();
    return Status::BAD_ROW;
  }
  if (fields_.size() != header_.size())
    return bad("expected " + std::to_string(header_.size()) + " fields (as the header), got " +
               std::to_string(fields_.size()) + (quoting_note_.empty() ? "" : " (" + quoting_note_ + ")"));
  for (size_t i = 0; i < fields_.size(); ++i)
    if (utf8_invalid_offset(fields_[i]) != std::string_view::npos)
      return bad("column " + quote_name(header_[i]) + " is not valid UTF-8");
  for (size_t i = 0; i < columns_.size(); ++i) values[i] = fields_[column_index_[i]];
  return Status::OK;
}

TableReader::Status TableReader::next_jsonl(std::vector<std::string>& values) {
  const char* d = text_.data();
  const size_t n = text_.size();
  for (;;) {
    if (pos_ >= n) return Status::END;
    const void* nl = std::memchr(d + pos_, '\n', n - pos_);
    const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - d) : n;
    std::string_view line(d + pos_, end - pos_);
    pos_ = nl ? end + 1 : n;
    line_ = next_line_++;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
    if (utf8_invalid_offset(line) != std::string_view::npos) return bad("line is not valid UTF-8");
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(line.begin(), line.end());
    } catch (const nlohmann::json::exception& e) {  // parse errors, and numbers too large for a double
      return bad(std::string("invalid JSON: ") + e.what());
    }
    if (!obj.is_object()) return bad("expected a JSON object, got " + std::string(obj.type_name()));
    for (size_t i = 0; i < columns_.size(); ++i) {
      const auto it = obj.find(columns_[i]);
      if (it == obj.end()) return bad("no key " + quote_name(columns_[i]));
      if (it->is_string()) {
        values[i] = it->get<std::string>();
      } else if (it->is_number() || it->is_boolean()) {
        values[i] = it->dump();  // a numeric label 3 reads as "3"
      } else {
        return bad("key " + quote_name(columns_[i]) + " is " + std::string(it->type_name()) +
                   ", expected a string or a number");
      }
    }
    return Status::OK;
  }
}

}  // namespace bertfit::data

// Examples from a data file (see dataset.h).
#include "data/dataset.h"

#include "bertfit/error.h"

namespace bertfit::data {

namespace {

bool blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

Dataset read_rows(TableReader& reader, const DatasetSpec& spec, const std::string& path) {
  Dataset ds;
  ds.path = path;
  ds.has_labels = !spec.label_column.empty();
  ds.has_pairs = !spec.text_pair_column.empty();
  const size_t n_text = spec.text_columns.size();
  const size_t pair_at = n_text;
  const size_t label_at = pair_at + (ds.has_pairs ? 1 : 0);
  const size_t id_at = label_at + (ds.has_labels ? 1 : 0);
  std::vector<std::string> values;
  int64_t row = 0;
  auto report = [&](const std::string& msg) {
    if (!spec.skip_bad_rows) throw FormatError(msg);
    ds.skipped.push_back(msg);
  };
  constexpr int64_t kProgressEvery = int64_t{1} << 20;  // bytes between calls of on_progress
  int64_t next_progress = kProgressEvery;
  for (;;) {
    const auto st = reader.next(values);
    if (st == TableReader::Status::END) break;
    if (spec.on_progress && reader.bytes_read() >= next_progress) {
      spec.on_progress(reader.bytes_read(), reader.bytes_total());
      next_progress = reader.bytes_read() + kProgressEvery;
    }
    if (st == TableReader::Status::BAD_ROW) {
      report(reader.error());
      continue;
    }
    const std::string where = reader.source() + ":" + std::to_string(reader.line()) + ": ";
    Example ex;
    ex.line = reader.line();
    bool any_text = false;
    for (size_t i = 0; i < n_text; ++i) {
      if (i) ex.text += spec.text_separator;
      std::string v = clean_text_value(values[i], spec.newline_mode);
      any_text = any_text || !blank(v);
      ex.text += v;
    }
    if (!any_text) {
      std::string cols;
      for (const auto& c : spec.text_columns) cols += (cols.empty() ? "'" : ", '") + c + "'";
      report(where + "empty text (column" + (n_text > 1 ? "s " : " ") + cols + (n_text > 1 ? " are" : " is") +
             " empty)");
      continue;
    }
    if (ds.has_pairs) {
      ex.text_pair = clean_text_value(values[pair_at], spec.newline_mode);
      if (blank(ex.text_pair)) {
        report(where + "empty second text (column '" + spec.text_pair_column + "')");
        continue;
      }
    }
    if (ds.has_labels) {
      ex.label = values[label_at];
      if (blank(ex.label)) {
        report(where + "empty label (column '" + spec.label_column + "')");
        continue;
      }
    }
    if (!spec.id_column.empty()) {
      ex.id = values[id_at];
      if (blank(ex.id)) {
        report(where + "empty id (column '" + spec.id_column + "')");
        continue;
      }
    } else {
      ex.id = std::to_string(row);
    }
    ++row;
    ds.examples.push_back(std::move(ex));
  }
  if (spec.on_progress) spec.on_progress(reader.bytes_total(), reader.bytes_total());
  // A file with a header and no rows would evaluate to "0 examples, accuracy 0" and train on nothing.
  if (ds.examples.empty()) {
    if (ds.skipped.empty())
      throw FormatError(path + ": no data rows (the file has a header and nothing else)");
    throw FormatError(path + ": no usable rows: all " + std::to_string(ds.skipped.size()) +
                      " rows are bad (the first: " + ds.skipped.front() + ")");
  }
  return ds;
}

std::vector<std::string> wanted_columns(const DatasetSpec& spec) {
  if (spec.text_columns.empty()) throw ConfigError("no text column given");
  std::vector<std::string> cols = spec.text_columns;
  if (!spec.text_pair_column.empty()) cols.push_back(spec.text_pair_column);
  if (!spec.label_column.empty()) cols.push_back(spec.label_column);
  if (!spec.id_column.empty()) cols.push_back(spec.id_column);
  return cols;
}

}  // namespace

std::string clean_text_value(const std::string& value, NewlineMode mode) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '\r' || c == '\n' || c == '\t') {
      if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') ++i;  // CRLF is one line break
      if (mode == NewlineMode::SPACE) out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Dataset read_dataset(const std::string& path, const DatasetSpec& spec) {
  TableReader reader(path, spec.table, wanted_columns(spec));
  return read_rows(reader, spec, path);
}

Dataset read_dataset_text(const std::string& source, const std::string& text, const DatasetSpec& spec) {
  auto reader = TableReader::from_text(source, text, spec.table, wanted_columns(spec));
  return read_rows(*reader, spec, source);
}

std::string where(const Dataset& ds, const Example& ex) {
  return (ex.source.empty() ? ds.path : ex.source) + ":" + std::to_string(ex.line);
}

}  // namespace bertfit::data

// Submission CSV and plain TSV output (see submission.h).
#include "data/submission.h"

#include "bertfit/error.h"
#include "data/file_io.h"

namespace bertfit::data {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

void write_submission_csv(const std::string& path, const std::vector<std::string>& ids,
                          const std::vector<std::string>& labels, const std::string& id_header,
                          const std::string& label_header) {
  if (ids.size() != labels.size())
    throw ConfigError(path + ": " + std::to_string(ids.size()) + " ids but " + std::to_string(labels.size()) +
                      " predicted labels");
  std::string out = csv_field(id_header) + "," + csv_field(label_header) + "\n";
  for (size_t i = 0; i < ids.size(); ++i) out += csv_field(ids[i]) + "," + csv_field(labels[i]) + "\n";
  write_file_atomic(path, out);
}

void write_tsv(const std::string& path, const std::vector<std::string>& header,
               const std::vector<std::vector<std::string>>& rows) {
  std::string out;
  auto append_row = [&](const std::vector<std::string>& row, const std::string& where) {
    if (row.size() != header.size())
      throw ConfigError(path + ": " + where + " has " + std::to_string(row.size()) + " fields, the header " +
                        std::to_string(header.size()));
    for (size_t j = 0; j < row.size(); ++j) {
      if (row[j].find_first_of("\t\r\n") != std::string::npos)
        throw ConfigError(path + ": " + where + ", column '" + header[j] +
                          "': a tab or line break cannot be written to an unquoted TSV");
      if (j) out.push_back('\t');
      out += row[j];
    }
    out.push_back('\n');
  };
  append_row(header, "header");
  for (size_t i = 0; i < rows.size(); ++i) append_row(rows[i], "row " + std::to_string(i + 1));
  write_file_atomic(path, out);
}

}  // namespace bertfit::data

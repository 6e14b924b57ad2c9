// Output files in the competition's formats, written atomically (file_io.h).
#pragma once

#include <string>
#include <vector>

namespace bertfit::data {

// The submission CSV: header `<id_header>,<label_header>` (the competition: paperid,categories), then one
// line per prediction. Fields are quoted as RFC 4180 requires (a comma, quote, CR or LF inside), so any id
// or label survives pandas.read_csv. Throws ConfigError when the lists differ in length.
void write_submission_csv(const std::string& path, const std::vector<std::string>& ids,
                          const std::vector<std::string>& labels, const std::string& id_header = "paperid",
                          const std::string& label_header = "categories");

// A TSV with a header and no quoting (every field free of tabs and line breaks; throws ConfigError naming
// the row and column otherwise), as the competition's files are.
void write_tsv(const std::string& path, const std::vector<std::string>& header,
               const std::vector<std::vector<std::string>>& rows);

// One CSV field, quoted when needed.
std::string csv_field(const std::string& s);

}  // namespace bertfit::data

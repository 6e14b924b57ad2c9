// libFuzzer target: raw bytes through every reader mode of src/data (TSV / CSV with RFC 4180 quoting, the
// no-quoting competition mode, JSONL) and through the deb822 parser of `bertfit dataset debian`. Any input
// must give rows or a bertfit::Error, never a crash, a hang or an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bertfit/error.h"
#include "data/debian.h"
#include "data/table.h"

using namespace bertfit;
using namespace bertfit::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const FileFormat formats[] = {FileFormat::TSV, FileFormat::CSV, FileFormat::JSONL};
  const Quoting quotings[] = {Quoting::RFC4180, Quoting::NONE};
  for (FileFormat f : formats)
    for (Quoting q : quotings) {
      if (f == FileFormat::JSONL && q == Quoting::NONE) continue;
      TableOptions o;
      o.format = f;
      o.quoting = q;
      try {
        auto r = TableReader::from_text("fuzz", text, o, {"text", "label"});
        std::vector<std::string> values;
        for (int rows = 0; rows < 100000; ++rows)
          if (r->next(values) == TableReader::Status::END) break;
      } catch (const Error&) {
      }
    }
  try {
    parse_deb822(text, "fuzz", [](const Stanza& s) { (void)stanza_field(s, "Description"); });
  } catch (const Error&) {
  }
  return 0;
}

// A 100 MB competition TSV (and the same as JSON Lines) must read in a few seconds: the brief's bound for
// "fast and streaming-friendly". Labelled slow (Release only): the sanitizer build is 10x slower by design.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "data/dataset.h"
#include "data/labels.h"

namespace bertfit::data {
namespace {

namespace fs = std::filesystem;

// Rows of ~1 KB like the competition's papers: an id, a title, an abstract with quotes and UTF-8, a label.
std::string make_row(int64_t i, bool jsonl) {
  std::string abstract;
  for (int w = 0; w < 140; ++w)
    abstract += (w % 17 == 0 ? "\"quoted\" " : w % 29 == 0 ? "caf\xc3\xa9 " : "word ");
  const std::string title = "Paper number " + std::to_string(i);
  const std::string label = "cat" + std::to_string(i % 39);
  if (jsonl) {
    std::string esc;
    for (const char c : abstract) esc += c == '"' ? std::string("\\\"") : std::string(1, c);
    return "{\"paperid\":\"p" + std::to_string(i) + "\",\"title\":\"" + title + "\",\"abstract\":\"" + esc +
           "\",\"categories\":\"" + label + "\"}\n";
  }
  return "p" + std::to_string(i) + "\t" + title + "\t" + abstract + "\t" + label + "\n";
}

double read_seconds(const std::string& path, FileFormat format, size_t expect_rows) {
  DatasetSpec spec;
  spec.table.format = format;
  spec.table.quoting = Quoting::NONE;
  spec.text_columns = {"title", "abstract"};
  spec.label_column = "categories";
  spec.id_column = "paperid";
  const auto t0 = std::chrono::steady_clock::now();
  const Dataset ds = read_dataset(path, spec);
  const auto labels = LabelMap::from_dataset(ds).encode(ds);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ds.examples.size(), expect_rows);
  EXPECT_EQ(labels.size(), expect_rows);
  return s;
}

TEST(DataReaderSpeed, HundredMegabytesInAFewSeconds) {
  const fs::path dir =
      fs::path(BERTFIT_BINARY_DIR) / "test-tmp" / ("reader_speed." + std::to_string(getpid()));
  fs::create_directories(dir);
  for (const bool jsonl : {false, true}) {
    const std::string path = (dir / (jsonl ? "big.jsonl" : "big.tsv")).string();
    size_t rows = 0, bytes = 0;
    {
      std::ofstream out(path, std::ios::binary);
      if (!jsonl) out << "paperid\ttitle\tabstract\tcategories\n";
      while (bytes < (100u << 20)) {
        const std::string row = make_row(static_cast<int64_t>(rows++), jsonl);
        bytes += row.size();
        out << row;
      }
    }
    const double s = read_seconds(path, jsonl ? FileFormat::JSONL : FileFormat::TSV, rows);
    std::printf("%s: %zu rows, %.1f MB in %.2f s (%.0f MB/s)\n", jsonl ? "jsonl" : "tsv", rows,
                bytes / 1048576.0, s, bytes / 1048576.0 / s);
    // "A few seconds" for 100 MB; measured 0.3 s (TSV) and 0.6 s (JSONL, a JSON parse per row) on the
    // 2-core dev machine. 10 s leaves room for a loaded CI machine and still fails on anything super-linear.
    EXPECT_LT(s, 10.0);
    fs::remove(path);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bertfit::data

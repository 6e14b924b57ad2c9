// The demo's real data set: Debian package descriptions as a text-classification task shaped like the
// iFLYTEK paper competition (title = short description, abstract = long description, category = Section).
//
// Input: the apt lists (after `apt-get update -o Acquire::Languages=en`): every `*_Packages` file and every
// `*_i18n_Translation-en` file, plain or compressed as apt keeps them (.lz4 / .gz / .xz / ...: decompressed
// by `apt-helper cat-file`, which reads whatever apt wrote). The long description is taken from the Packages
// stanza when it carries one (older or custom repositories), otherwise from Translation-en by
// Description-md5 (bookworm's own archives keep only the short description in Packages).
//
// Text: continuation lines are joined with spaces; a " ." line (paragraph break) becomes a space; runs of
// whitespace collapse to one space, so every field is free of tabs and line breaks. Section: the part after
// the last '/' ("contrib/games" -> "games").
// De-duplication: one row per package name (the first stanza in file-name order, then file order: the same
// package from other lists or architectures is counted and dropped), then one row per identical
// (title, abstract) text (the package first in name order is kept), so no text is both trained and tested.
// Categories with fewer than min_per_class rows cannot be split with a stratified dev and test share; they
// are dropped and reported. Split: stratified_partition (split.h) with the seed; rows within each file are in
// a seeded shuffled order (as a competition file, not grouped by name prefix). Deterministic for a seed and
// the same lists.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bertfit::data {

struct DebianDatasetOptions {
  std::string lists_dir = "/var/lib/apt/lists";
  std::string out_dir;
  uint64_t seed = 42;
  double dev_fraction = 0.1;
  double test_fraction = 0.1;
  // 0: the smallest class size that gives every class at least one dev and one test row.
  int64_t min_per_class = 0;
};

struct DebianDatasetReport {
  std::vector<std::string> packages_files, translation_files;
  int64_t stanzas = 0;             // package stanzas read
  int64_t duplicate_packages = 0;  // same name again (another list or architecture)
  int64_t no_section = 0, empty_title = 0, invalid_utf8 = 0;
  int64_t without_long_description = 0;  // kept, abstract empty
  int64_t long_from_packages = 0, long_from_translations = 0;
  int64_t duplicate_texts = 0;
  int64_t min_per_class = 0;
  std::map<std::string, int64_t> dropped_classes;  // section -> rows dropped
  std::vector<std::string> classes;                // sorted
  // split name ("train", "dev", "test") -> rows per class (same order as classes)
  std::vector<std::pair<std::string, std::vector<int64_t>>> splits;
};

// Reads the lists, writes train.tsv, dev.tsv, test.tsv (no label column, as the competition's test file),
// test_labels.tsv (the test rows with their labels) and dataset.json into out_dir (created if needed).
// Throws FormatError / ConfigError naming the file or option.
DebianDatasetReport build_debian_dataset(const DebianDatasetOptions& options);

// Human-readable summary of a report (printed by `bertfit dataset debian`).
std::string format_debian_report(const DebianDatasetReport& r);

// --- pieces, exposed for tests ---

// One deb822 stanza: field name -> raw value (the first line's text after "Key:" and its continuation
// lines, newlines kept), as views into the parsed text.
using Stanza = std::vector<std::pair<std::string_view, std::string_view>>;
std::string_view stanza_field(const Stanza& s, std::string_view key);  // empty when absent

// Calls `fn` for every stanza of a deb822 text (Packages, Translation-*). Throws FormatError naming
// source:line for a line that is neither "Key: value" nor a continuation.
void parse_deb822(std::string_view text, const std::string& source,
                  const std::function<void(const Stanza&)>& fn);

// Description value -> (title, abstract) as described above.
std::pair<std::string, std::string> split_description(std::string_view raw);

// The text of an apt list file, decompressed if its name ends in a compression suffix.
std::string read_apt_list(const std::string& path);

}  // namespace bertfit::data

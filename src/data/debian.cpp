// The Debian package-description data set (see debian.h for the rules).
#include "data/debian.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "bertfit/error.h"
#include "core/rng.h"
#include "data/file_io.h"
#include "data/labels.h"
#include "data/split.h"
#include "data/submission.h"
#include "data/utf8.h"

extern char** environ;

namespace bertfit::data {

namespace fs = std::filesystem;

namespace {

const char* const kCompressed[] = {".lz4", ".gz", ".xz", ".bz2", ".lzma", ".zst"};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "name" without a compression suffix.
std::string_view strip_compression(std::string_view name) {
  for (const char* ext : kCompressed)
    if (ends_with(name, ext)) return name.substr(0, name.size() - std::strlen(ext));
  return name;
}

// Runs argv[0] (absolute path) and returns its standard output; throws FormatError on failure.
std::string run_capture(const std::vector<std::string>& argv, const std::string& what) {
  int fds[2];
  if (::pipe(fds) != 0) throw FormatError(what + ": pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw FormatError(what + ": cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw FormatError(what + ": " + argv[0] + " failed (exit status " +
                      std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  return out;
}

void append_collapsed(std::string& out, std::string_view s) {
  for (const char c : s) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (space) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
}

void trim_trailing_space(std::string& s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
}

struct Package {
  std::string name, title, abstract, section;
};

// All files of the lists directory whose name (without compression suffix) ends in `suffix`, sorted.
std::vector<std::string> list_files(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (ends_with(strip_compression(name), suffix)) out.push_back(entry.path().string());
  }
  if (ec) throw FormatError(dir + ": cannot list the directory: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string_view stanza_field(const Stanza& s, std::string_view key) {
  for (const auto& [k, v] : s)
    if (k == key) return v;
  return {};
}

void parse_deb822(std::string_view text, const std::string& source,
                  const std::function<void(const Stanza&)>& fn) {
  Stanza stanza;
  size_t pos = 0;
  int64_t line = 0;
  const char* base = text.data();
  // Index of the field whose value the continuation lines extend.
  size_t open_field = SIZE_MAX;
  while (pos <= text.size()) {
    const size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view l = text.substr(pos, end - pos);
    ++line;
    const size_t next = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.empty()) {  // stanza separator
      if (!stanza.empty()) fn(stanza);
      stanza.clear();
      open_field = SIZE_MAX;
    } else if (l[0] == ' ' || l[0] == '\t') {
      if (open_field == SIZE_MAX)
        throw FormatError(source + ":" + std::to_string(line) + ": continuation line without a field");
      // Extend the value's view to the end of this line (the views point into one buffer).
      auto& v = stanza[open_field].second;
      v = std::string_view(v.data(), static_cast<size_t>(base + pos + l.size() - v.data()));
    } else if (l[0] == '#') {
      // comment line (deb822 allows them)
    } else {
      const size_t colon = l.find(':');
      if (colon == std::string_view::npos || colon == 0)
        throw FormatError(source + ":" + std::to_string(line) + ": expected 'Field: value'");
      std::string_view value = l.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      stanza.emplace_back(l.substr(0, colon), value);
      open_field = stanza.size() - 1;
    }
    pos = next;
  }
  if (!stanza.empty()) fn(stanza);
}

std::pair<std::string, std::string> split_description(std::string_view raw) {
  const size_t nl = raw.find('\n');
  std::string title, abstract;
  append_collapsed(title, raw.substr(0, nl));
  trim_trailing_space(title);
  if (nl == std::string_view::npos) return {title, abstract};
  std::string_view rest = raw.substr(nl + 1);
  while (!rest.empty()) {
    const size_t e = rest.find('\n');
    std::string_view l = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 1);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (!l.empty() && (l[0] == ' ' || l[0] == '\t')) l.remove_prefix(1);  // the continuation marker
    if (l == ".") l = {};                                                 // paragraph break
    if (!abstract.empty() && abstract.back() != ' ') abstract.push_back(' ');
    append_collapsed(abstract, l);
  }
  trim_trailing_space(abstract);
  return {title, abstract};
}

std::string read_apt_list(const std::string& path) {
  if (strip_compression(path).size() == path.size()) return read_file(path);
  // apt's own tool reads every compression apt writes (lz4 when Acquire::GzipIndexes is on, gz, xz, ...).
  return run_capture({"/usr/lib/apt/apt-helper", "cat-file", path}, path);
}

DebianDatasetReport build_debian_dataset(const DebianDatasetOptions& o) {
  if (o.out_dir.empty()) throw ConfigError("dataset debian: --out is required");
  if (!(o.dev_fraction > 0 && o.test_fraction > 0 && o.dev_fraction + o.test_fraction < 1))
    throw ConfigError("dataset debian: --dev and --test must be positive and add up to less than 1");
  DebianDatasetReport r;
  r.packages_files = list_files(o.lists_dir, "_Packages");
  r.translation_files = list_files(o.lists_dir, "_i18n_Translation-en");
  if (r.packages_files.empty())
    throw FormatError(o.lists_dir +
                      ": no *_Packages lists (run `apt-get update -o Acquire::Languages=en` first)");

  // Long descriptions from Translation-en, by Description-md5.
  std::unordered_map<std::string, std::string> long_by_md5;
  for (const auto& path : r.translation_files) {
    const std::string text = read_apt_list(path);
    parse_deb822(text, path, [&](const Stanza& s) {
      const std::string_view md5 = stanza_field(s, "Description-md5");
      const std::string_view desc = stanza_field(s, "Description-en");
      if (md5.empty() || desc.empty()) return;
      long_by_md5.emplace(std::string(md5), split_description(desc).second);
    });
  }

  std::vector<Package> packages;
  std::unordered_set<std::string> seen_names;
  for (const auto& path : r.packages_files) {
    const std::string text = read_apt_list(path);
    parse_deb822(text, path, [&](const Stanza& s) {
      const std::string_view name = stanza_field(s, "Package");
      if (name.empty()) return;
      ++r.stanzas;
      if (!seen_names.emplace(name).second) {
        ++r.duplicate_packages;
        return;
      }
      Package p;
      p.name = std::string(name);
      const std::string_view section = stanza_field(s, "Section");
      if (section.empty()) {
        ++r.no_section;
        return;
      }
      const size_t slash = section.rfind('/');
      p.section = std::string(slash == std::string_view::npos ? section : section.substr(slash + 1));
      auto [title, abstract] = split_description(stanza_field(s, "Description"));
      if (title.empty()) {
        ++r.empty_title;
        return;
      }
      if (!abstract.empty()) {
        ++r.long_from_packages;
      } else {
        const auto it = long_by_md5.find(std::string(stanza_field(s, "Description-md5")));
        if (it != long_by_md5.end() && !it->second.empty()) {
          abstract = it->second;
          ++r.long_from_translations;
        } else {
          ++r.without_long_description;
        }
      }
      if (utf8_invalid_offset(p.name) != std::string_view::npos ||
          utf8_invalid_offset(title) != std::string_view::npos ||
          utf8_invalid_offset(abstract) != std::string_view::npos ||
          utf8_invalid_offset(p.section) != std::string_view::npos) {
        ++r.invalid_utf8;
        return;
      }
      p.title = std::move(title);
      p.abstract = std::move(abstract);
      packages.push_back(std::move(p));
    });
  }

  // Without Translation-en (apt's Languages set to none) bookworm's lists give titles only: not the task.
  if (r.long_from_packages + r.long_from_translations == 0)
    throw FormatError(o.lists_dir +
                      ": no long descriptions found (no *_i18n_Translation-en lists?); run "
                      "`apt-get update -o Acquire::Languages=en` first");

  // Identical texts: keep the first package in name order.
  std::sort(packages.begin(), packages.end(),
            [](const Package& a, const Package& b) { return a.name < b.name; });
  {
    std::unordered_set<std::string> texts;
    std::vector<Package> unique;
    for (auto& p : packages) {
      if (!texts.insert(p.title + '\t' + p.abstract).second) {
        ++r.duplicate_texts;
        continue;
      }
      unique.push_back(std::move(p));
    }
    packages = std::move(unique);
  }

  // Classes large enough for a stratified split: floor(f * n) >= 1 for both shares (1e-9 absorbs the
  // rounding of 1 / f, e.g. 1 / 0.1 = 10.000000000000002 would otherwise ask for 11).
  r.min_per_class = o.min_per_class > 0
                        ? o.min_per_class
                        : std::max<int64_t>({3, static_cast<int64_t>(std::ceil(1.0 / o.dev_fraction - 1e-9)),
                                             static_cast<int64_t>(std::ceil(1.0 / o.test_fraction - 1e-9))});
  std::map<std::string, int64_t> class_count;
  for (const auto& p : packages) ++class_count[p.section];
  {
    std::vector<Package> kept;
    for (auto& p : packages) {
      if (class_count[p.section] < r.min_per_class) {
        ++r.dropped_classes[p.section];
        continue;
      }
      kept.push_back(std::move(p));
    }
    packages = std::move(kept);
  }
  if (packages.empty())
    throw FormatError(o.lists_dir + ": no package is left after de-duplication and filtering");

  std::vector<std::string> sections;
  for (const auto& p : packages) sections.push_back(p.section);
  const LabelMap labels = LabelMap::from_labels(sections);
  r.classes = labels.id2label();
  std::vector<int64_t> y;
  for (const auto& p : packages) y.push_back(labels.id(p.section));
  auto parts = stratified_partition(y, labels.size(), {o.dev_fraction, o.test_fraction}, o.seed);

  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw FormatError(o.out_dir + ": cannot create the directory: " + ec.message());
  // File order: a seeded shuffle per split (a different stream from the split's own).
  Rng order_rng(splitmix64(o.seed ^ 0x6f726465725f7273ull));
  const char* const names[] = {"train", "dev", "test"};
  const std::vector<std::string> header = {"paperid", "title", "abstract", "categories"};
  for (size_t k = 0; k < 3; ++k) {
    auto& idx = parts[k];
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[order_rng.below(i)]);
    std::vector<std::vector<std::string>> rows;
    std::vector<int64_t> per_class(r.classes.size(), 0);
    for (const int64_t i : idx) {
      const Package& p = packages[static_cast<size_t>(i)];
      rows.push_back({p.name, p.title, p.abstract, p.section});
      ++per_class[static_cast<size_t>(y[static_cast<size_t>(i)])];
    }
    r.splits.emplace_back(names[k], per_class);
    if (k < 2) {
      write_tsv(o.out_dir + "/" + names[k] + ".tsv", header, rows);
    } else {
      write_tsv(o.out_dir + "/test_labels.tsv", header, rows);
      for (auto& row : rows) row.pop_back();
      write_tsv(o.out_dir + "/test.tsv", {"paperid", "title", "abstract"}, rows);
    }
  }

  nlohmann::ordered_json j;
  j["created_by"] = "bertfit dataset debian";
  j["source"] = {{"description",
                  "Debian package descriptions from the apt lists: title = short description, "
                  "abstract = long description, categories = Section"},
                 {"lists_dir", o.lists_dir},
                 {"packages_files", r.packages_files},
                 {"translation_files", r.translation_files}};
  j["seed"] = o.seed;
  j["dev_fraction"] = o.dev_fraction;
  j["test_fraction"] = o.test_fraction;
  j["min_per_class"] = r.min_per_class;
  j["files"] = {
      {"train", "train.tsv"}, {"dev", "dev.tsv"}, {"test", "test.tsv"}, {"test_labels", "test_labels.tsv"}};
  j["counts"] = {{"package_stanzas", r.stanzas},
                 {"duplicate_packages", r.duplicate_packages},
                 {"no_section", r.no_section},
                 {"empty_title", r.empty_title},
                 {"invalid_utf8", r.invalid_utf8},
                 {"long_description_from_packages", r.long_from_packages},
                 {"long_description_from_translations", r.long_from_translations},
                 {"without_long_description", r.without_long_description},
                 {"duplicate_texts", r.duplicate_texts},
                 {"rows", static_cast<int64_t>(packages.size())}};
  j["dropped_classes"] = r.dropped_classes;
  j["classes"] = r.classes;
  nlohmann::ordered_json splits;
  for (const auto& [name, per_class] : r.splits) {
    nlohmann::ordered_json pc;
    int64_t total = 0;
    for (size_t c = 0; c < per_class.size(); ++c) {
      pc[r.classes[c]] = per_class[c];
      total += per_class[c];
    }
    splits[name] = {{"rows", total}, {"per_class", pc}};
  }
  j["splits"] = splits;
  write_file_atomic(o.out_dir + "/dataset.json", j.dump(2) + "\n");
  return r;
}

std::string format_debian_report(const DebianDatasetReport& r) {
  char buf[512];
  std::string out;
  auto total = [](const std::vector<int64_t>& v) {
    int64_t t = 0;
    for (const int64_t x : v) t += x;
    return t;
  };
  std::snprintf(
      buf, sizeof buf,
      "read %zu Packages and %zu Translation-en lists: %lld package stanzas\n"
      "dropped: %lld duplicate package names, %lld identical texts, %lld without Section, "
      "%lld with an empty title, %lld not UTF-8\n"
      "long descriptions: %lld from Packages, %lld from Translation-en, %lld missing (kept, abstract "
      "empty)\n",
      r.packages_files.size(), r.translation_files.size(), static_cast<long long>(r.stanzas),
      static_cast<long long>(r.duplicate_packages), static_cast<long long>(r.duplicate_texts),
      static_cast<long long>(r.no_section), static_cast<long long>(r.empty_title),
      static_cast<long long>(r.invalid_utf8), static_cast<long long>(r.long_from_packages),
      static_cast<long long>(r.long_from_translations), static_cast<long long>(r.without_long_description));
  out += buf;
  int64_t dropped_rows = 0;
  std::string dropped;
  for (const auto& [name, n] : r.dropped_classes) {
    dropped_rows += n;
    dropped += " " + name + " (" + std::to_string(n) + ")";
  }
  out += "categories with fewer than " + std::to_string(r.min_per_class) +
         " rows, dropped: " + std::to_string(r.dropped_classes.size()) + " categories, " +
         std::to_string(dropped_rows) + " rows" + (dropped.empty() ? "" : ":" + dropped) + "\n";
  out += std::to_string(r.classes.size()) + " categories; rows per split:";
  for (const auto& [name, per_class] : r.splits) out += " " + name + " " + std::to_string(total(per_class));
  out += "\n";
  // Per-class table: name, train, dev, test.
  size_t w = 8;
  for (const auto& c : r.classes) w = std::max(w, c.size());
  std::snprintf(buf, sizeof buf, "  %-*s %7s %6s %6s\n", static_cast<int>(w), "category", "train", "dev",
                "test");
  out += buf;
  for (size_t c = 0; c < r.classes.size(); ++c) {
    std::snprintf(buf, sizeof buf, "  %-*s %7lld %6lld %6lld\n", static_cast<int>(w), r.classes[c].c_str(),
                  static_cast<long long>(r.splits[0].second[c]),
                  static_cast<long long>(r.splits[1].second[c]),
                  static_cast<long long>(r.splits[2].second[c]));
    out += buf;
  }
  return out;
}

}  // namespace bertfit::data

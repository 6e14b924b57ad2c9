// The Debian package-description data set on a tiny apt lists fixture (tools/data/make_apt_lists_fixture.py):
// deb822 parsing, description joining, lz4 lists through apt-helper, de-duplication, small-class dropping,
// the stratified split, the files written, and determinism for a seed.
#include "data/debian.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "data/dataset.h"
#include "data/file_io.h"

namespace bertfit::data {
namespace {

namespace fs = std::filesystem;
const std::string kLists = BERTFIT_FIXTURES "/data/apt-lists";

std::string temp_dir(const std::string& name) {
  const auto dir =
      fs::path(BERTFIT_BINARY_DIR) / "test-tmp" / ("debian_test." + std::to_string(getpid())) / name;
  fs::remove_all(dir);
  return dir.string();
}

DebianDatasetOptions options(const std::string& out, uint64_t seed = 42) {
  DebianDatasetOptions o;
  o.lists_dir = kLists;
  o.out_dir = out;
  o.seed = seed;
  o.dev_fraction = 0.2;
  o.test_fraction = 0.2;
  return o;
}

TEST(DataDebian, SplitDescription) {
  auto [title, abstract] =
      split_description("Short  text\n First line\n .\n Second\tpara\n   verbatim   x\n");
  EXPECT_EQ(title, "Short text");
  EXPECT_EQ(abstract, "First line Second para verbatim x");
  EXPECT_EQ(split_description("Only a title").second, "");
}

TEST(DataDebian, Deb822ParsingAndErrors) {
  std::vector<std::string> names, descs;
  parse_deb822("Package: a\nDescription: t\n l1\n .\n l2\n\n\nPackage: b\r\nX:y\r\n", "P",
               [&](const Stanza& s) {
                 names.emplace_back(stanza_field(s, "Package"));
                 descs.emplace_back(stanza_field(s, "Description"));
               });
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(descs[0], "t\n l1\n .\n l2");
  EXPECT_EQ(descs[1], "");
  try {
    parse_deb822("Package: a\n\n continuation\n", "lists/P", [](const Stanza&) {});
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("lists/P:3:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_deb822("no colon here\n", "P", [](const Stanza&) {}), FormatError);
}

TEST(DataDebian, CompressedListsAreReadThroughAptHelper) {
  if (!fs::exists("/usr/lib/apt/apt-helper")) GTEST_SKIP() << "not a Debian system";
  const std::string text =
      read_apt_list(kLists + "/example.org_debian_dists_stable_main_binary-i386_Packages.lz4");
  EXPECT_EQ(text.rfind("Package: game0\n", 0), 0u) << text;
}

TEST(DataDebian, BuildsTheSplitFilesAndReport) {
  if (!fs::exists("/usr/lib/apt/apt-helper")) GTEST_SKIP() << "not a Debian system";
  const std::string out = temp_dir("a");
  const DebianDatasetReport r = build_debian_dataset(options(out));
  EXPECT_EQ(r.packages_files.size(), 2u);
  EXPECT_EQ(r.translation_files.size(), 1u);
  EXPECT_EQ(r.stanzas, 24);  // 21 + lib9 + nosection in amd64, game0 again in i386
  EXPECT_EQ(r.duplicate_packages, 1);
  EXPECT_EQ(r.no_section, 1);
  EXPECT_EQ(r.duplicate_texts, 1);  // game6 repeats game5
  EXPECT_EQ(r.long_from_packages, 1);
  EXPECT_EQ(r.long_from_translations, 21);  // counted before de-duplication and class dropping
  EXPECT_EQ(r.min_per_class, 5);            // ceil(1 / 0.2)
  EXPECT_EQ(r.dropped_classes, (std::map<std::string, int64_t>{{"oddball", 2}}));
  EXPECT_EQ(r.classes, (std::vector<std::string>{"games", "libs", "utils"}));
  // 6 games, 7 libs, 6 utils; dev and test each get round(0.2 * 19) = 4: floors 1/1/1 plus one for libs,
  // the class with the largest remainder (1.4).
  ASSERT_EQ(r.splits.size(), 3u);
  EXPECT_EQ(r.splits[0].second, (std::vector<int64_t>{4, 3, 4}));
  EXPECT_EQ(r.splits[1].second, (std::vector<int64_t>{1, 2, 1}));
  EXPECT_EQ(r.splits[2].second, (std::vector<int64_t>{1, 2, 1}));

  // The files read back as competition TSVs.
  DatasetSpec spec;
  spec.table.quoting = Quoting::NONE;
  spec.text_columns = {"title", "abstract"};
  spec.label_column = "categories";
  spec.id_column = "paperid";
  const Dataset train = read_dataset(out + "/train.tsv", spec);
  const Dataset test_labels = read_dataset(out + "/test_labels.tsv", spec);
  EXPECT_EQ(train.examples.size(), 11u);
  spec.label_column.clear();
  const Dataset test = read_dataset(out + "/test.tsv", spec);
  ASSERT_EQ(test.examples.size(), test_labels.examples.size());
  for (size_t i = 0; i < test.examples.size(); ++i) {
    EXPECT_EQ(test.examples[i].id, test_labels.examples[i].id);
    EXPECT_EQ(test.examples[i].text, test_labels.examples[i].text);
  }
  EXPECT_EQ(read_file(out + "/test.tsv").substr(0, 23), "paperid\ttitle\tabstract\n");
  // Every text as the rules say, wherever the package landed.
  std::map<std::string, Example> by_id;
  for (const auto* ds : {&train, &test_labels})
    for (const auto& ex : ds->examples) by_id[ex.id] = ex;
  for (const auto& ex : read_dataset(out + "/dev.tsv",
                                     [&] {
                                       DatasetSpec s = spec;
                                       s.label_column = "categories";
                                       return s;
                                     }())
                            .examples)
    by_id[ex.id] = ex;
  ASSERT_EQ(by_id.size(), 19u);
  EXPECT_EQ(by_id["game2"].text, "Game number 2.A fun game, number 2. Second paragraph.");
  EXPECT_EQ(by_id["util3"].text, "Utility 3.Does thing 3 verbatim line end.");
  EXPECT_EQ(by_id["util3"].label, "utils");  // contrib/ stripped
  EXPECT_EQ(by_id["lib9"].text, "Library nine.Inline long description.");
  EXPECT_EQ(by_id.count("game6"), 0u);
  EXPECT_EQ(by_id.count("odd0"), 0u);

  const auto j = nlohmann::json::parse(read_file(out + "/dataset.json"));
  EXPECT_EQ(j["splits"]["train"]["rows"], 11);
  EXPECT_EQ(j["splits"]["test"]["per_class"]["libs"], 2);
  EXPECT_EQ(j["dropped_classes"]["oddball"], 2);
  EXPECT_EQ(j["seed"], 42);
  EXPECT_NE(format_debian_report(r).find("dropped: 1 duplicate package names, 1 identical texts"),
            std::string::npos);
}

TEST(DataDebian, DeterministicForASeed) {
  if (!fs::exists("/usr/lib/apt/apt-helper")) GTEST_SKIP() << "not a Debian system";
  const std::string a = temp_dir("s1"), b = temp_dir("s2"), c = temp_dir("s3");
  build_debian_dataset(options(a, 7));
  build_debian_dataset(options(b, 7));
  build_debian_dataset(options(c, 8));
  for (const char* f : {"train.tsv", "dev.tsv", "test.tsv", "test_labels.tsv", "dataset.json"})
    EXPECT_EQ(read_file(a + "/" + f), read_file(b + "/" + f)) << f;
  EXPECT_NE(read_file(a + "/train.tsv"), read_file(c + "/train.tsv"));
}

TEST(DataDebian, ErrorsNameTheProblem) {
  DebianDatasetOptions o = options(temp_dir("e"));
  o.lists_dir = BERTFIT_FIXTURES "/data";  // no *_Packages there
  EXPECT_THROW(build_debian_dataset(o), FormatError);
  // Packages without any long description (no Translation-en): a clear error with the apt command.
  const std::string lists = temp_dir("no-translations");
  fs::create_directories(lists);
  write_file_atomic(lists + "/x_binary-amd64_Packages", "Package: a\nDescription: short\nSection: games\n");
  o = options(temp_dir("e"));
  o.lists_dir = lists;
  try {
    build_debian_dataset(o);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("Acquire::Languages=en"), std::string::npos) << e.what();
  }
  o = options(temp_dir("e"));
  o.dev_fraction = 0.6;
  o.test_fraction = 0.5;
  EXPECT_THROW(build_debian_dataset(o), ConfigError);
}

}  // namespace
}  // namespace bertfit::data

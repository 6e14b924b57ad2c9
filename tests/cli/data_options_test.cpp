// evaluate / predict's data options: unset options come from the model's training_args.json, given ones
// win, and without either the library defaults apply (quoting auto).
#include "cli/data_options.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "bertfit/error.h"

namespace fs = std::filesystem;

namespace bertfit::cli {
namespace {

fs::path model_dir(const std::string& name, const std::string& training_args) {
  const fs::path d = fs::path(BERTFIT_BINARY_DIR) / "data_options_test" / name;
  fs::remove_all(d);
  fs::create_directories(d);
  if (!training_args.empty()) std::ofstream(d / "training_args.json") << training_args;
  return d;
}

TEST(DataOptions, UnsetOptionsComeFromTrainingArgs) {
  const fs::path d =
      model_dir("trained", R"({"format": "tsv", "quoting": "none", "text_columns": ["title", "abstract"],
                     "text_separator": " | ", "label_column": "categories", "id_column": "paperid"})");
  DataOptions o;
  const data::DatasetSpec s = o.spec(d.string(), true);
  EXPECT_EQ(s.table.format, data::FileFormat::TSV);
  EXPECT_EQ(s.table.quoting, data::Quoting::NONE);
  EXPECT_EQ(s.text_columns, (std::vector<std::string>{"title", "abstract"}));
  EXPECT_EQ(s.text_separator, " | ");
  EXPECT_EQ(s.label_column, "categories");
  EXPECT_EQ(s.id_column, "paperid");
  // predict reads no label column.
  EXPECT_EQ(o.spec(d.string(), false).label_column, "");
}

TEST(DataOptions, GivenOptionsWin) {
  const fs::path d = model_dir("given", R"({"quoting": "none", "label_column": "categories"})");
  DataOptions o;
  o.quoting = "rfc4180";
  o.label_column = "gold";
  o.text_columns = {"body"};
  const data::DatasetSpec s = o.spec(d.string(), true);
  EXPECT_EQ(s.table.quoting, data::Quoting::RFC4180);
  EXPECT_EQ(s.label_column, "gold");
  EXPECT_EQ(s.text_columns, (std::vector<std::string>{"body"}));
}

TEST(DataOptions, DefaultsWithoutTrainingArgs) {
  const fs::path d = model_dir("bare", "");
  const data::DatasetSpec s = DataOptions().spec(d.string(), true);
  EXPECT_EQ(s.table.format, data::FileFormat::AUTO);
  EXPECT_EQ(s.table.quoting, data::Quoting::AUTO);
  EXPECT_EQ(s.text_columns, (std::vector<std::string>{"text"}));
  EXPECT_EQ(s.label_column, "label");
  EXPECT_EQ(s.id_column, "");
}

TEST(DataOptions, UnknownQuotingIsAnErrorNamingTheChoices) {
  const fs::path d = model_dir("badq", "");
  DataOptions o;
  o.quoting = "sometimes";
  try {
    o.spec(d.string(), true);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("expected auto, rfc4180 or none"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bertfit::cli

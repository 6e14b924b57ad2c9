// `--config FILE`: TOML/INI and JSON settings become options; the command line wins; errors name file and
// line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "bertfit/error.h"
#include "cli/config_file.h"

namespace bertfit::cli {
namespace {

std::string write(const std::string& name, const std::string& text) {
  const std::string path = std::string(BERTFIT_BINARY_DIR) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigFile, TomlBecomesOptionsAndTheCommandLineWins) {
  const std::string p =
      write("cfg_test.toml",
            "# a run\n[finetune]\nlearning_rate = 3e-5\ntext_columns = [\"title\", \"abstract\"]\n"
            "truncation = 'head_tail'\noverwrite_output_dir = true\n");
  const auto out = expand_config_args({"finetune", "--config", p, "--learning-rate", "1e-4"});
  const std::vector<std::string> expect = {"finetune",
                                           "--text_columns=title,abstract",
                                           "--truncation=head_tail",
                                           "--overwrite_output_dir=true",
                                           "--learning-rate",
                                           "1e-4"};
  EXPECT_EQ(out, expect);
}

TEST(ConfigFile, JsonLikeTrainingArgs) {
  const std::string p =
      write("cfg_test.json", R"({"seed": 7, "warmup_ratio": 0.1, "id_column": "", "x": null})");
  const auto out = expand_config_args({"finetune", "--config=" + p});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1], "--seed=7");
  EXPECT_EQ(out[2], "--warmup_ratio=0.1");
}

TEST(ConfigFile, AShortAliasOnTheCommandLineWinsOverTheLongNameInTheFile) {
  // training_args.json names model_name_or_path; `--config run/training_args.json --model other` must take
  // other (before: both reached the parser, "--model_name_or_path: At Most 1 required but received 2").
  const std::string p = write(
      "cfg_alias.json", R"({"model_name_or_path": "run", "per_device_train_batch_size": 8, "seed": 3})");
  const auto out = expand_config_args({"finetune", "--config", p, "--model", "other", "--batch-size=4"});
  const std::vector<std::string> expect = {"finetune", "--seed=3", "--model", "other", "--batch-size=4"};
  EXPECT_EQ(out, expect);
}

TEST(ConfigFile, InlineCommentsAndHfsOlderOptionNames) {
  // A '#' outside quotes starts a comment (TOML); HF's evaluation_strategy is eval_strategy, so the command
  // line's --evaluation_strategy wins over the file's eval_strategy instead of both reaching the parser.
  const std::string p = write("cfg_comments.toml",
                              "max_steps = 4 # a few\noutput_dir = \"o#1\" # quoted '#' kept\n"
                              "eval_strategy = \"epoch\"\n");
  const auto out = expand_config_args({"finetune", "--config", p, "--evaluation_strategy", "steps"});
  const std::vector<std::string> expect = {"finetune", "--max_steps=4", "--output_dir=o#1",
                                           "--evaluation_strategy", "steps"};
  EXPECT_EQ(out, expect);
}

TEST(ConfigFile, ErrorsNameFileAndLine) {
  const std::string p = write("cfg_bad.toml", "seed = 1\nthis line has no equals sign\n");
  try {
    expand_config_args({"finetune", "--config", p});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cfg_bad.toml:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(expand_config_args({"finetune", "--config", "/nonexistent.toml"}), ConfigError);
}

}  // namespace
}  // namespace bertfit::cli

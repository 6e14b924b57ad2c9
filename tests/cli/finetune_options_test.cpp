// A run's training_args.json reruns it: `bertfit finetune --config out/training_args.json` must give back the
// same TrainingArgs. Written by TrainingArgs::to_json, read back through --config expansion and the finetune
// command's own options (cmd_finetune.cpp), as main() does.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "cli/commands.h"
#include "cli/config_file.h"
#include "train/training_args.h"

namespace bertfit::cli {
namespace {

// Parses `finetune <args>` into a fresh TrainingArgs, as main() does (after --config expansion).
TrainingArgs parse_finetune(std::vector<std::string> args) {
  CLI::App app;
  auto* cmd = app.add_subcommand("finetune");
  TrainingArgs parsed;
  add_finetune_options(cmd, &parsed);
  args.insert(args.begin(), "finetune");
  args = expand_config_args(args);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
  app.parse(args);
  return parsed;
}

std::string write_json(const std::string& name, const TrainingArgs& a) {
  const std::string path = std::string(BERTFIT_BINARY_DIR) + "/" + name;
  std::ofstream(path) << a.to_json().dump(2) << "\n";
  return path;
}

TEST(FinetuneOptions, TrainingArgsJsonRoundTrips) {
  TrainingArgs a;
  a.model_name_or_path = "models/x";
  a.output_dir = "out/x";
  a.train_file = "train.tsv";
  a.pad_to_max_length = true;  // not the default, so the round trip must carry it
  a.group_by_length = false;
  a.max_seq_length = 256;
  a.text_columns = {"title", "abstract"};
  a.learning_rate = 3e-5;
  a.head_learning_rate = 1e-4;
  a.seed = 7;
  const TrainingArgs b = parse_finetune({"--config", write_json("finetune_options_test.json", a)});
  EXPECT_TRUE(b.pad_to_max_length);
  EXPECT_EQ(b.to_json().dump(2), a.to_json().dump(2));  // every field, in one readable diff
}

TEST(FinetuneOptions, PadToMaxLengthDefaultsOffAndTakesBothSpellings) {
  const std::vector<std::string> required = {"--model", "m", "--output_dir", "o", "--train_file", "t.tsv"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), required.begin(), required.end());
    return parse_finetune(extra);
  };
  EXPECT_FALSE(with({}).pad_to_max_length);
  EXPECT_TRUE(with({"--pad_to_max_length", "true"}).pad_to_max_length);
  EXPECT_TRUE(with({"--pad-to-max-length", "true"}).pad_to_max_length);
  EXPECT_FALSE(with({"--pad_to_max_length=false"}).pad_to_max_length);
  EXPECT_THROW(with({"--pad_to_max_length", "maybe"}), CLI::ParseError);
}

}  // namespace
}  // namespace bertfit::cli

// A mistyped command line gets a hint naming the closest command or option (cli/suggest.h).
#include <gtest/gtest.h>

#include "cli/commands.h"
#include "cli/suggest.h"

namespace bertfit::cli {
namespace {

TEST(Suggest, EditDistance) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("fintune", "finetune"), 1u);
  EXPECT_EQ(edit_distance("--lable_column", "--label_column"), 2u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
}

// The hint after parsing `typed` with the real commands (as main does); "" when parsing succeeds.
std::string hint_for(std::vector<std::string> typed) {
  CLI::App app{"bertfit"};
  app.require_subcommand(1);
  add_finetune_command(app);
  add_predict_command(app);
  std::vector<std::string> args(typed.rbegin(), typed.rend());  // CLI11 takes them in reverse order
  try {
    app.parse(args);
  } catch (const CLI::ParseError&) {
    return parse_error_hint(app, typed);
  }
  return "";
}

TEST(Suggest, NamesTheClosestCommandAndOptions) {
  EXPECT_EQ(hint_for({"fintune", "--model", "x"}),
            "unknown command 'fintune' (did you mean finetune?); bertfit --help lists the commands");
  EXPECT_EQ(hint_for({"nosuchthing"}), "unknown command 'nosuchthing'; bertfit --help lists the commands");
  const std::string h = hint_for(
      {"finetune", "--model", "x", "--output_dir", "o", "--num_train_epoch", "1", "--lable_column", "y"});
  EXPECT_NE(h.find("unknown option --num_train_epoch: did you mean --num_train_epochs?"), std::string::npos)
      << h;
  EXPECT_NE(h.find("unknown option --lable_column: did you mean --label_column?"), std::string::npos) << h;
  EXPECT_NE(h.find("bertfit finetune --help lists its options"), std::string::npos) << h;
  // An option from a --config file (expanded into "--key=value" before parsing) is named as its key.
  const std::string c = hint_for({"finetune", "--model", "x", "--output_dir", "o", "--lerning_rate=1"});
  EXPECT_EQ(c.find("(a key of the --config file)"), std::string::npos) << c;  // typed: not from a file
  EXPECT_NE(c.find("did you mean --learning_rate?"), std::string::npos) << c;
}

}  // namespace
}  // namespace bertfit::cli

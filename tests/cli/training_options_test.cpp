// A run's training_args.json reruns it: `bertfit finetune --config out/training_args.json` and `bertfit
// pretrain --config out/training_args.json` must give back the same settings. Written by to_json, read back
// through --config expansion and the commands' own options (cmd_finetune.cpp, cmd_pretrain.cpp and the shared
// cli/training_options.cpp), as main() does. Unknown choices are errors naming the option and the choices.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bertfit/error.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "core/rng.h"
#include "train/finetune.h"
#include "train/pretrain.h"

namespace bertfit::cli {
namespace {

namespace fs = std::filesystem;

// Parses `<command> <args>` into a fresh Args, as main() does (after --config expansion).
template <class Args>
Args parse(const char* command, void (*add)(CLI::App*, Args*), std::vector<std::string> args) {
  CLI::App app;
  auto* cmd = app.add_subcommand(command);
  Args parsed;
  add(cmd, &parsed);
  args.insert(args.begin(), command);
  args = expand_config_args(args);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
  app.parse(args);
  return parsed;
}
FinetuneArgs parse_finetune(std::vector<std::string> args) {
  return parse<FinetuneArgs>("finetune", add_finetune_options, std::move(args));
}
PretrainArgs parse_pretrain(std::vector<std::string> args) {
  return parse<PretrainArgs>("pretrain", add_pretrain_options, std::move(args));
}

template <class Args>
std::string write_json(const std::string& name, const Args& a) {
  const std::string path = std::string(BERTFIT_BINARY_DIR) + "/" + name;
  std::ofstream(path) << a.to_json().dump(2) << "\n";
  return path;
}

TEST(TrainingOptions, FinetuneTrainingArgsJsonRoundTrips) {
  FinetuneArgs a;
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
  a.eval_strategy = IntervalStrategy::STEPS;
  a.eval_steps = 40;
  a.lr_scheduler_type = ScheduleKind::COSINE;
  a.metric_for_best_model = ClassificationMetric::MACRO_F1;
  a.max_train_samples = 100;
  const FinetuneArgs b = parse_finetune({"--config", write_json("training_options_finetune.json", a)});
  EXPECT_TRUE(b.pad_to_max_length);
  EXPECT_EQ(b.metric_for_best_model, ClassificationMetric::MACRO_F1);
  EXPECT_EQ(b.to_json().dump(2), a.to_json().dump(2));  // every field, in one readable diff
}

TEST(TrainingOptions, MultitaskOptionsRepeatAndRoundTrip) {
  // Multi-task fine-tuning's NAME=VALUE lists: repeated or comma-separated, both spellings, and back from
  // training_args.json (a JSON array there, comma-separated values through --config).
  const FinetuneArgs a =
      parse_finetune({"--model", "m", "--output_dir", "o", "--task", "sent=s.tsv", "--task", "topic=t.tsv",
                      "--task-label-column", "topic=category", "--task_text_columns",
                      "topic=title+body,sent=text", "--task_validation_file", "sent=s_dev.tsv",
                      "--task_problem_type", "topic=multi_label_classification"});
  EXPECT_EQ(a.multitask.task, (std::vector<std::string>{"sent=s.tsv", "topic=t.tsv"}));
  EXPECT_EQ(a.multitask.task_label_column, std::vector<std::string>{"topic=category"});
  EXPECT_EQ(a.multitask.task_text_columns, (std::vector<std::string>{"topic=title+body", "sent=text"}));
  EXPECT_EQ(a.multitask.task_problem_type, std::vector<std::string>{"topic=multi_label_classification"});
  const FinetuneArgs b = parse_finetune(
      {"--config", write_json("training_options_multitask_" + std::to_string(getpid()) + ".json", a)});
  EXPECT_EQ(b.to_json().dump(2), a.to_json().dump(2));
}

TEST(TrainingOptions, PretrainTrainingArgsJsonRoundTrips) {
  PretrainArgs a;
  a.output_dir = "out/p";
  a.train_file = {"a.txt", "b.txt"};
  a.model_size = "tiny";
  a.train_tokenizer = true;
  a.line_by_line = false;  // --concatenate
  a.whole_word_mask = true;
  a.max_steps = 12;
  a.eval_strategy = IntervalStrategy::NO;
  a.save_strategy = IntervalStrategy::STEPS;
  a.save_steps = 4;
  a.load_best_model_at_end = false;
  a.max_seq_length = 64;
  const PretrainArgs b = parse_pretrain({"--config", write_json("training_options_pretrain.json", a)});
  EXPECT_EQ(b.train_file, a.train_file);
  EXPECT_FALSE(b.line_by_line);
  EXPECT_EQ(b.effective_save_strategy(), IntervalStrategy::STEPS);
  EXPECT_EQ(b.to_json().dump(2), a.to_json().dump(2));
  EXPECT_NO_THROW(b.validate());
}

TEST(TrainingOptions, BothCommandsTakeBothSpellingsOfTheSharedOptions) {
  const auto f =
      parse_finetune({"--model", "m", "--output-dir", "o", "--train_file", "t.tsv", "--learning-rate", "1e-3",
                      "--max_steps", "5", "--save-strategy", "no", "--eval-strategy", "no"});
  EXPECT_EQ(f.learning_rate, 1e-3);
  EXPECT_EQ(f.max_steps, 5);
  EXPECT_EQ(f.effective_save_strategy(), IntervalStrategy::NO);
  const auto p = parse_pretrain({"--output_dir", "o", "--train-file", "t.txt", "--learning_rate", "1e-3",
                                 "--max-steps", "5", "--block_size", "32"});
  EXPECT_EQ(p.learning_rate, 1e-3);
  EXPECT_EQ(p.max_steps, 5);
  EXPECT_EQ(p.max_seq_length, 32);
  // The commands' own defaults (the paper's fine-tuning, BERT's pre-training).
  EXPECT_EQ(f.per_device_train_batch_size, 24);
  EXPECT_EQ(p.per_device_train_batch_size, 32);
  EXPECT_EQ(p.weight_decay, 0.01);
}

TEST(TrainingOptions, PadToMaxLengthDefaultsOffAndTakesBothSpellings) {
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

// The message of the ConfigError that `f` throws ("" when it throws none).
template <class F>
std::string config_error(F f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(TrainingOptions, AnUnknownChoiceNamesTheOptionAndTheChoices) {
  const std::vector<std::string> required = {"--model", "m", "--output_dir", "o", "--train_file", "t.tsv"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), required.begin(), required.end());
    return parse_finetune(extra);
  };
  EXPECT_EQ(config_error([&] {
              with({"--eval_strategy", "step"});
            }),
            "option --eval_strategy: unknown value \"step\" (choices: no, steps, epoch)");
  EXPECT_EQ(config_error([&] {
              with({"--metric_for_best_model", "f1"});
            }),
            "option --metric_for_best_model: unknown value \"f1\" (choices: accuracy, macro_f1, micro_f1, "
            "weighted_f1, loss, exact_match, mse, pearson, spearman)");
  EXPECT_EQ(config_error([&] {
              with({"--lr_scheduler_type", "cosine_with_restarts"});
            }),
            "option --lr_scheduler_type: unknown value \"cosine_with_restarts\" (choices: linear, cosine, "
            "constant, constant_with_warmup)");
  EXPECT_EQ(config_error([&] {
              parse_pretrain({"--output_dir", "o", "--save_strategy", "best"});
            }),
            "option --save_strategy: unknown value \"best\" (choices: no, steps, epoch)");
  // Names a library function parses later are checked by validate(), before any work.
  EXPECT_EQ(config_error([&] {
              with({"--truncation", "middle"}).validate();
            }),
            "option --truncation: unknown value \"middle\" (choices: head, tail, head_tail)");
  EXPECT_EQ(config_error([&] {
              with({"--features", "pool"}).validate();
            }).rfind("option --features: unknown value \"pool\" (choices: pooler, cls, ", 0),
            0u);
  EXPECT_EQ(config_error([&] {
              with({"--chunk_pooling", "sum"}).validate();
            }),
            "option --chunk_pooling: unknown value \"sum\" (choices: none, mean, max, attention)");
}

TEST(TrainingOptions, MaxStepsHasOneMeaning) {
  // HF: max_steps > 0 overrides the epochs; otherwise the epochs count, and 0 epochs are no step.
  FinetuneArgs f;
  f.model_name_or_path = "m";
  f.output_dir = "o";
  f.train_file = "t";
  f.max_steps = 0;
  EXPECT_NO_THROW(f.validate());
  f.num_train_epochs = -1;
  EXPECT_NE(config_error([&] { f.validate(); }).find("--num_train_epochs"), std::string::npos);
  // Saving must follow the evaluations when the best model is loaded at the end.
  FinetuneArgs s = f;
  s.num_train_epochs = 1;
  s.eval_strategy = IntervalStrategy::STEPS;
  s.eval_steps = 10;
  EXPECT_NO_THROW(s.validate());  // save_strategy unset: at every evaluation
  s.save_strategy = IntervalStrategy::EPOCH;
  EXPECT_NE(config_error([&] { s.validate(); }).find("--save_strategy"), std::string::npos);
  s.load_best_model_at_end = false;
  EXPECT_NO_THROW(s.validate());
}

std::string bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(TrainingOptions, BothCommandsRerunFromTheirOwnTrainingArgsBitForBit) {
  // `bertfit pretrain --config run/training_args.json` failed (its to_json wrote fields that are not
  // options); now both commands rerun from their own file, to the same weights.
  const fs::path root = fs::path(BERTFIT_BINARY_DIR) / "test-training-options-rerun";
  fs::remove_all(root);
  fs::create_directories(root);
  {
    Rng rng(5);
    std::ofstream text(root / "corpus.txt"), table(root / "train.tsv");
    table << "text\tlabel\n";
    for (int i = 0; i < 120; ++i) {
      std::string line;
      for (int w = 0; w < 10; ++w) line += (w ? " " : "") + std::string("w") + std::to_string(rng.below(30));
      text << line << "\n";
      table << line << "\t" << (rng.below(2) ? "pos" : "neg") << "\n";
    }
  }
  const std::string r = root.string();
  const PretrainArgs p = parse_pretrain({"--output_dir", r + "/pre", "--train_file", r + "/corpus.txt",
                                         "--train_tokenizer", "--vocab_size", "100", "--model_size", "tiny",
                                         "--max_steps", "3", "--max_seq_length", "16", "--threads", "2"});
  pretrain(p);
  const PretrainArgs p2 =
      parse_pretrain({"--config", r + "/pre/training_args.json", "--output_dir", r + "/pre-again"});
  pretrain(p2);
  EXPECT_EQ(p2.to_json().dump(),
            parse_pretrain({"--config", r + "/pre-again/training_args.json"}).to_json().dump());
  const std::string w = bytes(r + "/pre/model.safetensors");
  ASSERT_FALSE(w.empty());
  EXPECT_TRUE(w == bytes(r + "/pre-again/model.safetensors")) << "pretrain rerun differs";

  const FinetuneArgs f = parse_finetune({"--model", r + "/pre", "--output_dir", r + "/ft", "--train_file",
                                         r + "/train.tsv", "--max_steps", "3", "--max_seq_length", "16",
                                         "--learning_rate", "1e-3", "--threads", "2"});
  finetune(f);
  const FinetuneArgs f2 =
      parse_finetune({"--config", r + "/ft/training_args.json", "--output_dir", r + "/ft-again"});
  finetune(f2);
  const std::string c = bytes(r + "/ft/model.safetensors");
  ASSERT_FALSE(c.empty());
  EXPECT_TRUE(c == bytes(r + "/ft-again/model.safetensors")) << "finetune rerun differs";
}

}  // namespace
}  // namespace bertfit::cli

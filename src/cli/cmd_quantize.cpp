// `bertfit quantize IN_DIR OUT_DIR`: a fine-tuned classifier to an int8 directory (per-row symmetric int8
// weights of the encoder's linear layers; docs/quantization.md) that evaluate, predict and serve load like
// any other model.
#include <filesystem>
#include <string>
#include <system_error>

#include "backend/cpu/gemm_int8.h"
#include "bertfit/error.h"
#include "cli/commands.h"
#include "train/classifier.h"
#include "train/progress.h"
#include "train/quantized_model.h"

namespace bertfit::cli {

void add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "quantize",
      "Write an int8 copy of a fine-tuned classifier for faster inference (evaluate, predict, serve)");
  static std::string in_dir, out_dir;
  cmd->add_option("in_dir", in_dir, "Fine-tuned classifier directory (bertfit finetune's output_dir)")
      ->required();
  cmd->add_option("out_dir", out_dir, "Where the int8 model goes (written atomically)")->required();
  cmd->footer(
      "The encoder's linear layers get per-row symmetric int8 weights; their activations are quantized per "
      "row at run time; embeddings, LayerNorm, softmax and the classification head stay float.");
  cmd->callback([] {
    std::error_code ec;
    if (std::filesystem::equivalent(in_dir, out_dir, ec))  // false (with ec set) when out_dir does not exist
      throw ConfigError("quantize: out_dir " + out_dir + " is in_dir " + in_dir +
                        ": the int8 copy would replace the float weights; give another directory");
    Classifier c = load_classifier(in_dir);
    if (c.model->is_int8()) throw ConfigError(in_dir + ": already an int8 model");
    save_int8_model(*c.model, out_dir, [&](const std::string& staging) {
      c.tokenizer->save(staging);
      // The run's settings: evaluate and predict read the data columns from it (cli/data_options.cpp).
      const std::filesystem::path args = std::filesystem::path(in_dir) / "training_args.json";
      if (std::filesystem::exists(args))
        std::filesystem::copy_file(args, std::filesystem::path(staging) / "training_args.json");
    });
    log_message("quantize: " + std::to_string(int8_weight_names(*c.model).size()) +
                " linear layers to int8 -> " + out_dir + " (int8 products here: " + gemm_int8_path() + ")");
  });
}

}  // namespace bertfit::cli

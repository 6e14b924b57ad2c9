// `bertfit pretrain`: masked-LM pre-training, further pre-training of a checkpoint or a new model from a
// config (options named after HuggingFace's run_mlm.py and TrainingArguments; both `--learning_rate` and
// `--learning-rate` work). The options every training run shares are declared in cli/training_options.cpp;
// these are pre-training's own.
#include <cstdio>

#include "cli/commands.h"
#include "cli/training_options.h"
#include "train/pretrain.h"

namespace bertfit::cli {

void add_pretrain_options(CLI::App* cmd, PretrainArgs* a) {
  add_training_options(cmd, a, /*block_size_alias=*/true);
  auto* g = "Model";
  cmd->add_option(option_names("model_type"), a->model_type,
                  "New model: bert | roberta | electra (--objective electra: electra)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("embedding_size"), a->embedding_size,
                  "New ELECTRA model: embedding width, projected to hidden_size (0: hidden_size)")
      ->group(g);
  cmd->add_option(
         option_names("model_size"), a->model_size,
         "New model: tiny (2L/128H) | mini (4L/256H, the default) | small (4L/512H) | medium (8L/512H) | "
         "base (12L/768H)")
      ->group(g);
  cmd->add_option(option_names("hidden_size"), a->hidden_size, "New model: overrides the size's")->group(g);
  cmd->add_option(option_names("num_hidden_layers"), a->num_hidden_layers)->group(g);
  cmd->add_option(option_names("num_attention_heads"), a->num_attention_heads)->group(g);
  cmd->add_option(option_names("intermediate_size"), a->intermediate_size, "Default: 4 x hidden_size")
      ->group(g);
  cmd->add_option(option_names("max_position_embeddings"), a->max_position_embeddings,
                  "New model: positions (the longest sequence fine-tuning can use)")
      ->capture_default_str()
      ->group(g);
  g = "Tokenizer";
  cmd->add_option(option_names("tokenizer_name") + ",--tokenizer", a->tokenizer_name,
                  "Tokenizer directory (default: the model's)")
      ->group(g);
  cmd->add_flag(option_names("train_tokenizer"), a->train_tokenizer,
                "Train one on the training text (WordPiece for bert, byte-level BPE for roberta; a new model "
                "without --tokenizer does)")
      ->group(g);
  cmd->add_option(option_names("vocab_size"), a->vocab_size, "--train_tokenizer: vocabulary size")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("do_lower_case"), a->do_lower_case, "--train_tokenizer (WordPiece): uncased")
      ->capture_default_str()
      ->group(g);
  g = "Data";
  cmd->add_option(option_names("train_file"), a->train_file,
                  "Plain text, one document or sentence per line (repeatable or comma-separated; all sources "
                  "are mixed)")
      ->delimiter(',')
      ->group(g);
  cmd->add_option(
         option_names("train_table"), a->train_table,
         "Classification file(s) (.tsv/.csv/.jsonl, comma-separated or repeated) whose --text_columns "
         "are text (train + test = within-task)")
      ->delimiter(',')
      ->group(g);
  cmd->add_option(option_names("validation_split_percentage"), a->validation_split_percentage,
                  "Percent of the lines held out (seeded) when no validation file is given")
      ->capture_default_str()
      ->group(g);
  g = "Blocks and masking";
  cmd->add_flag(option_names("line_by_line"), a->line_by_line,
                "One block per line (the default; long lines give several blocks)")
      ->group(g);
  cmd->add_flag_callback(
         option_names("concatenate"), [a] { a->line_by_line = false; },
         "Join all lines and cut into blocks of max_seq_length")
      ->group(g);
  cmd->add_option(option_names("mlm_probability"), a->mlm_probability, "Share of tokens predicted")
      ->capture_default_str()
      ->group(g);
  cmd->add_flag(option_names("whole_word_mask"), a->whole_word_mask,
                "Mask whole words (WordPiece ## / Ġ); a CJK character is a word of its own, so Chinese is "
                "masked character by character (HF's Chinese wwm reads word boundaries from a segmenter's "
                "--train_ref_file, which bertfit does not take)")
      ->group(g);
  g = "Objective";
  cmd->add_option(option_names("objective"), a->objective,
                  "mlm (masked LM) | electra (replaced-token detection: a small generator fills the masked "
                  "tokens, the discriminator learns from every token; writes ElectraForPreTraining, the "
                  "generator in <output_dir>/generator)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("generator_size_ratio"), a->generator_size_ratio,
                  "ELECTRA: generator width (hidden, heads, intermediate) as a share of the discriminator's")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("discriminator_loss_weight"), a->discriminator_loss_weight,
                  "ELECTRA: loss = generator MLM + this x discriminator")
      ->capture_default_str()
      ->group(g);
}

void add_pretrain_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "pretrain",
      "Pre-train with masked LM or ELECTRA: continue from a model directory, or a new model from a size / "
      "config (writes a HuggingFace *ForMaskedLM / ElectraForPreTraining directory that `finetune --model` "
      "takes)");
  auto a = std::make_shared<PretrainArgs>();
  add_pretrain_options(cmd, a.get());
  cmd->callback([a] {
    const PretrainResult r = pretrain(*a);
    std::printf("model: %s (step %lld)\n", r.output_dir.c_str(), static_cast<long long>(r.global_step));
    if (r.final_eval.electra)
      std::printf(
          "held-out: loss %.4f (generator MLM %.4f, discriminator %.4f, accuracy %.4f; before training: "
          "%.4f)\n",
          r.final_eval.loss, r.final_eval.generator_loss, r.final_eval.discriminator_loss,
          r.final_eval.discriminator_accuracy, r.initial_eval.loss);
    else if (r.final_eval.masked_tokens > 0 && r.initial_eval.masked_tokens > 0)
      std::printf("held-out: MLM loss %.4f, perplexity %.2f (before training: %.4f)\n", r.final_eval.loss,
                  r.final_eval.perplexity, r.initial_eval.loss);
    else if (r.final_eval.masked_tokens > 0)
      std::printf("held-out: MLM loss %.4f, perplexity %.2f\n", r.final_eval.loss, r.final_eval.perplexity);
    write_run_report(r.output_dir, "pretrain");
  });
}

}  // namespace bertfit::cli

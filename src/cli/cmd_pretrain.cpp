// `bertfit pretrain`: masked-LM pre-training, further pre-training of a checkpoint or a new model from a
// config (options named after HuggingFace's run_mlm.py and TrainingArguments; both `--learning_rate` and
// `--learning-rate` work).
#include <cstdio>

#include "cli/commands.h"
#include "train/pretrain.h"

namespace bertfit::cli {

void add_pretrain_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "pretrain",
      "Pre-train with masked LM: continue from a model directory, or a new model from a size / config "
      "(writes a HuggingFace *ForMaskedLM directory that `finetune --model` takes)");
  auto a = std::make_shared<PretrainArgs>();
  auto concatenate = std::make_shared<bool>(false);
  // Handled in main() for every command (cli/config_file.h); declared here so that --help lists it.
  cmd->add_option("--config",
                  "Read options from a TOML / INI (key = value) or JSON file, e.g. a run's "
                  "training_args.json; options on the command line win");
  auto* g = "Model";
  cmd->add_option(
         option_names("model_name_or_path") + ",--model", a->model_name_or_path,
         "Continue from this HuggingFace directory (any head; the MLM head is initialised if absent)")
      ->group(g);
  cmd->add_option(option_names("model_type"), a->model_type, "New model: bert | roberta")
      ->capture_default_str()
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
  cmd->add_option(option_names("hidden_dropout_prob"), a->hidden_dropout_prob, "Override the model's dropout")
      ->group(g);
  cmd->add_option(option_names("attention_probs_dropout_prob"), a->attention_probs_dropout_prob)->group(g);
  cmd->add_option(option_names("output_dir"), a->output_dir, "Where checkpoints and the final model go")
      ->required();
  cmd->add_flag(option_names("overwrite_output_dir"), a->overwrite_output_dir,
                "Allow a non-empty output_dir");
  g = "Tokenizer";
  cmd->add_option(option_names("tokenizer_name") + ",--tokenizer", a->tokenizer_name,
                  "Tokenizer directory (default: the model's)")
      ->group(g);
  cmd->add_flag(option_names("train_tokenizer"), a->train_tokenizer,
                "Train one on the training text (WordPiece for bert, byte-level BPE for roberta)")
      ->group(g);
  cmd->add_option(option_names("vocab_size"), a->vocab_size, "--train_tokenizer: vocabulary size")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("do_lower_case"), a->do_lower_case, "--train_tokenizer (WordPiece): uncased")
      ->capture_default_str()
      ->group(g);
  g = "Data";
  cmd->add_option(option_names("train_file"), a->train_files,
                  "Plain text, one document or sentence per line (repeatable; all sources are mixed)")
      ->group(g);
  cmd->add_option(option_names("train_table"), a->train_tables,
                  "Classification file (.tsv/.csv/.jsonl) whose --text_columns are text (repeatable: "
                  "train + test = within-task)")
      ->group(g);
  cmd->add_option(option_names("format"), a->format, "Tables: auto | tsv | csv | jsonl")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("quoting"), a->quoting, "Tables: rfc4180 | none")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("text_columns"), a->text_columns,
                  "Tables: text column(s), joined by --text_separator")
      ->delimiter(',')
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("text_separator"), a->text_separator)->capture_default_str()->group(g);
  cmd->add_option(option_names("validation_file"), a->validation_file,
                  "Held-out plain text (default: a share)")
      ->group(g);
  cmd->add_option(option_names("validation_split_percentage"), a->validation_split_percentage,
                  "Percent of the lines held out (seeded) when no validation file is given")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("max_train_samples"), a->max_train_samples,
                  "Use a seeded subset of the training lines")
      ->group(g);
  cmd->add_option(option_names("max_eval_samples"), a->max_eval_samples,
                  "Use a seeded subset of the held-out lines")
      ->group(g);
  g = "Blocks and masking";
  cmd->add_option(option_names("max_seq_length") + ",--block_size", a->max_seq_length,
                  "Tokens per block, special tokens included")
      ->capture_default_str()
      ->group(g);
  cmd->add_flag(option_names("line_by_line"), a->line_by_line,
                "One block per line (the default; long lines give several blocks)")
      ->group(g);
  cmd->add_flag(option_names("concatenate"), *concatenate,
                "Join all lines and cut into blocks of max_seq_length")
      ->group(g);
  cmd->add_option(option_names("mlm_probability"), a->mlm_probability, "Share of tokens predicted")
      ->capture_default_str()
      ->group(g);
  cmd->add_flag(option_names("whole_word_mask"), a->whole_word_mask,
                "Mask whole words (WordPiece ## / Ġ / CJK)")
      ->group(g);
  g = "Optimisation";
  cmd->add_option(option_names("learning_rate"), a->learning_rate, "Peak learning rate (paper: 5e-5)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("weight_decay"), a->weight_decay)->capture_default_str()->group(g);
  cmd->add_option(option_names("adam_beta1"), a->adam_beta1)->capture_default_str()->group(g);
  cmd->add_option(option_names("adam_beta2"), a->adam_beta2)->capture_default_str()->group(g);
  cmd->add_option(option_names("adam_epsilon"), a->adam_epsilon)->capture_default_str()->group(g);
  cmd->add_option(option_names("max_grad_norm"), a->max_grad_norm)->capture_default_str()->group(g);
  cmd->add_option(option_names("warmup_ratio"), a->warmup_ratio, "Share of steps warming up (paper: 0.1)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("warmup_steps"), a->warmup_steps)->group(g);
  cmd->add_option(option_names("lr_scheduler_type"), a->lr_scheduler_type,
                  "linear | cosine | constant | constant_with_warmup")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("num_train_epochs"), a->num_train_epochs)->capture_default_str()->group(g);
  cmd->add_option(option_names("max_steps"), a->max_steps,
                  "Stop after this many optimizer steps (0: just write the initial model: the "
                  "no-pre-training baseline)")
      ->group(g);
  cmd->add_option(option_names("per_device_train_batch_size") + ",--batch_size",
                  a->per_device_train_batch_size)
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("per_device_eval_batch_size"), a->per_device_eval_batch_size)
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("gradient_accumulation_steps"), a->gradient_accumulation_steps)
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("seed"), a->seed)->capture_default_str()->group(g);
  g = "Loop";
  cmd->add_option(
         option_names("eval_strategy") + ",--evaluation_strategy", a->eval_strategy,
         "no | steps | epoch (a checkpoint is saved at each evaluation; the best = lowest eval_loss)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("eval_steps"), a->eval_steps)->capture_default_str()->group(g);
  cmd->add_option(option_names("save_total_limit"), a->save_total_limit, "Checkpoints kept (never the best)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("load_best_model_at_end"), a->load_best_model_at_end)
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("logging_steps"), a->logging_steps)->capture_default_str()->group(g);
  cmd->add_option(option_names("group_by_length"), a->group_by_length)->capture_default_str()->group(g);
  cmd->add_option(option_names("resume_from_checkpoint"), a->resume_from_checkpoint,
                  "A checkpoint directory, or 'latest' in output_dir")
      ->group(g);
  cmd->add_option(option_names("threads"), a->threads, "Threads (0: all cores)")
      ->capture_default_str()
      ->group(g);
  cmd->callback([a, concatenate] {
    if (*concatenate) a->line_by_line = false;
    const PretrainResult r = pretrain(*a);
    std::printf("model: %s (step %lld)\n", r.output_dir.c_str(), static_cast<long long>(r.global_step));
    if (r.final_eval.masked_tokens > 0 && r.initial_eval.masked_tokens > 0)
      std::printf("held-out: MLM loss %.4f, perplexity %.2f (before training: %.4f)\n", r.final_eval.loss,
                  r.final_eval.perplexity, r.initial_eval.loss);
    else if (r.final_eval.masked_tokens > 0)
      std::printf("held-out: MLM loss %.4f, perplexity %.2f\n", r.final_eval.loss, r.final_eval.perplexity);
  });
}

}  // namespace bertfit::cli

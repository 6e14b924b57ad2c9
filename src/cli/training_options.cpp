#include "cli/training_options.h"

namespace bertfit::cli {

void add_training_options(CLI::App* cmd, TrainingArgs* a, bool block_size_alias) {
  // Handled in main() for every command (cli/config_file.h); declared here so that --help lists it.
  cmd->add_option("--config",
                  "Read options from a TOML / INI (key = value) or JSON file, e.g. a run's "
                  "training_args.json; options on the command line win");
  cmd->add_flag(option_names("do_train"), a->do_train,
                "Train (with --do_eval / --do_predict: only the stages given run; with none of them, "
                "training and the final evaluation)");
  cmd->add_flag(option_names("do_eval"), a->do_eval,
                "Evaluate the final model on the held-out data into output_dir/eval_results.json (alone: "
                "evaluate --model_name_or_path without training)");
  cmd->add_option(option_names("model_name_or_path") + ",--model", a->model_name_or_path,
                  "HuggingFace model directory (config.json, weights, tokenizer files)");
  cmd->add_option(option_names("output_dir"), a->output_dir, "Where checkpoints and the final model go")
      ->required();
  cmd->add_flag(option_names("overwrite_output_dir"), a->overwrite_output_dir,
                "Allow a non-empty output_dir");
  auto* g = "Data";
  cmd->add_option(option_names("validation_file"), a->validation_file,
                  "Held-out data (default: a share of the training data)")
      ->group(g);
  cmd->add_option(option_names("format"), a->format, "Tables: auto | tsv | csv | jsonl")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("quoting"), a->quoting,
                  "Tables: auto (per file: whichever reads with fewer malformed records) | rfc4180 | none")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("text_columns"), a->text_columns,
                  "Tables: text column(s), joined by --text_separator")
      ->delimiter(',')
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("text_separator"), a->text_separator, "Joins the text columns (the seed: '.')")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("max_train_samples"), a->max_train_samples,
                  "Use a seeded subset of this many training examples (0: all)")
      ->group(g);
  cmd->add_option(option_names("max_eval_samples"), a->max_eval_samples,
                  "Use a seeded subset of this many held-out examples (0: all)")
      ->group(g);
  cmd->add_option(option_names("max_seq_length") + (block_size_alias ? ",--block_size" : ""),
                  a->max_seq_length, "Tokens per sequence, special tokens included")
      ->capture_default_str()
      ->group(g);
  g = "Optimisation";
  cmd->add_option(option_names("learning_rate"), a->learning_rate, "Peak learning rate")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("weight_decay"), a->weight_decay, "AdamW decay (never on biases / LayerNorm)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("adam_beta1"), a->adam_beta1)->capture_default_str()->group(g);
  cmd->add_option(option_names("adam_beta2"), a->adam_beta2)->capture_default_str()->group(g);
  cmd->add_option(option_names("adam_epsilon"), a->adam_epsilon)->capture_default_str()->group(g);
  cmd->add_option(option_names("max_grad_norm"), a->max_grad_norm, "Global gradient clipping (0: off)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("warmup_ratio"), a->warmup_ratio, "Share of steps warming up")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("warmup_steps"), a->warmup_steps, "Warm-up steps (wins over the ratio)")
      ->group(g);
  add_choice_option(cmd, "lr_scheduler_type", &a->lr_scheduler_type, schedule_kind_names(), "Schedule")
      ->group(g);
  cmd->add_option(option_names("num_train_epochs"), a->num_train_epochs,
                  "Epochs (0: no step, the initial model is written)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("max_steps"), a->max_steps,
                  "> 0: stop after this many optimizer steps (wins over epochs)")
      ->group(g);
  cmd->add_option(option_names("per_device_train_batch_size") + ",--batch_size",
                  a->per_device_train_batch_size)
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("per_device_eval_batch_size"), a->per_device_eval_batch_size)
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("gradient_accumulation_steps"), a->gradient_accumulation_steps,
                  "Micro-batches per step; the loss is exactly the large batch's")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("hidden_dropout_prob"), a->hidden_dropout_prob, "Override the model's dropout")
      ->group(g);
  cmd->add_option(option_names("attention_probs_dropout_prob"), a->attention_probs_dropout_prob)->group(g);
  cmd->add_option(option_names("seed"), a->seed)->capture_default_str()->group(g);
  g = "Loop";
  add_choice_option(cmd, "eval_strategy", &a->eval_strategy, interval_strategy_names(),
                    "When to evaluate (a checkpoint is saved at each evaluation unless --save_strategy says "
                    "otherwise)",
                    ",--evaluation_strategy")
      ->group(g);
  cmd->add_option(option_names("eval_steps"), a->eval_steps)->capture_default_str()->group(g);
  cmd->add_option_function<std::string>(
         option_names("save_strategy"),
         [a](const std::string& v) {
           a->save_strategy = parse_choice("save_strategy", v, interval_strategy_names());
         },
         "When to save a checkpoint (" + list_choices(interval_strategy_names()) +
             "; default: at every evaluation, or every --save_steps with --eval_strategy no)")
      ->group(g);
  cmd->add_option(option_names("save_steps"), a->save_steps, "--save_strategy steps: every this many steps")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("save_total_limit"), a->save_total_limit,
                  "Checkpoints kept (the best is never deleted; 0: all)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("load_best_model_at_end"), a->load_best_model_at_end)
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("early_stopping_patience"), a->early_stopping_patience,
                  "Stop after this many evaluations without improvement (0: never)")
      ->group(g);
  cmd->add_option(option_names("logging_steps"), a->logging_steps,
                  "Log the mean loss of every this many steps")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("group_by_length"), a->group_by_length,
                  "Batches of similar lengths (little padding)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("ddp_bucket_cap_mb"), a->ddp_bucket_cap_mb,
                  "Under mpirun: gradients summed over the ranks in buckets of this many MiB, started during "
                  "the backward (0: one bucket after it)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("zero_stage"), a->zero_stage,
                  "Under mpirun: 1 shards the optimizer state over the ranks (ZeRO stage 1), 0 not")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("resume_from_checkpoint"), a->resume_from_checkpoint,
                  "A checkpoint directory, or 'latest' in output_dir")
      ->group(g);
  cmd->add_option(option_names("threads"), a->threads, "Threads (0: all cores)")
      ->capture_default_str()
      ->group(g);
  cmd->add_flag("--bf16", a->bf16,
                "Mixed precision: the encoder's matrix products with bf16 operands and float accumulation "
                "(AVX512_BF16 when the CPU has it, else emulated); float weights, gradients, optimizer, "
                "LayerNorm, softmax and loss")
      ->group(g);
  g = "Reports";
  cmd->add_option(option_names("report_to"), a->report_to,
                  "tensorboard (or all): TensorBoard event files in --logging_dir; none")
      ->delimiter(',')
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("logging_dir"), a->logging_dir,
                  "TensorBoard log directory (default: output_dir/runs/<date>_<host>)")
      ->group(g);
}

}  // namespace bertfit::cli

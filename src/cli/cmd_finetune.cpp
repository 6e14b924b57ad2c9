// `bertfit finetune`: fine-tune a BERT / RoBERTa directory for text classification (the paper's strategies as
// options named after HuggingFace's TrainingArguments; both `--learning_rate` and `--learning-rate` work).
#include <cstdio>

#include "cli/commands.h"
#include "train/trainer.h"

namespace bertfit::cli {

void add_finetune_options(CLI::App* cmd, TrainingArgs* a) {
  // Handled in main() for every command (cli/config_file.h); declared here so that --help lists it.
  cmd->add_option("--config",
                  "Read options from a TOML / INI (key = value) or JSON file, e.g. a run's "
                  "training_args.json; options on the command line win");
  cmd->add_option(option_names("model_name_or_path") + ",--model", a->model_name_or_path,
                  "HuggingFace model directory (config.json, weights, tokenizer files)")
      ->required();
  cmd->add_option(option_names("output_dir"), a->output_dir, "Where checkpoints and the final model go")
      ->required();
  cmd->add_flag(option_names("overwrite_output_dir"), a->overwrite_output_dir,
                "Allow a non-empty output_dir");
  auto* g = "Data";
  cmd->add_option(option_names("train_file"), a->train_file, "Training data: .tsv, .csv or .jsonl")
      ->required()
      ->group(g);
  cmd->add_option(option_names("validation_file"), a->validation_file,
                  "Validation data (default: carved from train)")
      ->group(g);
  cmd->add_option(option_names("format"), a->format, "auto | tsv | csv | jsonl")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("quoting"), a->quoting, "rfc4180 | none (competition TSVs with bare quotes)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("text_columns"), a->text_columns, "Text column(s), joined by --text_separator")
      ->delimiter(',')
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("text_separator"), a->text_separator, "Joins the text columns (the seed: '.')")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("text_pair_column"), a->text_pair_column, "Second text of a sentence pair")
      ->group(g);
  cmd->add_option(option_names("label_column"), a->label_column, "Label column")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("id_column"), a->id_column, "Id column")->group(g);
  cmd->add_option(option_names("validation_split"), a->validation_split,
                  "Share of train held out (stratified, seeded) when no validation file is given")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("few_shot_per_class"), a->few_shot_per_class, "Train on k examples per class")
      ->group(g);
  cmd->add_option(option_names("few_shot_fraction"), a->few_shot_fraction,
                  "Train on this share of every class")
      ->group(g);
  g = "Long texts";
  cmd->add_option(option_names("max_seq_length"), a->max_seq_length,
                  "Tokens per sequence, special tokens included")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("pad_to_max_length"), a->pad_to_max_length,
                  "Pad every batch to max_seq_length instead of its longest sequence (HF run_glue's option): "
                  "the same model function up to float rounding (dropout draws other masks), slower")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("truncation"), a->truncation, "head | tail | head_tail")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("head_length"), a->head_length,
                  "head_tail: tokens kept from the head (paper: 128)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(
         option_names("chunk_pooling"), a->chunk_pooling,
         "Hierarchical: split into chunks of max_seq_length, pool their [CLS] by mean | max | attention")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("max_chunks"), a->max_chunks, "Chunks per document at most")
      ->capture_default_str()
      ->group(g);
  g = "Classifier features";
  cmd->add_option(
         option_names("features"), a->features,
         "default | pooler | cls | layer | last4-concat | last4-mean | last4-max | all-concat | mean-tokens")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("feature_layer"), a->feature_layer,
                  "--features layer: which layer's [CLS] (0 = embeddings)")
      ->group(g);
  g = "Optimisation";
  cmd->add_option(option_names("learning_rate"), a->learning_rate, "Peak learning rate (paper: 2e-5)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("head_learning_rate"), a->head_learning_rate,
                  "Learning rate of the task head (seed: 1e-4)")
      ->group(g);
  cmd->add_option(
         option_names("layerwise_lr_decay"), a->layerwise_lr_decay,
         "xi: each layer below gets xi times the rate of the one above, down to the embeddings (paper: 0.95)")
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
  cmd->add_option(option_names("lr_scheduler_type"), a->lr_scheduler_type,
                  "linear | cosine | constant | constant_with_warmup")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("num_train_epochs"), a->num_train_epochs)->capture_default_str()->group(g);
  cmd->add_option(option_names("max_steps"), a->max_steps,
                  "Stop after this many optimizer steps (wins over epochs)")
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
  cmd->add_option(option_names("classifier_dropout"), a->classifier_dropout)->group(g);
  cmd->add_option(option_names("label_smoothing_factor"), a->label_smoothing_factor)
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("seed"), a->seed)->capture_default_str()->group(g);
  g = "Loop";
  cmd->add_option(option_names("eval_strategy") + ",--evaluation_strategy", a->eval_strategy,
                  "no | steps | epoch (a checkpoint is saved at each evaluation)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("eval_steps"), a->eval_steps)->capture_default_str()->group(g);
  cmd->add_option(option_names("save_total_limit"), a->save_total_limit,
                  "Checkpoints kept (the best is never deleted)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("load_best_model_at_end"), a->load_best_model_at_end)
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("metric_for_best_model"), a->metric_for_best_model,
                  "accuracy | macro_f1 | micro_f1 | weighted_f1 | loss")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("early_stopping_patience"), a->early_stopping_patience,
                  "Stop after this many evaluations without improvement (0: never)")
      ->group(g);
  cmd->add_option(option_names("logging_steps"), a->logging_steps)->capture_default_str()->group(g);
  cmd->add_option(option_names("group_by_length"), a->group_by_length,
                  "Batches of similar lengths (little padding, unless --pad_to_max_length)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("resume_from_checkpoint"), a->resume_from_checkpoint,
                  "A checkpoint directory, or 'latest' in output_dir")
      ->group(g);
  cmd->add_option(option_names("threads"), a->threads, "Threads (0: all cores)")
      ->capture_default_str()
      ->group(g);
}

void add_finetune_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "finetune",
      "Fine-tune a BERT/RoBERTa model directory for text classification (writes a HuggingFace directory)");
  auto a = std::make_shared<TrainingArgs>();
  add_finetune_options(cmd, a.get());
  cmd->callback([a] {
    const FinetuneResult r = finetune(*a);
    std::printf("model: %s (step %lld)\n", r.output_dir.c_str(), static_cast<long long>(r.global_step));
    if (!r.final_eval.predictions.empty())
      std::printf("validation: accuracy %.4f, macro-F1 %.4f, loss %.4f\n", r.final_eval.metrics.accuracy,
                  r.final_eval.metrics.macro.f1, r.final_eval.loss);
  });
}

}  // namespace bertfit::cli

// Masked-LM pre-training, as HuggingFace's run_mlm.py with the Trainer does it: further pre-training of a
// checkpoint on within-task / in-domain / cross-domain text (the paper's section 5.2), or pre-training a
// model from scratch (a named size or explicit fields, with a given tokenizer or one trained on the corpus).
//
// Text: plain files (one document or sentence per line; blank lines skipped, as run_mlm's line_by_line) and
// the text columns of classification files (train + test text = the seed's within-task corpus), all mixed.
// Blocks: line by line (the default: each line is one sequence [CLS] .. [SEP] of at most max_seq_length
// tokens; a longer line becomes several consecutive blocks, so no text is lost) or concatenated (run_mlm's
// group_texts: every line wrapped in its special tokens, all joined, cut into blocks of max_seq_length).
// A seeded share of the lines (validation_split_percentage) is held out, masked once with a fixed key, and
// evaluated by the mean MLM loss per masked token and its perplexity; the best checkpoint (lowest eval_loss)
// is kept through rotation and loaded at the end. The output directory is a BertForMaskedLM /
// RobertaForMaskedLM directory with the tokenizer, which `bertfit finetune --model` takes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bertfit/tokenizer.h"
#include "model/bert_model.h"
#include "train/encoded_data.h"
#include "train/mlm_masking.h"

namespace bertfit {

struct PretrainArgs {
  // Model: a checkpoint to continue from (any head; the MLM head is initialised when absent), else a new
  // model from model_size and / or the explicit fields (explicit fields win).
  std::string model_name_or_path;
  std::string model_type = "bert";  // bert | roberta (new models)
  std::string model_size;           // tiny | mini | small | medium | base (new models; default mini)
  int64_t hidden_size = 0, num_hidden_layers = 0, num_attention_heads = 0, intermediate_size = 0;
  int64_t max_position_embeddings = 512;     // new models: positions (fine-tuning may use up to this many)
  double hidden_dropout_prob = -1;           // < 0: the model's (0.1)
  double attention_probs_dropout_prob = -1;  // < 0: the model's (0.1)
  // Tokenizer: tokenizer_name, else the model directory's, else trained on the training text.
  std::string tokenizer_name;
  bool train_tokenizer = false;
  int vocab_size = 16000;
  bool do_lower_case = true;  // WordPiece training: lowercase and strip accents (uncased BERT)
  std::string output_dir;
  bool overwrite_output_dir = false;
  // Text sources.
  std::vector<std::string> train_files;   // plain text, one document / sentence per line
  std::vector<std::string> train_tables;  // classification files: their text columns
  std::string format = "auto";            // tables: auto | tsv | csv | jsonl
  std::string quoting = "rfc4180";        // tables: rfc4180 | none
  std::vector<std::string> text_columns{"text"};
  std::string text_separator = ".";
  std::string validation_file;             // plain text; else a share of the lines is held out
  double validation_split_percentage = 5;  // run_mlm's name and default
  int64_t max_train_samples = 0;           // > 0: a seeded subsample of the training lines
  int64_t max_eval_samples = 0;            // > 0: of the held-out lines
  // Blocks and masking.
  int max_seq_length = 256;  // the seed's block size
  bool line_by_line = true;  // false: concatenate and cut (--concatenate)
  double mlm_probability = 0.15;
  bool whole_word_mask = false;
  // Optimisation (the paper's further pre-training: lr 5e-5, 10% warm-up, linear decay).
  double learning_rate = 5e-5;
  double weight_decay = 0.01;  // BERT's pre-training value (never on biases / LayerNorm)
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;
  double warmup_ratio = 0.1;
  int64_t warmup_steps = 0;
  std::string lr_scheduler_type = "linear";
  double num_train_epochs = 3;
  int64_t max_steps = -1;  // > 0 wins over epochs; 0: no training, writes the initial model
  int per_device_train_batch_size = 32;
  int per_device_eval_batch_size = 64;
  int gradient_accumulation_steps = 1;
  uint64_t seed = 42;
  // The loop.
  std::string eval_strategy = "epoch";  // no | steps | epoch (a checkpoint is saved at each evaluation)
  int64_t eval_steps = 500;
  int save_total_limit = 2;  // never deletes the best checkpoint
  bool load_best_model_at_end = true;
  int64_t logging_steps = 50;
  bool group_by_length = true;
  std::string resume_from_checkpoint;  // a checkpoint directory, or "latest"
  int threads = 0;

  nlohmann::ordered_json to_json() const;
  // Throws ConfigError naming the option.
  void validate() const;
};

struct MlmEvalResult {
  double loss = 0;        // mean cross-entropy per masked token (nats)
  double perplexity = 0;  // exp(loss)
  int64_t masked_tokens = 0;
  double runtime = 0;
};

struct PretrainResult {
  std::string output_dir;
  std::string best_checkpoint;
  int64_t global_step = 0;
  int64_t train_blocks = 0, eval_blocks = 0;
  MlmEvalResult initial_eval;  // the held-out loss before the first step (fresh runs)
  MlmEvalResult final_eval;    // of the model written to output_dir
};

// Lines of text: plain files (blank lines skipped, CR stripped) or a table's text columns. Throws
// FormatError naming the file.
std::vector<std::string> read_text_lines(const std::string& path);
std::vector<std::string> read_table_texts(const std::string& path, const PretrainArgs& args);

// Token blocks of at most max_seq_length tokens, special tokens included (see the file comment).
std::vector<EncodedExample> make_blocks(const Tokenizer& tok, const std::vector<std::string>& lines,
                                        int max_seq_length, bool line_by_line, int threads);

// The held-out MLM loss with masks keyed by `epoch_key` (a fixed key: the same masks at every evaluation).
MlmEvalResult evaluate_mlm(BertModel& model, const std::vector<EncodedExample>& blocks,
                           const train::MlmMasker& masker, int batch_size, int32_t pad_id,
                           uint64_t epoch_key);

// The whole run. Throws bertfit::Error subclasses naming the file or option on bad input.
PretrainResult pretrain(const PretrainArgs& args);

}  // namespace bertfit

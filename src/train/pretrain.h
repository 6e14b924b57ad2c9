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
#include "train/training_args.h"
#include "train/training_loop.h"

namespace bertfit {

// The shared settings (TrainingArgs) with pre-training's defaults, and pre-training's own.
struct PretrainArgs : TrainingArgs {
  PretrainArgs();
  // Model: a checkpoint to continue from (model_name_or_path: any head; the MLM head is initialised when
  // absent), else a new model from model_size and / or the explicit fields (explicit fields win).
  std::string model_type = "bert";  // bert | roberta | electra (new models; --objective electra: electra)
  // mlm, or electra: replaced-token detection with a generator (electra_pretrain.h); the output directory is
  // then the discriminator (ElectraForPreTraining) and <output_dir>/generator the generator.
  std::string objective = "mlm";
  double generator_size_ratio = 0.25;     // ELECTRA: generator hidden / heads / intermediate x this
  double discriminator_loss_weight = 50;  // ELECTRA: loss = mlm + this x replaced-token detection
  int64_t embedding_size = 0;             // new ELECTRA models: embedding width (0: hidden_size)
  std::string model_size;                 // tiny | mini | small | medium | base (new models; default mini)
  int64_t hidden_size = 0, num_hidden_layers = 0, num_attention_heads = 0, intermediate_size = 0;
  int64_t max_position_embeddings = 512;  // new models: positions (fine-tuning may use up to this many)
  // Tokenizer: tokenizer_name, else the model directory's, else trained on the training text.
  std::string tokenizer_name;
  bool train_tokenizer = false;
  int vocab_size = 16000;
  bool do_lower_case = true;  // WordPiece training: lowercase and strip accents (uncased BERT)
  // Text sources (validation_file: plain text; the table options format, quoting, text columns:
  // TrainingArgs).
  std::vector<std::string> train_file;     // plain text, one document / sentence per line
  std::vector<std::string> train_table;    // classification files: their text columns
  double validation_split_percentage = 5;  // run_mlm's name and default
  // Blocks (max_seq_length tokens) and masking.
  bool line_by_line = true;  // false: concatenate and cut (--concatenate)
  double mlm_probability = 0.15;
  bool whole_word_mask = false;

  void own_fields_to_json(nlohmann::ordered_json* j) const override;
  // Throws ConfigError naming the option.
  void validate() const;
};

struct MlmEvalResult {
  double loss = 0;        // mean cross-entropy per masked token (nats); ELECTRA: generator_loss + w x disc
  double perplexity = 0;  // exp(loss); ELECTRA: exp(generator_loss)
  int64_t masked_tokens = 0;
  double runtime = 0;
  // ELECTRA only (objective electra): the generator's MLM loss per masked token, the discriminator's loss
  // per token and its accuracy (replaced vs original).
  bool electra = false;
  double generator_loss = 0, discriminator_loss = 0, discriminator_accuracy = 0;
  double replaced_share = 0;  // of the held-out tokens, those the generator's samples changed
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
                           const MlmMasker& masker, int batch_size, int32_t pad_id, uint64_t epoch_key);

// The whole run. Throws bertfit::Error subclasses naming the file or option on bad input.
PretrainResult pretrain(const PretrainArgs& args, const LoopHooks& hooks = {});

}  // namespace bertfit

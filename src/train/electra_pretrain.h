// ELECTRA pre-training (Clark et al. 2020): replaced-token detection as a task of the one training loop.
//
// Per micro-batch: the block is masked as for MLM (MlmMasker, keyed by (seed, epoch, block)); a small
// generator (an ELECTRA encoder with the MLM head, electra_generator_config) predicts the masked positions
// and is trained on them with MLM; each masked position is replaced by a token sampled from the generator's
// softmax (counter-based uniforms keyed by (seed, epoch, block, position): deterministic, so a resumed run is
// bitwise the uninterrupted one); the discriminator (ElectraForPreTraining) sees the original block with
// those replacements and learns, on every non-padding token, whether it was replaced (a sample equal to the
// original counts as original). No gradient flows through the sampling.
//
//   loss = mlm_loss (mean over the step's masked tokens) + w * disc_loss (mean over its tokens), w = 50
//
// Tied embeddings (the paper's setting and its code's shared "embeddings" scope): the generator's
// electra.embeddings.* (word, position, token type, LayerNorm) are the discriminator's. The generator holds a
// copy, refreshed from the discriminator before each step's first forward (and before saving); its gradient
// is added to the discriminator's, which the loop's optimizer updates. Each model keeps its own
// embeddings_project (width embedding_size -> its hidden size). One global gradient-norm clip spans both
// models (the paper clips the whole loss's gradient); the generator has its own AdamW state at the same
// rates and schedule.
//
// Checkpoints and the output directory: the discriminator is the model (ElectraForPreTraining, which
// `bertfit finetune --model` takes); the generator goes beside it in <dir>/generator (ElectraForMaskedLM, as
// HF's examples save it), with its optimizer state in checkpoints.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bertfit/tokenizer.h"
#include "model/bert_model.h"
#include "train/encoded_data.h"
#include "train/mlm_batch.h"
#include "train/mlm_masking.h"
#include "train/optimizer.h"
#include "train/training_loop.h"

namespace bertfit {

// The generator's shape from the discriminator's (the paper's generator_hidden_size): hidden size,
// intermediate size and heads times ratio (at least one head; the hidden size a multiple of the heads), the
// same layers, vocabulary, positions and embedding width (the shared embeddings).
ModelConfig electra_generator_config(const ModelConfig& discriminator, double ratio);

// The tensors the two models share: the names of the discriminator's electra.embeddings.* entries.
bool is_shared_embedding(const std::string& name);
// Copies the shared embeddings' values from -> to (same names and shapes; throws ShapeError otherwise).
void copy_shared_embeddings(const BertModel& from, BertModel& to);

// One token drawn from softmax(logits[0..V)) by inverse CDF at u in [0, 1) (double precision).
int32_t sample_from_logits(const float* logits, int64_t V, double u);

struct ElectraTaskOptions {
  double discriminator_loss_weight = 50;
  double max_grad_norm = 1.0;  // the global clip over both models (0: none)
  uint64_t seed = 42;          // sampling keys (masks use the masker's seed)
  int eval_batch_size = 64;
};

class ElectraTask : public TrainingTask {
 public:
  // discriminator: REPLACED_TOKEN_DETECTION head; generator: MASKED_LM, ELECTRA family, same embeddings.
  // Both are reserved here for max_B x max_T.
  ElectraTask(const std::vector<EncodedExample>& train, const std::vector<EncodedExample>& eval,
              const MlmMasker& masker, int32_t pad_id, int64_t max_B, int64_t max_T, BertModel& discriminator,
              BertModel& generator, const OptimizerOptions& generator_optimizer, const Tokenizer& tokenizer,
              const ElectraTaskOptions& options);

  const std::vector<EncodedExample>& train_examples() const override { return train_; }
  float begin_step(const std::vector<std::vector<int64_t>>& micro_batches, int64_t epoch) override;
  bool micro_batch(BertModel& model, size_t k, Batch* batch) override;
  bool has_eval_data() const override { return !eval_.empty(); }
  EvalMetrics evaluate(BertModel& model, const std::string& what) override;
  BestModelMetric best_metric() const override { return {"loss", false}; }
  std::string describe(const EvalMetrics& e) const override;
  bool evaluate_on_start() const override { return true; }
  std::string progress_name() const override { return "pretrain electra"; }
  void save_state(const std::string& dir, bool checkpoint) override;
  void load_state(const std::string& dir, bool checkpoint) override;

  // The step hook that joins the generator to the loop's step: shared-embedding gradients, the generator's
  // loss, the global clip (after_backward) and the generator's AdamW step (after_optimizer_step). Put it
  // first among the loop's step hooks.
  std::shared_ptr<StepHook> step_hook();

  // Runs the generator on a masked batch and writes the discriminator's input and labels into ids / labels
  // (n = B*T each, from the masked batch `masked` and the original blocks). Returns the generator's loss
  // (sum / normaliser) when training, and writes the number of replaced tokens.
  float corrupt(const Batch& masked, const std::vector<EncodedExample>& blocks,
                const std::vector<int64_t>& indices, uint64_t epoch, bool training, uint64_t dropout_step,
                float normalizer, int64_t* labelled, std::vector<int32_t>* ids, std::vector<int32_t>* labels,
                int64_t* replaced);

 private:
  friend class ElectraStepHookAccess;
  void after_backward(StepContext& ctx);
  void after_optimizer_step(StepContext& ctx);

  const std::vector<EncodedExample>& train_;
  const std::vector<EncodedExample>& eval_;
  const MlmMasker& masker_;
  int32_t pad_id_;
  int64_t max_B_, max_T_;
  BertModel& disc_;
  BertModel& gen_;
  Optimizer gen_opt_;
  const Tokenizer& tok_;
  ElectraTaskOptions options_;
  int64_t gen_rows_ = 0;  // the generator's labelled-row reservation
  // The step being taken.
  const std::vector<std::vector<int64_t>>* micro_ = nullptr;
  uint64_t epoch_ = 0;
  std::vector<int64_t> masked_, tokens_;
  float gen_normalizer_ = 1;
  double gen_loss_ = 0;
  bool synced_ = false;
  MlmBatchBuilder builder_;
  std::vector<int32_t> disc_ids_, disc_labels_;
};

}  // namespace bertfit

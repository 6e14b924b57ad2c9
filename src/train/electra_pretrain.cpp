#include "train/electra_pretrain.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "bertfit/error.h"
#include "core/rng.h"
#include "kernels/adamw.h"
#include "kernels/cross_entropy.h"
#include "train/batching.h"
#include "train/checkpoints.h"
#include "train/hf_model_dir.h"
#include "train/progress.h"

namespace fs = std::filesystem;

namespace bertfit {

namespace {

// The held-out set is masked and sampled with this epoch key at every evaluation (as evaluate_mlm's).
constexpr uint64_t kEvalEpochKey = 0xE7A1E7A1E7A1ull;
constexpr uint64_t kSampleSalt = 0x5A3D1E5E11EC7Aull;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A uniform in [0, 1) with 53 bits for position t of block `example` in `epoch`: a pure function of the
// run's seed and these, so sampling is the same whatever ran before (resume) and at every evaluation.
double sample_uniform(uint64_t seed, uint64_t epoch, uint64_t example, int64_t t) {
  const uint64_t key = dropout_key(seed ^ kSampleSalt, epoch, example);
  return static_cast<double>(splitmix64(key + static_cast<uint64_t>(t) * 0x9E3779B97F4A7C15ull) >> 11) *
         (1.0 / 9007199254740992.0);
}

class ElectraStepHook : public StepHook {
 public:
  explicit ElectraStepHook(ElectraTask& t) : task_(t) {}
  void after_backward(StepContext& ctx) override;
  void after_optimizer_step(StepContext& ctx) override;

 private:
  ElectraTask& task_;
};

}  // namespace

// Declared a friend in the header under this name (outside the anonymous namespace there is one class;
// this forwards to the task's private members).
class ElectraStepHookAccess {
 public:
  static void after_backward(ElectraTask& t, StepContext& c);
  static void after_optimizer_step(ElectraTask& t, StepContext& c);
};

ModelConfig electra_generator_config(const ModelConfig& d, double ratio) {
  if (!(ratio > 0 && ratio <= 1)) throw ConfigError("option --generator_size_ratio: must be in (0, 1]");
  ModelConfig g = d;
  g.family = ModelFamily::ELECTRA;
  g.embedding_size = d.embedding_width();
  int64_t heads = std::max<int64_t>(1, std::llround(static_cast<double>(d.num_attention_heads) * ratio));
  int64_t hidden = std::max<int64_t>(1, std::llround(static_cast<double>(d.hidden_size) * ratio));
  while (hidden % heads) --heads;  // the heads must divide the width
  g.num_attention_heads = heads;
  g.hidden_size = hidden;
  g.intermediate_size = std::max<int64_t>(1, std::llround(static_cast<double>(d.intermediate_size) * ratio));
  g.architectures.clear();
  g.extra_json.erase("bertfit");
  g.validate();
  return g;
}

bool is_shared_embedding(const std::string& name) {
  return name.rfind("electra.embeddings.", 0) == 0;
}

void copy_shared_embeddings(const BertModel& from, BertModel& to) {
  for (const ParamEntry& e : to.table().entries()) {
    if (!is_shared_embedding(e.name)) continue;
    const ParamEntry* f = from.table().find(e.name);
    if (!f || f->shape != e.shape)
      throw ShapeError("ELECTRA: the generator's " + e.name +
                       " does not match the discriminator's (the embeddings are shared)");
    std::copy(from.params() + f->offset, from.params() + f->offset + f->numel, to.params() + e.offset);
  }
}

int32_t sample_from_logits(const float* logits, int64_t V, double u) {
  double mx = logits[0];
  for (int64_t v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(logits[v]));
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(logits[v]) - mx);
  const double target = u * sum;
  double acc = 0;
  for (int64_t v = 0; v < V; ++v) {
    acc += std::exp(static_cast<double>(logits[v]) - mx);
    if (target < acc) return static_cast<int32_t>(v);
  }
  return static_cast<int32_t>(V - 1);  // u * sum at the very top (rounding)
}

ElectraTask::ElectraTask(const std::vector<EncodedExample>& train, const std::vector<EncodedExample>& eval,
                         const MlmMasker& masker, int32_t pad_id, int64_t max_B, int64_t max_T,
                         BertModel& discriminator, BertModel& generator,
                         const OptimizerOptions& generator_optimizer, const Tokenizer& tokenizer,
                         const ElectraTaskOptions& options)
    : train_(train),
      eval_(eval),
      masker_(masker),
      pad_id_(pad_id),
      max_B_(max_B),
      max_T_(max_T),
      disc_(discriminator),
      gen_(generator),
      gen_opt_(generator, generator_optimizer),
      tok_(tokenizer),
      options_(options) {
  if (disc_.head() != HeadKind::REPLACED_TOKEN_DETECTION || disc_.config().family != ModelFamily::ELECTRA)
    throw ConfigError("ELECTRA pre-training: the discriminator must be an ElectraForPreTraining model");
  if (gen_.head() != HeadKind::MASKED_LM || gen_.config().family != ModelFamily::ELECTRA)
    throw ConfigError("ELECTRA pre-training: the generator must be an ElectraForMaskedLM model");
  if (gen_.config().vocab_size != disc_.config().vocab_size)
    throw ConfigError("ELECTRA pre-training: the generator's vocab_size " +
                      std::to_string(gen_.config().vocab_size) + " differs from the discriminator's " +
                      std::to_string(disc_.config().vocab_size));
  copy_shared_embeddings(disc_, gen_);  // checks names and shapes once
  if (!(options_.discriminator_loss_weight > 0))
    throw ConfigError("option --discriminator_loss_weight: must be > 0");
  disc_.reserve(max_B_, max_T_);
  gen_rows_ = initial_rows(max_B_, max_T_, masker_.options().mlm_probability);
  gen_.reserve(max_B_, max_T_, gen_rows_);
}

float ElectraTask::begin_step(const std::vector<std::vector<int64_t>>& micro_batches, int64_t epoch) {
  micro_ = &micro_batches;
  epoch_ = static_cast<uint64_t>(epoch);
  masked_.assign(micro_batches.size(), 0);
  tokens_.assign(micro_batches.size(), 0);
  int64_t masked = 0, tokens = 0;
  for (size_t k = 0; k < micro_batches.size(); ++k) {
    builder_.build(train_, micro_batches[k], masker_, pad_id_, epoch_, &masked_[k]);
    for (int64_t i : micro_batches[k]) tokens_[k] += train_[i].length();
    masked += masked_[k];
    tokens += tokens_[k];
  }
  gen_normalizer_ = static_cast<float>(std::max<int64_t>(masked, 1));
  gen_loss_ = 0;
  gen_.zero_grad();
  // The discriminator's normaliser: its loss is w * (sum over the step's tokens) / tokens.
  return static_cast<float>(static_cast<double>(std::max<int64_t>(tokens, 1)) /
                            options_.discriminator_loss_weight);
}

float ElectraTask::corrupt(const Batch& masked, const std::vector<EncodedExample>& blocks,
                           const std::vector<int64_t>& indices, uint64_t epoch, bool training,
                           uint64_t dropout_step, float normalizer, int64_t* labelled,
                           std::vector<int32_t>* ids, std::vector<int32_t>* labels, int64_t* replaced) {
  const int64_t B = masked.B, T = masked.T, N = B * T;
  ids->assign(static_cast<size_t>(N), pad_id_);
  labels->assign(static_cast<size_t>(N), kIgnoreIndex);
  for (int64_t b = 0; b < B; ++b) {
    const auto& orig = blocks[indices[b]].seqs[0].ids;
    std::copy(orig.begin(), orig.end(), ids->begin() + b * T);
    std::fill(labels->begin() + b * T, labels->begin() + b * T + static_cast<int64_t>(orig.size()), 0);
  }
  *labelled = count_labelled(masked.labels, N);
  *replaced = 0;
  if (*labelled == 0) return 0.0f;
  const int64_t res_B = training ? max_B_ : options_.eval_batch_size;
  ensure_rows(gen_, res_B, max_T_, &gen_rows_, *labelled);
  const float loss = gen_.forward(masked, training, dropout_step, normalizer);
  const int64_t V = gen_.config().vocab_size;
  const float* logits = gen_.logits();
  const int32_t* rows = gen_.labelled_rows();
  for (int64_t m = 0; m < gen_.logits_rows(); ++m) {
    const int64_t r = rows[m], b = r / T, t = r % T;
    const double u = sample_uniform(options_.seed, epoch, static_cast<uint64_t>(indices[b]), t);
    const int32_t s = sample_from_logits(logits + m * V, V, u);
    const int32_t orig = blocks[indices[b]].seqs[0].ids[t];
    (*ids)[r] = s;
    (*labels)[r] = s != orig;
    *replaced += s != orig;
  }
  if (training) gen_.backward();  // after the sampling (which reads the logits); nothing flows through it
  return loss;
}

bool ElectraTask::micro_batch(BertModel& model, size_t k, Batch* batch) {
  if (&model != &disc_) throw Error("ELECTRA pre-training: the loop's model must be the discriminator");
  if (tokens_[k] == 0) return false;
  if (!synced_) {
    copy_shared_embeddings(disc_, gen_);
    synced_ = true;
  }
  const auto& idx = (*micro_)[k];
  int64_t n = 0, labelled = 0, replaced = 0;
  const Batch masked = builder_.build(train_, idx, masker_, pad_id_, epoch_, &n);
  // The generator's dropout key: a pure function of (epoch, the micro-batch's first block, k), as the masks.
  const uint64_t step = splitmix64(epoch_ * 0x100000001B3ull + static_cast<uint64_t>(idx.front()) * 64 + k);
  gen_loss_ += corrupt(masked, train_, idx, epoch_, /*training=*/true, step, gen_normalizer_, &labelled,
                       &disc_ids_, &disc_labels_, &replaced);
  *batch = masked;
  batch->input_ids = disc_ids_.data();
  batch->labels = disc_labels_.data();
  return true;
}

void ElectraTask::after_backward(StepContext& ctx) {
  // The generator's gradient of the shared embeddings joins the discriminator's (the optimizer updates the
  // discriminator's copy); the generator's own copy gets none.
  for (const ParamEntry& e : gen_.table().entries()) {
    if (!is_shared_embedding(e.name)) continue;
    float* g = gen_.grad(e.name);
    float* d = disc_.grad(e.name);
    for (size_t i = 0; i < e.numel; ++i) d[i] += g[i];
    std::fill(g, g + e.numel, 0.0f);
  }
  ctx.loss += gen_loss_;
  // One clip over both models' gradients, as torch.nn.utils.clip_grad_norm_ over all parameters (the loop's
  // own clip of the discriminator then finds its norm within the bound).
  if (options_.max_grad_norm > 0) {
    const double a = grad_norm(disc_.grads(), disc_.buffer_floats());
    const double b = grad_norm(gen_.grads(), gen_.buffer_floats());
    const double norm = std::sqrt(a * a + b * b);
    if (norm > options_.max_grad_norm) {
      const float coef = static_cast<float>(options_.max_grad_norm / (norm + 1e-6));
      for (BertModel* m : {&disc_, &gen_}) {
        float* g = m->grads();
        for (size_t i = 0; i < m->buffer_floats(); ++i) g[i] *= coef;
      }
    }
  }
}

void ElectraTask::after_optimizer_step(StepContext& ctx) {
  gen_opt_.step(gen_, ctx.lr_multiplier);
  synced_ = false;  // the discriminator's embeddings moved
}

void ElectraStepHook::after_backward(StepContext& ctx) {
  ElectraStepHookAccess::after_backward(task_, ctx);
}
void ElectraStepHook::after_optimizer_step(StepContext& ctx) {
  ElectraStepHookAccess::after_optimizer_step(task_, ctx);
}
void ElectraStepHookAccess::after_backward(ElectraTask& t, StepContext& c) {
  t.after_backward(c);
}
void ElectraStepHookAccess::after_optimizer_step(ElectraTask& t, StepContext& c) {
  t.after_optimizer_step(c);
}

std::shared_ptr<StepHook> ElectraTask::step_hook() {
  return std::make_shared<ElectraStepHook>(*this);
}

EvalMetrics ElectraTask::evaluate(BertModel& model, const std::string& what) {
  if (&model != &disc_) throw Error("ELECTRA pre-training: the loop's model must be the discriminator");
  copy_shared_embeddings(disc_, gen_);
  const int64_t eB = options_.eval_batch_size;
  const auto plan = plan_eval_batches(eval_, eB);
  Progress progress(what, static_cast<int64_t>(plan.size()),
                    std::max<int64_t>(25, static_cast<int64_t>(plan.size()) / 4));
  disc_.reserve(eB, max_T_);
  gen_rows_ = initial_rows(eB, max_T_, masker_.options().mlm_probability);
  gen_.reserve(eB, max_T_, gen_rows_);
  MlmBatchBuilder builder;
  std::vector<int32_t> ids, labels;
  double mlm_sum = 0, disc_sum = 0;
  int64_t masked = 0, tokens = 0, correct = 0, replaced_total = 0;
  for (size_t bi = 0; bi < plan.size(); ++bi) {
    int64_t n = 0, labelled = 0, replaced = 0;
    const Batch mb = builder.build(eval_, plan[bi], masker_, pad_id_, kEvalEpochKey, &n);
    mlm_sum += corrupt(mb, eval_, plan[bi], kEvalEpochKey, /*training=*/false, 0, 1.0f, &labelled, &ids,
                       &labels, &replaced);
    Batch db = mb;
    db.input_ids = ids.data();
    db.labels = labels.data();
    disc_sum += disc_.forward(db, /*training=*/false, 0, 1.0f);
    for (int64_t r = 0; r < db.B * db.T; ++r) {
      if (!db.attention_mask[r] || labels[r] == kIgnoreIndex) continue;
      ++tokens;
      correct += (disc_.logits()[r] > 0) == (labels[r] == 1);
    }
    masked += labelled;
    replaced_total += replaced;
    progress.update(static_cast<int64_t>(bi + 1));
  }
  disc_.reserve(max_B_, max_T_);  // back to the training shape
  gen_rows_ = initial_rows(max_B_, max_T_, masker_.options().mlm_probability);
  gen_.reserve(max_B_, max_T_, gen_rows_);
  const double mlm = masked ? mlm_sum / static_cast<double>(masked) : 0.0;
  const double disc = tokens ? disc_sum / static_cast<double>(tokens) : 0.0;
  EvalMetrics m;
  m.values = {{"loss", mlm + options_.discriminator_loss_weight * disc},
              {"generator_loss", mlm},
              {"perplexity", std::exp(mlm)},
              {"masked_tokens", static_cast<double>(masked)},
              {"discriminator_loss", disc},
              {"discriminator_accuracy", tokens ? static_cast<double>(correct) / tokens : 0.0},
              {"replaced_share", tokens ? static_cast<double>(replaced_total) / tokens : 0.0}};
  m.runtime = progress.elapsed_seconds();
  m.samples = static_cast<int64_t>(eval_.size());
  return m;
}

std::string ElectraTask::describe(const EvalMetrics& e) const {
  return "loss " + fmt("%.4f", e.value("loss")) + " (generator MLM " +
         fmt("%.4f", e.value("generator_loss")) + ", discriminator " +
         fmt("%.4f", e.value("discriminator_loss")) + ", accuracy " +
         fmt("%.4f", e.value("discriminator_accuracy")) + ", replaced " +
         fmt("%.3f", e.value("replaced_share")) + ")";
}

void ElectraTask::save_state(const std::string& dir, bool checkpoint) {
  copy_shared_embeddings(disc_, gen_);  // the generator's copy is the discriminator's as of now
  const std::string g = dir + "/generator";
  save_pretrained(gen_, g, &tok_);
  if (checkpoint) gen_opt_.save(g + "/optimizer.safetensors");
}

void ElectraTask::load_state(const std::string& dir, bool checkpoint) {
  const std::string g = dir + "/generator";
  if (!fs::is_directory(g))
    throw FormatError(dir + ": no generator/ directory (an ELECTRA checkpoint keeps its generator there)");
  load_weights_into(gen_, g);
  if (checkpoint) load_optimizer_state(gen_opt_, g + "/optimizer.safetensors");
  synced_ = false;
}

}  // namespace bertfit

// BertModel: parameter table, initialisation, activation arena, and the forward/backward drivers.
// The encoder layers are in encoder.cpp, the masked-LM head in mlm_head.cpp, the classification heads in
// classification_head.cpp.
#include "model/bert_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

#include "bertfit/error.h"
#include "core/rng.h"
#include "core/threading.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/rows.h"

namespace bertfit {

BertModel::BertModel(const ModelConfig& config, HeadKind head, HeadOptions head_options)
    : config_(config),
      head_(head),
      head_options_(head_options),
      prefix_(config.family == ModelFamily::ROBERTA   ? "roberta"
              : config.family == ModelFamily::ELECTRA ? "electra"
                                                      : "bert") {
  config_.validate();
  if (config_.family != ModelFamily::BERT && head_options_.features == FeatureKind::POOLER)
    head_options_.features = FeatureKind::CLS;
  const int64_t C = config_.hidden_size, L = config_.num_hidden_layers;
  feature_layers_ = feature_layers(head_options_.features, head_options_.layer, L);
  feature_dim_ = bertfit::feature_dim(head_options_.features, C, L);
  head_in_dim_ = head_options_.features == FeatureKind::POOLER ? C : feature_dim_;
  build_table();
  resolve_offsets();
  params_.resize(table_.total_floats());
}

void BertModel::build_table() {
  const int64_t C = config_.hidden_size, I = config_.intermediate_size, V = config_.vocab_size;
  const int64_t L = config_.num_hidden_layers, E = config_.embedding_width();
  const std::string e = prefix_ + ".embeddings.";
  table_.add(e + "word_embeddings.weight", {V, E}, 0);
  table_.add(e + "position_embeddings.weight", {config_.max_position_embeddings, E}, 0);
  table_.add(e + "token_type_embeddings.weight", {config_.type_vocab_size, E}, 0);
  table_.add(e + "LayerNorm.weight", {E}, 0);
  table_.add(e + "LayerNorm.bias", {E}, 0);
  if (config_.projects_embeddings()) {
    table_.add(prefix_ + ".embeddings_project.weight", {C, E}, 0);
    table_.add(prefix_ + ".embeddings_project.bias", {C}, 0);
  }
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = prefix_ + ".encoder.layer." + std::to_string(l) + ".";
    const int d = static_cast<int>(l + 1);
    // Q, K and V weights back to back ([3C, C]), then their biases ([3C]): one GEMM computes all three.
    table_.add(p + "attention.self.query.weight", {C, C}, d);
    table_.add_packed(p + "attention.self.key.weight", {C, C}, d);
    table_.add_packed(p + "attention.self.value.weight", {C, C}, d);
    table_.add(p + "attention.self.query.bias", {C}, d);
    table_.add_packed(p + "attention.self.key.bias", {C}, d);
    table_.add_packed(p + "attention.self.value.bias", {C}, d);
    table_.add(p + "attention.output.dense.weight", {C, C}, d);
    table_.add(p + "attention.output.dense.bias", {C}, d);
    table_.add(p + "attention.output.LayerNorm.weight", {C}, d);
    table_.add(p + "attention.output.LayerNorm.bias", {C}, d);
    table_.add(p + "intermediate.dense.weight", {I, C}, d);
    table_.add(p + "intermediate.dense.bias", {I}, d);
    table_.add(p + "output.dense.weight", {C, I}, d);
    table_.add(p + "output.dense.bias", {C}, d);
    table_.add(p + "output.LayerNorm.weight", {C}, d);
    table_.add(p + "output.LayerNorm.bias", {C}, d);
  }
  const int h = static_cast<int>(L + 1);
  const int64_t NL = config_.num_labels();
  if (head_ == HeadKind::SEQUENCE_CLASSIFICATION) {
    // With the default features these are exactly HF's heads; other features widen the classifier's input
    // (HF cannot load such a head into its stock classes, only bertfit can).
    const int64_t Fin = head_in_dim_;
    if (config_.family == ModelFamily::BERT && head_options_.features == FeatureKind::POOLER) {
      table_.add("bert.pooler.dense.weight", {C, C}, h);
      table_.add("bert.pooler.dense.bias", {C}, h);
    }
    // The model's own head, then the extra heads of multi-task fine-tuning under their prefixes.
    auto add_head = [&](const std::string& p, int64_t labels) {
      if (config_.family == ModelFamily::BERT) {
        table_.add(p + "classifier.weight", {labels, Fin}, h);
        table_.add(p + "classifier.bias", {labels}, h);
      } else {
        table_.add(p + "classifier.dense.weight", {C, Fin}, h);
        table_.add(p + "classifier.dense.bias", {C}, h);
        table_.add(p + "classifier.out_proj.weight", {labels, C}, h);
        table_.add(p + "classifier.out_proj.bias", {labels}, h);
      }
      if (head_options_.chunk_pooling == ChunkPooling::ATTENTION)
        table_.add(p + "classifier.chunk_attention.weight", {Fin}, h);
    };
    add_head("", NL);
    for (const ExtraHead& x : head_options_.extra_heads) {
      if (x.prefix.empty() || x.prefix.rfind("classifier.", 0) == 0 || x.prefix.rfind(prefix_ + ".", 0) == 0)
        throw ConfigError("extra classification head: prefix \"" + x.prefix +
                          "\" would collide with the model's own parameter names");
      add_head(x.prefix, x.id2label.empty() ? 2 : static_cast<int64_t>(x.id2label.size()));
    }
  } else if (head_ == HeadKind::MASKED_LM) {
    // The decoder weight is the word-embedding matrix (tied, not stored); the output bias is the head's own.
    // ELECTRA's generator: dense hidden -> embedding_size, GELU, LayerNorm, decoder from embedding_size.
    if (config_.family == ModelFamily::ELECTRA) {
      table_.add("generator_predictions.dense.weight", {E, C}, h);
      table_.add("generator_predictions.dense.bias", {E}, h);
      table_.add("generator_predictions.LayerNorm.weight", {E}, h);
      table_.add("generator_predictions.LayerNorm.bias", {E}, h);
      table_.add("generator_lm_head.bias", {V}, h);
    } else if (config_.family == ModelFamily::BERT) {
      table_.add("cls.predictions.transform.dense.weight", {C, C}, h);
      table_.add("cls.predictions.transform.dense.bias", {C}, h);
      table_.add("cls.predictions.transform.LayerNorm.weight", {C}, h);
      table_.add("cls.predictions.transform.LayerNorm.bias", {C}, h);
      table_.add("cls.predictions.bias", {V}, h);
    } else {
      table_.add("lm_head.dense.weight", {C, C}, h);
      table_.add("lm_head.dense.bias", {C}, h);
      table_.add("lm_head.layer_norm.weight", {C}, h);
      table_.add("lm_head.layer_norm.bias", {C}, h);
      table_.add("lm_head.bias", {V}, h);
    }
  } else if (head_ == HeadKind::REPLACED_TOKEN_DETECTION) {
    add_discriminator_params(h);
  }
}

void BertModel::resolve_offsets() {
  auto off = [&](const std::string& n) { return table_.at(n).offset; };
  const std::string e = prefix_ + ".embeddings.";
  emb_off_ = {off(e + "word_embeddings.weight"), off(e + "position_embeddings.weight"),
              off(e + "token_type_embeddings.weight"), off(e + "LayerNorm.weight"),
              off(e + "LayerNorm.bias")};
  if (config_.projects_embeddings()) {
    emb_off_.proj_w = off(prefix_ + ".embeddings_project.weight");
    emb_off_.proj_b = off(prefix_ + ".embeddings_project.bias");
  }
  layer_off_.clear();
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const std::string p = prefix_ + ".encoder.layer." + std::to_string(l) + ".";
    layer_off_.push_back({off(p + "attention.self.query.weight"), off(p + "attention.self.query.bias"),
                          off(p + "attention.output.dense.weight"), off(p + "attention.output.dense.bias"),
                          off(p + "attention.output.LayerNorm.weight"),
                          off(p + "attention.output.LayerNorm.bias"), off(p + "intermediate.dense.weight"),
                          off(p + "intermediate.dense.bias"), off(p + "output.dense.weight"),
                          off(p + "output.dense.bias"), off(p + "output.LayerNorm.weight"),
                          off(p + "output.LayerNorm.bias")});
  }
  const bool bert = config_.family == ModelFamily::BERT;
  if (head_ == HeadKind::SEQUENCE_CLASSIFICATION) {
    heads_.clear();
    auto resolve_head = [&](const std::string& p, std::vector<std::string> id2label, ProblemType problem) {
      HeadOffsets o;
      if (!bert || head_options_.features == FeatureKind::POOLER) {
        o.dense_w = off(bert ? "bert.pooler.dense.weight" : p + "classifier.dense.weight");
        o.dense_b = off(bert ? "bert.pooler.dense.bias" : p + "classifier.dense.bias");
      }
      o.out_w = off(p + (bert ? "classifier.weight" : "classifier.out_proj.weight"));
      o.out_b = off(p + (bert ? "classifier.bias" : "classifier.out_proj.bias"));
      if (head_options_.chunk_pooling == ChunkPooling::ATTENTION)
        o.chunk_attention = off(p + "classifier.chunk_attention.weight");
      heads_.push_back({p, std::move(id2label), o, problem});
    };
    resolve_head("", config_.id2label, config_.problem_type);
    for (const ExtraHead& x : head_options_.extra_heads) resolve_head(x.prefix, x.id2label, x.problem_type);
    head_off_ = heads_[0].offsets;
  } else if (head_ == HeadKind::MASKED_LM && config_.family == ModelFamily::ELECTRA) {
    head_off_.dense_w = off("generator_predictions.dense.weight");
    head_off_.dense_b = off("generator_predictions.dense.bias");
    head_off_.ln_w = off("generator_predictions.LayerNorm.weight");
    head_off_.ln_b = off("generator_predictions.LayerNorm.bias");
    head_off_.bias = off("generator_lm_head.bias");
  } else if (head_ == HeadKind::MASKED_LM) {
    head_off_.dense_w = off(bert ? "cls.predictions.transform.dense.weight" : "lm_head.dense.weight");
    head_off_.dense_b = off(bert ? "cls.predictions.transform.dense.bias" : "lm_head.dense.bias");
    head_off_.ln_w = off(bert ? "cls.predictions.transform.LayerNorm.weight" : "lm_head.layer_norm.weight");
    head_off_.ln_b = off(bert ? "cls.predictions.transform.LayerNorm.bias" : "lm_head.layer_norm.bias");
    head_off_.bias = off(bert ? "cls.predictions.bias" : "lm_head.bias");
  } else if (head_ == HeadKind::REPLACED_TOKEN_DETECTION) {
    head_off_.dense_w = off("discriminator_predictions.dense.weight");
    head_off_.dense_b = off("discriminator_predictions.dense.bias");
    head_off_.out_w = off("discriminator_predictions.dense_prediction.weight");
    head_off_.out_b = off("discriminator_predictions.dense_prediction.bias");
  }
}

void BertModel::init_weights(uint64_t seed, const std::vector<std::string>* only) {
  unpack_weights();
  Rng rng(seed);
  const std::string word = prefix_ + ".embeddings.word_embeddings.weight";
  const std::string position = prefix_ + ".embeddings.position_embeddings.weight";
  for (const ParamEntry& e : table_.entries()) {
    if (only && std::find(only->begin(), only->end(), e.name) == only->end()) continue;
    float* p = params_.data() + e.offset;
    const bool is_norm =
        e.name.find("LayerNorm") != std::string::npos || e.name.find("layer_norm") != std::string::npos;
    if (is_norm && e.name.size() > 6 && e.name.compare(e.name.size() - 6, 6, "weight") == 0) {
      std::fill(p, p + e.numel, 1.0f);
    } else if (e.no_decay) {  // biases and LayerNorm biases
      std::fill(p, p + e.numel, 0.0f);
    } else {
      for (size_t i = 0; i < e.numel; ++i)
        p[i] = static_cast<float>(rng.normal() * config_.initializer_range);
    }
    // nn.Embedding(padding_idx=pad_token_id) rows are zeroed by _init_weights (word embeddings; RoBERTa's
    // position embeddings also use padding_idx).
    const int64_t C = config_.embedding_width();
    if (e.name == word || (e.name == position && config_.family == ModelFamily::ROBERTA))
      std::fill(p + config_.pad_token_id * C, p + (config_.pad_token_id + 1) * C, 0.0f);
  }
}

void BertModel::plan_arena(int64_t B, int64_t T, int64_t M, ArenaUse use, bool allocate, size_t* total) {
  const int64_t C = config_.hidden_size, I = config_.intermediate_size, L = config_.num_hidden_layers;
  const int64_t V = config_.vocab_size, E = config_.embedding_width();
  int64_t NL = config_.num_labels();  // the most labels of any head (multi-task: select_head)
  for (const ExtraHead& x : head_options_.extra_heads)
    NL = std::max<int64_t>(NL, x.id2label.empty() ? 2 : static_cast<int64_t>(x.id2label.size()));
  const int64_t N = B * T;
  size_t off = 0;
  auto take = [&](int64_t n) -> float* {
    float* p = allocate ? arena_.data() + off : nullptr;
    off += (static_cast<size_t>(n) + 15) / 16 * 16;
    return p;
  };
  // Hidden states: the embedding output (layer 0's backward reads it), the last layer (the heads read it),
  // the classifier's feature layers, or all with output_hidden_states; the others rotate through two
  // buffers (layer l reads hidden[l] and writes hidden[l+1]: never the same buffer).
  hidden_kept_.assign(L + 1, output_hidden_states);
  hidden_kept_[0] = hidden_kept_[L] = true;
  if (head_ == HeadKind::SEQUENCE_CLASSIFICATION)
    for (int64_t l : feature_layers_) hidden_kept_[l] = true;
  hidden_.assign(L + 1, nullptr);
  hidden_const_.reserve(L + 1);
  float* rotating[2] = {take(N * C), take(N * C)};
  for (int64_t l = 0; l <= L; ++l) hidden_[l] = hidden_kept_[l] ? take(N * C) : rotating[l % 2];
  emb_sum_ = take(N * E);
  emb_mean_ = take(N);
  emb_rstd_ = take(N);
  const bool training = use == ArenaUse::TRAINING;
  emb_out_ = config_.projects_embeddings() ? take(N * E) : nullptr;
  emb_grad_ = config_.projects_embeddings() && training ? take(N * E) : nullptr;
  layers_.assign(L, LayerActs{});
  for (auto& a : layers_) {
    if (!training && &a != &layers_[0]) {  // inference: layer l's buffers are dead once layer l+1 starts
      a = layers_[0];
      continue;
    }
    a.qkv = take(N * 3 * C);
    a.res1 = take(N * C);
    a.mean1 = take(N);
    a.rstd1 = take(N);
    a.inter_pre = training ? take(N * I) : nullptr;  // the GELU's input, kept for the backward only
    a.res2 = take(N * C);
    a.mean2 = take(N);
    a.rstd2 = take(N);
  }
  work_inter_ = take(N * std::max(I, 3 * C));
  work_c_ = take(N * C);
  scratch_c_ = take(N * C);
  attn_scratch_ = take(attention_scratch_floats(T, num_threads()));
  grad_a_ = training ? take(N * C) : nullptr;
  grad_b_ = training ? take(N * C) : nullptr;
  grad_c_ = training ? take(N * C) : nullptr;
  cls_x_ = take(B * C);
  cls_ctx_ = take(B * C);
  cls_out_ = take(B * C);
  cls_g_ = training ? take(B * C) : nullptr;
  cls_g2_ = training ? take(B * C) : nullptr;
  // Head rows: the sequences (classification), the labelled rows (masked LM) or every token (replaced-token
  // detection, M = N); the masked-LM transform's width is the embeddings' (ELECTRA's generator).
  const int64_t rows = std::max(B, M), HC = std::max(C, E);
  head_in_ = take(rows * C);
  head_pre_ = take(rows * HC);
  head_act_ = take(rows * HC);
  head_drop_ = take(rows * HC);
  head_mean_ = take(rows);
  head_rstd_ = take(rows);
  head_grad_ = take(rows * HC);
  head_grad2_ = take(rows * HC);
  if (head_ == HeadKind::SEQUENCE_CLASSIFICATION) {
    const int64_t F = feature_dim_, Fin = head_in_dim_;
    cls_.feat = take(B * F);
    cls_.feat_grad = take(B * F);
    cls_.pooled = take(B * C);
    cls_.pooled_grad = take(B * C);
    cls_.doc = take(B * Fin);
    cls_.doc_grad = take(B * Fin);
    cls_.drop1 = take(B * Fin);
    cls_.act = take(B * C);
    cls_.drop2 = take(B * C);
    cls_.g1 = take(B * Fin);
    cls_.g2 = take(B * C);
    cls_.chunk_w = take(B);
  }
  const int64_t nlogits = head_ == HeadKind::MASKED_LM                  ? M * V
                          : head_ == HeadKind::REPLACED_TOKEN_DETECTION ? M
                                                                        : B * NL;
  logits_ = take(nlogits);
  dlogits_ = take(nlogits);
  row_loss_ = take(rows);
  *total = off;
}

uint64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t value = 0;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return value * 1024;  // the file counts kB (KiB)
  }
  return 0;
}

void check_memory_fits(uint64_t need_bytes, uint64_t available_bytes, const std::string& what) {
  if (available_bytes == 0 || need_bytes <= available_bytes) return;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  char buf[160];
  std::snprintf(buf, sizeof buf, " needs %.2f GiB of memory and %.2f GiB are available: it does not fit",
                static_cast<double>(need_bytes) / gib, static_cast<double>(available_bytes) / gib);
  throw ConfigError(what + buf +
                    " (lower the batch size, --per_device_train_batch_size / --per_device_eval_batch_size or "
                    "--batch_size, or --max_seq_length)");
}

void BertModel::reserve(int64_t max_B, int64_t max_T, int64_t max_labelled_rows, ArenaUse use) {
  if (max_B <= 0 || max_T <= 0) throw ShapeError("reserve: batch size and sequence length must be positive");
  if (max_T > config_.max_position_embeddings -
                  (config_.family == ModelFamily::ROBERTA ? config_.pad_token_id + 1 : 0))
    throw ShapeError("reserve: sequence length " + std::to_string(max_T) +
                     " exceeds what max_position_embeddings (" +
                     std::to_string(config_.max_position_embeddings) + ") allows");
  const int64_t M = head_ == HeadKind::MASKED_LM ? (max_labelled_rows < 0 ? max_B * max_T : max_labelled_rows)
                    : head_ == HeadKind::REPLACED_TOKEN_DETECTION ? max_B * max_T
                                                                  : 0;
  size_t total = 0;
  plan_arena(max_B, max_T, M, use, false, &total);
  const int64_t N = max_B * max_T;
  const size_t n_int = static_cast<size_t>(N * 5 + std::max<int64_t>(N, max_B) + 4 * max_B);
  const size_t n_cls_int = head_ == HeadKind::SEQUENCE_CLASSIFICATION
                               ? static_cast<size_t>(max_B * (config_.hidden_size + head_in_dim_))
                               : 0;
  {
    // The buffers being replaced are freed first, so what they hold counts as available.
    const uint64_t need =
        total * sizeof(float) + (n_int + n_cls_int) * sizeof(int32_t) + static_cast<uint64_t>(N + max_B);
    const uint64_t held = arena_.size() * sizeof(float) +
                          (int_arena_.size() + cls_int_arena_.size()) * sizeof(int32_t) + mask_arena_.size() +
                          chunk_mask_arena_.size();
    const uint64_t avail = available_memory_bytes();
    const std::string what = "a batch of " + std::to_string(max_B) + " sequences x " + std::to_string(max_T) +
                             " tokens (" + (use == ArenaUse::TRAINING ? "training" : "inference") +
                             " activations)";
    check_memory_fits(need, avail ? avail + held : 0, what);
    try {
      arena_.resize(total);
      int_arena_.resize(n_int);
    } catch (const std::bad_alloc&) {  // MemAvailable unknown, or other processes took it meanwhile
      arena_.resize(0);
      int_arena_.resize(0);
      char buf[96];
      std::snprintf(buf, sizeof buf, " needs %.2f GiB of memory and the allocation failed: it does not fit",
                    static_cast<double>(need) / (1024.0 * 1024.0 * 1024.0));
      throw ConfigError(what + buf + " (lower the batch size or --max_seq_length)");
    }
  }
  plan_arena(max_B, max_T, M, use, true, &total);
  arena_use_ = use;
  pos_ids_ = int_arena_.data();
  type_ids_ = pos_ids_ + N;
  ids_ = type_ids_ + N;
  mlm_index_ = ids_ + N;
  labels_ = mlm_index_ + N;
  real_rows_ = labels_ + std::max<int64_t>(N, max_B);
  seq_offset_ = real_rows_ + N;
  seq_len_ = seq_offset_ + max_B;
  cls_rows_ = seq_len_ + max_B;
  cls_pos_ = cls_rows_ + max_B;
  mask_arena_.resize(static_cast<size_t>(N));
  mask_ = mask_arena_.data();
  chunk_mask_arena_.resize(static_cast<size_t>(max_B));
  if (head_ == HeadKind::SEQUENCE_CLASSIFICATION) {
    cls_int_arena_.resize(n_cls_int);
    cls_.argmax = cls_int_arena_.data();
    cls_.chunk_argmax = cls_.argmax + max_B * config_.hidden_size;
  }
  max_B_ = max_B;
  max_T_ = max_T;
  if (!packing_wanted()) unpack_weights();  // forward() packs them when it is
  max_M_ = M;
}

void BertModel::check_batch(const Batch& b) const {
  if (arena_.size() == 0) throw ShapeError("forward: call reserve(max_batch, max_seq) first");
  if (b.B <= 0 || b.T <= 0 || b.B > max_B_ || b.T > max_T_)
    throw ShapeError("forward: batch shape " + shape_str({b.B, b.T}) + " outside the reserved " +
                     shape_str({max_B_, max_T_}));
  if (!b.input_ids || !b.attention_mask)
    throw ShapeError("forward: input_ids and attention_mask are required");
  if (output_hidden_states &&
      std::find(hidden_kept_.begin(), hidden_kept_.end(), false) != hidden_kept_.end())
    throw Error("forward: output_hidden_states was set after reserve(); call reserve() again");
}

uint64_t BertModel::site_key(uint64_t site) const {
  return dropout_key(dropout_seed, step_, site);
}

const float* BertModel::hidden_state(int64_t l) const {
  if (l < 0 || l > config_.num_hidden_layers)
    throw ShapeError("hidden_state: layer " + std::to_string(l) + " outside [0, " +
                     std::to_string(config_.num_hidden_layers) + "]");
  if (!hidden_kept_.empty() && !hidden_kept_[l])
    throw Error("hidden_state: layer " + std::to_string(l) +
                " was not kept (set output_hidden_states before reserve() to keep every layer)");
  if (N_ > 0 && l > top_)
    throw Error("hidden_state: layer " + std::to_string(l) +
                " was not computed (the classifier reads no layer above " + std::to_string(top_) +
                ": skip_layers_above_features)");
  return hidden_[l];
}

float BertModel::forward(const Batch& batch, bool training, uint64_t step, float loss_normalizer) {
  check_batch(batch);
  B_ = batch.B;
  T_ = batch.T;
  N_ = B_ * T_;
  training_ = training;
  if (packing_wanted())
    pack_weights_in_place();
  else
    unpack_weights();
  step_ = step;
  has_labels_ = batch.labels != nullptr;
  targets_ = batch.targets;
  // Repack the batch into the arena with the current shape's strides (rows of length T_).
  std::copy(batch.input_ids, batch.input_ids + N_, ids_);
  std::copy(batch.attention_mask, batch.attention_mask + N_, mask_);
  if (batch.token_type_ids)
    std::copy(batch.token_type_ids, batch.token_type_ids + N_, type_ids_);
  else
    std::fill(type_ids_, type_ids_ + N_, 0);
  check_ids("input_ids", ids_, N_, config_.vocab_size);
  check_ids("token_type_ids", type_ids_, N_, config_.type_vocab_size);
  chunks_ = batch.chunks;
  if (chunks_ < 1 || B_ % chunks_ != 0)
    throw ShapeError("forward: batch of " + std::to_string(B_) +
                     " sequences is not a whole number of documents of " + std::to_string(chunks_) +
                     " chunks");
  if (chunks_ > 1 && head_ != HeadKind::SEQUENCE_CLASSIFICATION)
    throw ShapeError("forward: chunked documents need a sequence-classification head");
  if (chunks_ > 1 && head_options_.chunk_pooling == ChunkPooling::NONE)
    throw ShapeError("forward: chunked documents need a chunk pooling (mean, max or attention)");
  docs_ = B_ / chunks_;
  if (batch.chunk_mask)
    std::copy(batch.chunk_mask, batch.chunk_mask + B_, chunk_mask_arena_.data());
  else
    std::fill(chunk_mask_arena_.data(), chunk_mask_arena_.data() + B_, 1);
  chunk_mask_ = chunk_mask_arena_.data();

  embeddings_forward();
  rows_ = N_;
  prefix_masks_ = true;
  if (!training && padding_free_inference) {
    int64_t n = 0;
    for (int64_t b = 0; b < B_; ++b) {
      seq_offset_[b] = static_cast<int32_t>(n);
      for (int64_t t = 0; t < T_; ++t) {
        if (!mask_[b * T_ + t]) continue;
        if (t != n - seq_offset_[b]) prefix_masks_ = false;  // a real token after padding
        real_rows_[n++] = static_cast<int32_t>(b * T_ + t);
      }
      seq_len_[b] = static_cast<int32_t>(n - seq_offset_[b]);
    }
    if (n > 0 && n < N_) {  // some padding, and something to compute
      rows_ = n;
      gather_rows(hidden_[0], hidden_[0], real_rows_, rows_, config_.hidden_size);
    }
  }
  top_ = config_.num_hidden_layers;
  if (skip_layers_above_features && head_ == HeadKind::SEQUENCE_CLASSIFICATION && !output_hidden_states)
    top_ = *std::max_element(feature_layers_.begin(), feature_layers_.end());
  cls_rows_only_ = use_cls_rows_layer();
  cls_query_only_ =
      cls_rows_only_ && last_layer_cls_query_only && int8_layers_.empty() && (rows_ == N_ || prefix_masks_);
  if (cls_rows_only_)
    for (int64_t b = 0; b < B_; ++b) {
      cls_pos_[b] = static_cast<int32_t>(b * T_);
      cls_rows_[b] = rows_ < N_ ? seq_offset_[b] : cls_pos_[b];
    }
  for (int64_t l = 0; l < top_; ++l) layer_forward(l);
  // The kept hidden states back to [B, T, C]: the heads and features read that layout (the [CLS]-row last
  // layer wrote its output there).
  if (rows_ < N_)
    for (int64_t l = 0; l <= top_; ++l)
      if (hidden_kept_[l] && !(cls_rows_only_ && l == top_))
        scatter_rows(hidden_[l], hidden_[l], real_rows_, rows_, N_, config_.hidden_size);
  logits_rows_ = 0;
  if (head_ == HeadKind::SEQUENCE_CLASSIFICATION)
    return classification_forward(batch.labels, loss_normalizer);
  if (head_ == HeadKind::MASKED_LM) return mlm_forward(batch.labels, loss_normalizer);
  if (head_ == HeadKind::REPLACED_TOKEN_DETECTION)
    return discriminator_forward(batch.labels, loss_normalizer);
  return 0.0f;
}

namespace {
// A gradient-sized buffer zeroed with each thread taking its share: one core's memset writes ~24 GB/s on the
// Zen 5 machines (18 ms for BERT-base's 440 MB), two cores 6.4 ms.
void zero_in_parallel(AlignedBuffer<float>& buf) {
  float* g = buf.data();
  const int64_t n = static_cast<int64_t>(buf.size());
  parallel_region(
      [&](const Team& team) {
        const auto [b, e] = team.share(0, n);
        std::memset(static_cast<void*>(g + b), 0, static_cast<size_t>(e - b) * sizeof(float));
      },
      n >= kParallelMinWork);
}
}  // namespace

void BertModel::zero_grad() {
  if (!ensure_grads()) zero_in_parallel(grads_);  // freshly allocated: already zero
}

void BertModel::backward() {
  if (!has_labels_ || !training_)
    throw Error("backward: the last forward had no labels or was not a training forward");
  if (is_int8())
    throw Error("backward: an int8-quantized model runs inference only (train the float model it came from)");
  if (arena_use_ != ArenaUse::TRAINING)
    throw Error(
        "backward: the model was reserved for inference (reserve(..., ArenaUse::TRAINING) keeps what the "
        "backward needs)");
  ensure_grads();
  float* d = grad_a_;
  float* other = grad_b_;
  if (head_ == HeadKind::SEQUENCE_CLASSIFICATION)
    classification_backward(d);
  else if (head_ == HeadKind::MASKED_LM)
    mlm_backward(d);
  else if (head_ == HeadKind::REPLACED_TOKEN_DETECTION)
    discriminator_backward(d);
  else
    throw Error("backward: a model without a task head has no loss");
  const bool classify = head_ == HeadKind::SEQUENCE_CLASSIFICATION;
  const std::vector<int64_t> ready = on_gradients_ready ? gradient_ready_offsets() : std::vector<int64_t>{};
  if (on_gradients_ready) on_gradients_ready(ready[0]);  // the head's parameters
  if (classify) feature_backward_into(d, top_);
  for (int64_t l = config_.num_hidden_layers - 1; l >= 0; --l) {
    if (l >= top_) {  // not run (skip_layers_above_features): no gradient reaches it
      if (on_gradients_ready) on_gradients_ready(ready[config_.num_hidden_layers - l]);
      continue;
    }
    layer_backward(l, d, other);
    if (on_gradients_ready) on_gradients_ready(ready[config_.num_hidden_layers - l]);
    std::swap(d, other);
    if (classify) feature_backward_into(d, l);  // features that read hidden[l] (other layers' [CLS], ...)
  }
  embeddings_backward(d);  // last: the tied MLM decoder also adds to the word embeddings, in the head's pass
  if (on_gradients_ready) on_gradients_ready(0);
}

void BertModel::select_head(int64_t k) {
  if (k < 0 || k >= num_heads())
    throw ShapeError("select_head: head " + std::to_string(k) + " of " + std::to_string(num_heads()));
  active_head_ = k;
  head_off_ = heads_[static_cast<size_t>(k)].offsets;
  config_.id2label = heads_[static_cast<size_t>(k)].id2label;
  config_.problem_type = heads_[static_cast<size_t>(k)].problem_type;
}

std::vector<std::string> BertModel::head_param_names(int64_t k) const {
  if (k < 0 || k >= num_heads())
    throw ShapeError("head_param_names: head " + std::to_string(k) + " of " + std::to_string(num_heads()));
  // A head's own parameters are "<its prefix>classifier.*" (BERT's pooler is the encoder's).
  const std::string own = heads_[static_cast<size_t>(k)].prefix + "classifier.";
  std::vector<std::string> out;
  for (const ParamEntry& e : table_.entries())
    if (e.name.rfind(own, 0) == 0) out.push_back(e.name);
  return out;
}

std::vector<int64_t> BertModel::gradient_ready_offsets() const {
  // The buffer holds the embeddings, layer 0 .. L-1, then the head (build_table's order); a layer's query
  // weight is its first entry.
  const int64_t L = config_.num_hidden_layers;
  std::vector<int64_t> out;
  int64_t head_begin = static_cast<int64_t>(table_.total_floats());
  for (const auto& e : table_.entries())
    if (e.depth == L + 1) head_begin = std::min(head_begin, static_cast<int64_t>(e.offset));
  out.push_back(head_begin);
  for (int64_t l = L - 1; l >= 0; --l) out.push_back(static_cast<int64_t>(layer_off_[l].qkv_w));
  out.push_back(0);
  return out;
}

}  // namespace bertfit

namespace bertfit {

void BertModel::begin_separate_grads() {
  ensure_grads();
  if (side_grads_.size() != grads_.size())
    side_grads_.resize(grads_.size());  // zeroed
  else
    zero_in_parallel(side_grads_);
  std::swap(grads_, side_grads_);
}

void BertModel::end_separate_grads() {
  std::swap(grads_, side_grads_);
  float* g = grads_.data();
  const float* s = side_grads_.data();
  const int64_t n = static_cast<int64_t>(grads_.size());
  // One addition per element: the bits do not depend on how threads split the elements.
  parallel_for(0, n, n >= kParallelMinWork, [&](int64_t i) { g[i] += s[i]; });
}

}  // namespace bertfit

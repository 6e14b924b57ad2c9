// BERT and RoBERTa encoders with their task heads, forward and backward by hand (no autograd).
//
// One object owns: the parameter table (HF names), the parameter / gradient buffers, and an activation arena
// sized by reserve(B, T) for the largest batch of the run. forward() and backward() allocate nothing.
//
// Data flow of one layer (post-LN, as HF BertLayer; N = B*T rows):
//   x ──► qkv = x Wqkv^T + bqkv                 (one GEMM: Q|K|V weights are adjacent in the buffer)
//         ctx = attention(qkv, mask)
//         res1 = x + dropout(ctx Wo^T + bo)      h1 = LN1(res1)
//         inter_pre = h1 W1^T + b1
//         res2 = h1 + dropout(gelu(inter_pre) W2^T + b2)     x' = LN2(res2)
// hidden[0] = dropout(LN(word + type + position embeddings)); hidden[l+1] = x' of layer l.
//
// What a layer keeps for its backward: qkv, res1, inter_pre, res2 and the LayerNorm statistics (no dropout
// mask is ever stored: masks are regenerated from counters). Everything else is recomputed, bit for bit, in
// the backward, trading ~3% of a BERT-base step for ~40% of its activation memory (measured in
// docs/benchmarks.md): the attention probabilities and ctx (per head, inside the attention backward), h1 =
// LN1(res1), the GELU output, and the hidden states between layers (x' = LN2(res2)) unless they are asked
// for (output_hidden_states) or read by the classifier's features.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/gemm_int8.h"
#include "backend/cpu/gemm_nt_small.h"
#include "bertfit/config.h"
#include "core/aligned_buffer.h"
#include "kernels/linear.h"
#include "model/features.h"
#include "model/param_table.h"

namespace bertfit {

enum class HeadKind {
  NONE,                     // BertModel / RobertaModel without pooler: hidden states only
  SEQUENCE_CLASSIFICATION,  // BertForSequenceClassification / RobertaForSequenceClassification
  MASKED_LM,  // BertForMaskedLM / RobertaForMaskedLM / ElectraForMaskedLM (decoder tied to the word
              // embeddings)
  REPLACED_TOKEN_DETECTION,  // ElectraForPreTraining: the discriminator, one logit per token
                             // (electra_heads.cpp)
};

// One batch, row-major [B, T]. token_type_ids may be null (all zero). labels: classification [B / chunks],
// masked LM [B*T] with kIgnoreIndex (-100) where no prediction is wanted; replaced-token detection [B*T]
// 1 = replaced / 0 = original (padding and kIgnoreIndex rows add nothing); null for inference.
// Hierarchical long-text classification: B = documents * chunks sequences, document d owning rows
// d*chunks .. d*chunks+chunks-1; chunk_mask[B] marks the real chunks (a document's unused chunk rows must
// still hold a valid sequence, e.g. [CLS] [SEP], and are left out of the pooling).
struct Batch {
  int64_t B = 0, T = 0;
  const int32_t* input_ids = nullptr;
  const int32_t* token_type_ids = nullptr;
  const uint8_t* attention_mask = nullptr;  // 1 = token, 0 = padding
  const int32_t* labels = nullptr;
  int64_t chunks = 1;
  const uint8_t* chunk_mask = nullptr;  // null: all chunks real
  // (Last, so positional initialisers of the fields above stay valid.) Classification with
  // config.problem_type multi_label_classification: [docs, num_labels] targets in {0, 1}; regression: [docs]
  // values. labels then only marks the documents that have a target (kIgnoreIndex: none).
  const float* targets = nullptr;
};

// What reserve() sizes the activation arena for. INFERENCE keeps nothing between layers (every layer reuses
// one set of buffers): a BERT-base forward at batch 32 x 128 needs ~150 MB instead of ~1.4 GB; backward()
// then refuses to run.
enum class ArenaUse { TRAINING, INFERENCE };

// Bytes the system can still give this process: MemAvailable of /proc/meminfo (0 when it cannot be read).
uint64_t available_memory_bytes();
// Throws ConfigError "<what> needs X GiB of memory, Y GiB available ...: it does not fit" when need_bytes >
// available_bytes (available 0: unknown, no check). reserve() calls it before allocating, so a batch too
// large for memory is an error that says so instead of std::bad_alloc or the kernel's OOM killer (the arena
// is zeroed, so overcommitted pages would be touched at once).
void check_memory_fits(uint64_t need_bytes, uint64_t available_bytes, const std::string& what);

class BertModel {
 public:
  // head_options choose the classifier's features and chunk pooling (features.h). RoBERTa always uses its own
  // head (dense-tanh-out_proj) on the chosen features; its POOLER means CLS (RoBERTa has no pooler).
  BertModel(const ModelConfig& config, HeadKind head, HeadOptions head_options = {});

  const ModelConfig& config() const { return config_; }
  HeadKind head() const { return head_; }
  const HeadOptions& head_options() const { return head_options_; }
  int64_t feature_dim() const { return feature_dim_; }
  const ParamTable& table() const { return table_; }
  // "bert", "roberta" or "electra": the prefix of the encoder's parameter names.
  const std::string& prefix() const { return prefix_; }

  // Multi-task fine-tuning (HeadOptions::extra_heads, train/multitask.h): head 0 is the model's own
  // classification head (HF's names), heads 1.. the extra ones. select_head(k) makes head k the one forward()
  // and backward() use, and config().id2label and config().problem_type its labels and problem type (so
  // num_labels(), the loss and everything reading the config follow it); the parameters of every head stay in
  // the one buffer. head_param_names(k): the table names of
  // head k's own parameters (BERT's pooler is shared, not among them); head_prefix(k) what precedes the HF
  // name.
  int64_t num_heads() const { return static_cast<int64_t>(heads_.size()); }
  int64_t active_head() const { return active_head_; }
  void select_head(int64_t k);
  const std::string& head_prefix(int64_t k) const { return heads_.at(static_cast<size_t>(k)).prefix; }
  const std::vector<std::string>& head_labels(int64_t k) const {
    return heads_.at(static_cast<size_t>(k)).id2label;
  }
  ProblemType head_problem_type(int64_t k) const { return heads_.at(static_cast<size_t>(k)).problem_type; }
  std::vector<std::string> head_param_names(int64_t k) const;

  // Both return the weights in HF's layout (unpacking the encoder's first, see pack_weights below).
  float* params() {
    unpack_weights();
    return params_.data();
  }
  const float* params() const {
    unpack_weights();
    return params_.data();
  }
  // The gradient buffer is allocated on the first zero_grad() / backward(): inference never pays for it
  // (440 MB for BERT-base). Null before that.
  float* grads() { return grads_.data(); }
  const float* grads() const { return grads_.data(); }
  size_t buffer_floats() const { return table_.total_floats(); }
  float* param(const std::string& name) {
    unpack_weights();
    return params_.data() + table_.at(name).offset;
  }
  float* grad(const std::string& name) {
    ensure_grads();
    return grads_.data() + table_.at(name).offset;
  }

  // HuggingFace's _init_weights: Linear and Embedding weights ~ normal(0, initializer_range), biases 0,
  // LayerNorm weight 1 / bias 0, embedding padding_idx rows 0. Only entries whose name satisfies `only`
  // (all when null) are initialised (a new task head on a pre-trained encoder).
  void init_weights(uint64_t seed, const std::vector<std::string>* only = nullptr);

  // Sizes the activation arena for batches up to max_B x max_T (max_T <= max_position_embeddings).
  // max_labelled_rows: masked-LM rows the head may see per batch (default: all max_B*max_T).
  // output_hidden_states (as HF's flag) is read here: set it before reserve(). Throws ConfigError (and
  // changes nothing) when the arena does not fit in the available memory (check_memory_fits).
  void reserve(int64_t max_B, int64_t max_T, int64_t max_labelled_rows = -1,
               ArenaUse use = ArenaUse::TRAINING);
  size_t arena_floats() const { return arena_.size(); }

  // Forward pass. training: dropout on (rates from the config), keyed by (dropout_seed, step).
  // Returns sum(loss over labelled rows) / loss_normalizer when labels are given (normalizer <= 0: the number
  // of labelled rows of this batch, i.e. the mean), else 0.
  float forward(const Batch& batch, bool training, uint64_t step = 0, float loss_normalizer = 0);
  // Backward of the last forward (which must have had labels): parameter gradients are ACCUMULATED.
  void backward();
  // Zeroes the gradients (allocating them on the first call), split among the threads (one core's memset
  // is 18 ms of a 1.7 s BERT-base step at batch 8 on the Zen 5 machines).
  void zero_grad();
  // Gradient accumulation with one rounding per micro-batch and element: between begin_separate_grads() and
  // end_separate_grads(), backward() accumulates into a zeroed side buffer, which the end then adds to the
  // gradients element by element. A step's gradient is then ((g_0 + g_1) + g_2) + ... of the micro-batches'
  // own gradients g_k (backward() alone adds some parameters' parts one by one: an embedding row per token,
  // the tied decoder and the word embeddings), which data-parallel ranks reproduce bit for bit by adding
  // theirs in rank order (docs/distributed.md). The side buffer (one more gradient buffer) stays allocated.
  void begin_separate_grads();
  void end_separate_grads();
  // Called by backward() each time the gradients of a suffix of the buffer, [offset, buffer_floats()), are
  // final for this backward: after the task head, after each encoder layer (top down), after the embeddings
  // (offset 0); the offsets are gradient_ready_offsets(). Data-parallel training starts reducing them while
  // the backward goes on (dist::BucketedReducer). Null: not called.
  std::function<void(int64_t offset)> on_gradients_ready;
  std::vector<int64_t> gradient_ready_offsets() const;

  // Outputs of the last forward. hidden_state(l), l = 0..L: [B, T, C] (l = 0 is the embedding output).
  // Layers 0 and L and those the classifier's features read are always kept; the others only with
  // output_hidden_states (hidden_state() throws for a layer that was not kept, and for one above
  // layers_run(): skip_layers_above_features). With last_layer_cls_only, layer layers_run() holds the [CLS]
  // rows only (zero elsewhere).
  const float* hidden_state(int64_t l) const;
  // Classification: [B / chunks, num_labels]. Masked LM: [M, V] for the M labelled rows, in row-major batch
  // order. Replaced-token detection: [B*T], one logit per token (padding rows included).
  const float* logits() const { return logits_; }
  int64_t logits_rows() const { return logits_rows_; }
  // Masked LM: the batch row (b*T + t) of each row of logits().
  const int32_t* labelled_rows() const { return mlm_index_; }

  uint64_t dropout_seed = 0;  // runs differ by seed; masks are a pure function of (seed, step, site, element)
  float label_smoothing = 0;  // classification loss: CrossEntropyLoss(label_smoothing=...), as HF's Trainer
  // The classification training objective's competition tricks (kernels/classification_loss.h), applied in
  // training forwards only: evaluation reports the plain (smoothed) cross-entropy, comparable across them.
  std::vector<float> class_weights;  // [num_labels]; empty: unweighted
  float focal_gamma = 0;             // > 0: focal loss
  float rdrop_alpha =
      0;  // > 0: R-Drop; a batch of D documents holds each twice (document d in rows d, d + D)
  // Multi-sample dropout on the classification head (Inoue 2019): the head runs this many times on the same
  // features with independent dropout masks; the loss is the mean of their losses, logits() their mean.
  int multi_sample_dropout = 1;
  bool output_hidden_states = false;  // keep every hidden state of a forward (costs N*C floats per layer)
  // Inference (forward with training = false) computes the encoder layers on the real tokens only, gathered
  // into consecutive rows: the linear layers, LayerNorm, GELU and residuals row by row, attention per
  // sequence on its own rows (attention_forward_varlen; a mask with padding before real tokens moves Q|K|V to
  // the padded [B, T] layout, padded rows zero, and back). Every real token gets the bits of the padded
  // computation (each row of a product is its own FMA chain: backend/cpu/gemm.h; the varlen attention keeps
  // the padded softmax's sums), so only the time changes: a batch of mixed lengths no longer pays for
  // padding. The kept hidden states are laid out [B, T, C] again after the last layer, zero at padded
  // positions (the padded computation left values there that no feature or head reads: the features read
  // [CLS] or mask-weighted tokens). Off: every position is computed (tests compare the two).
  bool padding_free_inference = true;
  // Sequence classification whose features read the last layer run only at [CLS] (every kind but
  // MEAN_TOKENS), without output_hidden_states: that layer computes K and V on every row (the [CLS] queries
  // attend to all keys) and the rest of the layer (attention output, FFN, residuals, LayerNorms) on the B
  // [CLS] rows only, in the forward and in the backward (cls_rows_layer.cpp); with last_layer_cls_query_only
  // (below) Q and attention too. Every row is its own computation in those steps (the products' FMA chains,
  // LayerNorm and dropout per row, the masks keyed by the [B, T] position), and the gradient of hidden[L] is
  // zero outside [CLS], so the logits, the loss and every gradient have the full layer's values (only a
  // zero's sign may differ) with fp32 products; with bf16 ones (matmul_precision), whose weight gradients
  // sum the rows in pairs, the rows dropped change the pairing and so the last bits of those weight
  // gradients. About 1/16 of BERT-base's products are skipped; with Q, 1/14 (and 1 - 1/T of that layer's
  // attention).
  // hidden_state(layers_run()) then holds the [CLS] rows, zero elsewhere.
  // Padding-free inference uses it when every sequence's position 0 is a real token. Off: every row (tests
  // compare the two).
  bool last_layer_cls_only = true;
  // With last_layer_cls_only: that layer's Q product and attention at the [CLS] queries too, the only ones
  // its [CLS] rows read (cls_rows_layer.cpp; the same values again). Off: Q and attention on every row (tests
  // compare the two).
  bool last_layer_cls_query_only = true;
  // Whether the last forward ran its last layer on the [CLS] rows only (what benchmarks count as executed).
  bool last_forward_cls_rows_only() const { return cls_rows_only_; }
  // ... and computed that layer's Q and attention at the [CLS] queries only (not with int8 weights, nor for
  // padding-free rows whose masks are not a prefix).
  bool last_forward_cls_query_only() const { return cls_query_only_; }
  // Sequence classification whose features read no layer above k (`layer` features, the paper's table 3),
  // without output_hidden_states: the layers above k are not run, forward or backward (they cannot change
  // the output, and their gradient is zero either way; AdamW still applies their weight decay).
  // hidden_state() of those layers then throws. The [CLS]-row option above applies to layer k's computing
  // layer. Off: every layer (tests compare the two).
  bool skip_layers_above_features = true;
  // The layers the last forward ran (hidden[0 .. layers_run()] are computed).
  int64_t layers_run() const { return top_; }
  // --bf16: the encoder layers' linear products (forward and backward) take bf16 operands with float
  // accumulation (backend/cpu/gemm_bf16.h); weights, gradients, LayerNorm, softmax, the heads and the loss
  // stay float.
  MatmulPrecision matmul_precision = MatmulPrecision::FP32;
  // Encoder weights packed in place for inference: when the arena is for inference (reserve(...,
  // ArenaUse::INFERENCE): predict, evaluate, serve, the benchmarks) and sized for so few rows (B x T) that
  // every encoder product runs on gemm_nt_small (linear_packs_pay: up to 192 rows for BERT-base, i.e. batch 1
  // at length 128), fp32, no int8 layers, an AVX-512 CPU, and shapes that keep the size (hidden and
  // intermediate sizes multiples of 48 and 6), forward() rearranges each layer's four weight matrices in
  // params() into gemm_nt_small's packed layout (one sequential stream per tile: the same bits, BERT-base at
  // batch 1 ~2.5% faster; no extra memory, ~0.13 s once) and multiplies them packed. Anything that reads or
  // writes the weights otherwise gets them back in HF's layout first: params() and param() (const or not),
  // init_weights, a reserve() that no longer qualifies, a forward with this off. A pointer taken from
  // params() before a forward packed them must not be used after it.
  bool pack_weights = true;
  bool weights_packed() const { return weights_packed_; }

  // Int8 inference (bertfit quantize; train/quantized_model.h): the int8 weights of each encoder layer's four
  // linear layers (Q|K|V fused as in the float buffer). Once set, forward() runs them through gemm_int8
  // (activations quantized per row at run time), the float copies of those weights are not read, and
  // backward() refuses. Embeddings, LayerNorm, attention softmax and the heads stay float.
  struct Int8Layer {
    Int8Weights qkv, attn_out, inter, out;
  };
  void set_int8_layers(std::vector<Int8Layer> layers);
  bool is_int8() const { return !int8_layers_.empty(); }

 private:
  // Allocates the (zeroed) gradient buffer if needed; true when it did.
  bool ensure_grads() {
    if (grads_.size() == table_.total_floats()) return false;
    grads_.resize(table_.total_floats());
    return true;
  }
  void build_table();
  void resolve_offsets();
  void plan_arena(int64_t B, int64_t T, int64_t M, ArenaUse use, bool allocate, size_t* total);
  void check_batch(const Batch& b) const;
  float dropout_p(float p) const { return training_ ? p : 0.0f; }
  // Dropout sites: 0 = embeddings, then three per layer (k = 0: attention probabilities, 1: attention output,
  // 2: FFN output), then the classification head (classification_head.cpp uses kHeadSite + k).
  static uint64_t layer_site(int64_t l, int k) { return 1 + 3 * static_cast<uint64_t>(l) + k; }
  uint64_t site_key(uint64_t site) const;

  void embeddings_forward();
  void embeddings_backward(const float* dhidden0);
  // Rows of the layers' row-wise work: N_, or the real tokens' count (padding-free inference), whose
  // positions in the [B, T] layout real_rows_ lists in order.
  void layer_forward(int64_t l);
  // One of a layer's linear layers on n rows: gemm_int8 when `q` is given, else linear_forward at
  // matmul_precision; ep's step fused into the product's epilogue.
  void encoder_linear(float* out, const float* inp, int64_t n, size_t w_off, size_t b_off, int64_t IC,
                      int64_t OC, const Int8Weights* q, const Epilogue& ep = {});
  // Output rows [row0, row0 + count) of an encoder linear layer [OC, IC] (its bias too) on n rows into out
  // (rows ld_out apart): the [CLS]-query layer's Q and K|V (packed: row0 a multiple of 48, the range ending
  // at OC or at a multiple of 48).
  void encoder_linear_rows(float* out, int64_t ld_out, const float* inp, int64_t n, size_t w_off,
                           size_t b_off, int64_t IC, int64_t OC, int64_t row0, int64_t count);
  // pack_weights: whether the current arena and settings qualify; the two rearrangements of params_.
  bool packing_wanted() const;
  void pack_weights_in_place();
  void unpack_weights() const;
  void layer_backward(int64_t l, const float* dout, float* dinp);
  // The two halves of layer_forward: Q|K|V and attention on the rows_ rows, returning ctx (in work_inter_ or
  // work_c_); then the rest of the layer on n rows of ctx and x (hidden[l] or its [CLS] rows) into out, its
  // dropout masks keyed by row drop_rows[i] of the [B, T] layout (null: row i).
  const float* attention_block_forward(int64_t l);
  void output_block_forward(int64_t l, int64_t n, const float* ctx, const float* x, float* out,
                            const int32_t* drop_rows);
  // layer_backward's steps from hidden[l+1]'s gradient (n rows of dout) back to the attention output: the
  // residual gradient reaching x into dres, the attention output dense's output gradient into dattn (n rows
  // each; dres may be dout, which is read first); h1 recomputed into h1; dropout masks as
  // output_block_forward's. Then the fused Q|K|V product's backward from dqkv, adding to dinp.
  void output_block_backward(int64_t l, int64_t n, const float* dout, float* dres, float* dattn, float* h1,
                             const int32_t* drop_rows);
  void qkv_backward(int64_t l, const float* dqkv, float* dinp);
  // The last layer on the [CLS] rows only (last_layer_cls_only; cls_rows_layer.cpp): whether this forward
  // does it (decided before the layers run), the rest of its forward after attention, and its backward.
  bool use_cls_rows_layer() const;
  void cls_rows_forward(int64_t l, const float* ctx);
  void cls_rows_backward(int64_t l, const float* dout, float* dinp);
  // The same layer with Q and attention at the [CLS] queries only as well (cls_query_only_): its whole
  // forward, and the backward's steps from the [CLS] rows' ctx gradient (cls_ctx_) down to dinp.
  void cls_query_layer_forward(int64_t l);
  void cls_query_backward(int64_t l, float* dinp);
  // hidden[l] (l >= 1) again from layer l-1's res2 and LN2 statistics, into out; returns hidden_[l] itself
  // when that layer was kept.
  const float* hidden_for_backward(int64_t l, float* out);
  float classification_forward(const int32_t* labels, float normalizer);
  void classification_backward(float* dlast);
  // Head sample s (multi-sample dropout; 0 without it) on the head input x: dropout masks of its own sites,
  // activations into cls_.drop1 / act / drop2, logits into `logits`. Its backward from dlogits into dx.
  void head_sample_forward(const float* x, int64_t s, float* logits);
  void head_sample_backward(int64_t s, const float* dlogits, float* dx);
  // Adds the classifier's feature gradient that flows into hidden[l] (after classification_backward).
  void feature_backward_into(float* dhidden, int64_t l);
  float mlm_forward(const int32_t* labels, float normalizer);
  void mlm_backward(float* dlast);
  // ELECTRA's discriminator (electra_heads.cpp): its parameter names, forward and backward.
  void add_discriminator_params(int depth);
  float discriminator_forward(const int32_t* labels, float normalizer);
  void discriminator_backward(float* dlast);

  // Offsets of each parameter in the buffers, resolved once so the step does no name look-ups.
  struct EmbeddingOffsets {
    size_t word, position, token_type, ln_w, ln_b;
    size_t proj_w = 0, proj_b = 0;  // ELECTRA's embeddings_project (projects_embeddings())
  };
  struct LayerOffsets {
    size_t qkv_w, qkv_b, attn_out_w, attn_out_b, ln1_w, ln1_b, inter_w, inter_b, out_w, out_b, ln2_w, ln2_b;
  };
  struct HeadOffsets {  // classification: dense = pooler / classifier.dense, out = classifier / out_proj
    size_t dense_w = 0, dense_b = 0, out_w = 0, out_b = 0, ln_w = 0, ln_b = 0, bias = 0, chunk_attention = 0;
  };
  float* P(size_t off) { return params_.data() + off; }
  float* G(size_t off) { return grads_.data() + off; }

  ModelConfig config_;
  HeadKind head_;
  HeadOptions head_options_;
  std::vector<int64_t> feature_layers_;
  int64_t feature_dim_ = 0;  // F: width of the features
  int64_t head_in_dim_ = 0;  // width entering the classifier (C after the pooler, else F)
  std::string prefix_;
  ParamTable table_;
  EmbeddingOffsets emb_off_{};
  std::vector<LayerOffsets> layer_off_;
  std::vector<Int8Layer> int8_layers_;
  HeadOffsets head_off_{};  // of the selected classification head (heads_[active_head_])
  struct ClassificationHead {
    std::string prefix;
    std::vector<std::string> id2label;
    HeadOffsets offsets;
    ProblemType problem_type = ProblemType::SINGLE_LABEL;
  };
  std::vector<ClassificationHead> heads_;  // sequence classification: the model's own, then extra_heads
  int64_t active_head_ = 0;
  AlignedBuffer<float> params_, grads_;
  mutable bool weights_packed_ = false;  // the encoder's linear weights in params_ are packed (pack_weights)
  AlignedBuffer<float> side_grads_;      // begin_separate_grads()

  // Arena and the views into it (valid for the reserved shape; the current batch uses a prefix of each).
  AlignedBuffer<float> arena_;
  AlignedBuffer<int32_t> int_arena_;
  int64_t max_B_ = 0, max_T_ = 0, max_M_ = 0;
  ArenaUse arena_use_ = ArenaUse::TRAINING;
  struct LayerActs {  // kept from forward to backward (see the data flow above)
    float *qkv, *res1, *mean1, *rstd1, *inter_pre, *res2, *mean2, *rstd2;
  };
  std::vector<LayerActs> layers_;
  std::vector<float*> hidden_;     // hidden state l, kept or in one of two rotating buffers
  std::vector<bool> hidden_kept_;  // decided in reserve(): see hidden_state()
  float *emb_sum_ = nullptr, *emb_mean_ = nullptr, *emb_rstd_ = nullptr;
  // ELECTRA with embeddings_project: the embeddings' output [N, E] (the projection's input) and its gradient.
  float *emb_out_ = nullptr, *emb_grad_ = nullptr;
  // Work buffers shared by all layers; their uses over a layer's forward and backward are listed in
  // layer_forward / layer_backward. work_inter_ holds N * max(I, 3C) floats, work_c_ and scratch_c_ N * C.
  float *work_inter_ = nullptr, *work_c_ = nullptr, *scratch_c_ = nullptr, *attn_scratch_ = nullptr;
  float *grad_a_ = nullptr, *grad_b_ = nullptr, *grad_c_ = nullptr;
  // Heads.
  float *head_in_ = nullptr, *head_pre_ = nullptr, *head_act_ = nullptr, *head_drop_ = nullptr;
  float *head_mean_ = nullptr, *head_rstd_ = nullptr, *head_grad_ = nullptr, *head_grad2_ = nullptr;
  float *logits_ = nullptr, *dlogits_ = nullptr, *row_loss_ = nullptr;
  // Classification head (classification_head.cpp): features -> [pooler] -> [chunk pooling] -> head.
  struct ClassifierActs {
    float *feat, *feat_grad, *pooled, *pooled_grad, *doc, *doc_grad, *drop1, *act, *drop2, *g1, *g2, *chunk_w;
    int32_t *argmax, *chunk_argmax;
  } cls_{};
  AlignedBuffer<int32_t> cls_int_arena_;
  // Multi-sample dropout: the samples of the last training forward, their loss gradients, and scratch (sized
  // on the first such forward; a few documents x labels).
  int64_t head_samples_ = 1;
  std::vector<float> msd_dlogits_, msd_logits_, msd_dx_;
  int64_t chunks_ = 1, docs_ = 0;
  const float* head_x_ = nullptr;
  std::vector<const float*> hidden_const_;  // sized once in reserve(); views of hidden_ for features_forward
  const uint8_t* chunk_mask_ = nullptr;
  AlignedBuffer<uint8_t> chunk_mask_arena_;
  const float* targets_ = nullptr;  // the last forward's Batch::targets
  int32_t *pos_ids_ = nullptr, *type_ids_ = nullptr, *ids_ = nullptr, *labels_ = nullptr,
          *mlm_index_ = nullptr;
  uint8_t* mask_ = nullptr;
  AlignedBuffer<uint8_t> mask_arena_;
  int32_t* real_rows_ = nullptr;  // padding-free inference: the real tokens' rows in [B, T], ascending
  int64_t rows_ = 0;              // rows of the layers' row-wise work in the last forward (layer_forward)
  // Padding-free inference: sequence b's first row among the real tokens' and its count of them; when every
  // sequence's mask is its real tokens then padding (prefix_masks_), attention runs on those rows directly
  // (attention_forward_varlen), else on the padded layout.
  int32_t *seq_offset_ = nullptr, *seq_len_ = nullptr;
  bool prefix_masks_ = true;
  // The last layer on the [CLS] rows (last_layer_cls_only): whether the last forward did it; sequence b's
  // [CLS] row among the rows_ rows (b * T, or its first real token's row when padding-free) and in the
  // [B, T] layout (b * T); that layer's [CLS]-row inputs, outputs and gradients ([B, C] each).
  bool cls_rows_only_ = false;
  // ... and that layer computed Q and attention at the [CLS] queries only (the [CLS] rows' outputs need no
  // other query): not with int8 weights (a packed fused Q|K|V matrix) nor for padding-free rows that
  // attention moves to the padded layout (masks that are not a prefix).
  bool cls_query_only_ = false;
  int64_t top_ = 0;  // layers the last forward ran (skip_layers_above_features)
  int32_t *cls_rows_ = nullptr, *cls_pos_ = nullptr;
  float *cls_x_ = nullptr, *cls_ctx_ = nullptr, *cls_out_ = nullptr, *cls_g_ = nullptr, *cls_g2_ = nullptr;

  // State of the last forward.
  int64_t B_ = 0, T_ = 0, N_ = 0, logits_rows_ = 0;
  bool training_ = false, has_labels_ = false;
  uint64_t step_ = 0;
};

}  // namespace bertfit

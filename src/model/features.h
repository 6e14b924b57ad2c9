// What the sequence classifier sees (the paper's "features from different layers", section 5.2 / table 3, and
// its hierarchical long-text methods, section 5.1 / table 2).
//
// Per sequence, from the encoder's hidden states h[0..L] ([B,T,C] each, h[0] = embeddings):
//   POOLER        tanh(W h[L][CLS] + b)               HF BertForSequenceClassification's default (BERT only)
//   CLS           h[L][CLS]                            RoBERTa's head input; BERT without the pooler
//   LAYER_CLS     h[k][CLS] of one layer k (1..L; 0 = embeddings)
//   LAST4_CONCAT  [h[L-3][CLS]; ...; h[L][CLS]]        F = 4C (the seed's "improvement 1")
//   LAST4_MEAN    mean of those four                   F = C
//   LAST4_MAX     elementwise max of those four        F = C (the paper's best, tied with the last layer)
//   ALL_CONCAT    [h[1][CLS]; ...; h[L][CLS]]          F = L*C
//   MEAN_TOKENS   mean of h[L] over the non-padded tokens
// Hierarchical (chunk pooling): a document is split into K chunks encoded as K sequences; their features are
// combined by MEAN, MAX or ATTENTION (softmax(w . f_i) weights over the document's valid chunks, w learned).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bertfit/config.h"

namespace bertfit {

constexpr int64_t kMaxChunks = 256;  // chunks per document (a 512-token chunk each: 130k tokens)

enum class FeatureKind {
  POOLER,
  CLS,
  LAYER_CLS,
  LAST4_CONCAT,
  LAST4_MEAN,
  LAST4_MAX,
  ALL_CONCAT,
  MEAN_TOKENS
};
enum class ChunkPooling { NONE, MEAN, MAX, ATTENTION };

// Multi-task fine-tuning (train/multitask.h): a classification head beside the model's own, with its own
// labels. Its parameters are the head's HuggingFace names after `prefix` ("multitask.topic." ->
// "multitask.topic.classifier.weight"); it reads the same features (BERT's pooler belongs to the encoder, as
// in HF's BertModel, and is shared). Each head has its own HF problem_type (its loss and outputs: a task of
// a multi-task run may be multi-label or regression while another is single-label).
struct ExtraHead {
  std::string prefix;
  std::vector<std::string> id2label;
  ProblemType problem_type = ProblemType::SINGLE_LABEL;
};

struct HeadOptions {
  FeatureKind features = FeatureKind::POOLER;
  int64_t layer = -1;  // LAYER_CLS: which hidden state (0..L); -1 = L
  ChunkPooling chunk_pooling = ChunkPooling::NONE;
  std::vector<ExtraHead> extra_heads{};  // sequence classification only; BertModel::select_head ({}: brace
                                         // initialisers of the fields before it need not name it)
};

FeatureKind parse_feature_kind(const std::string& name);  // "pooler", "cls", "layer", "last4-concat", ...
std::string feature_kind_name(FeatureKind kind);
ChunkPooling parse_chunk_pooling(const std::string& name);  // "none", "mean", "max", "attention"
std::string chunk_pooling_name(ChunkPooling p);

// Feature width F for hidden size C and L layers.
int64_t feature_dim(FeatureKind kind, int64_t C, int64_t L);
// The hidden states a feature reads, in concatenation order (POOLER and CLS read L).
std::vector<int64_t> feature_layers(FeatureKind kind, int64_t layer, int64_t L);

// f[B,F] from the hidden states (POOLER: the caller applies the pooler to the CLS feature). argmax[B*C]
// records which of the four layers won each LAST4_MAX element, for backward.
void features_forward(float* f, int32_t* argmax, const std::vector<const float*>& hidden, const uint8_t* mask,
                      int64_t B, int64_t T, int64_t C, FeatureKind kind, const std::vector<int64_t>& layers);
// Adds to dh (gradient of hidden[layer], [B,T,C]) the part of df[B,F] that flows into that layer.
void features_backward(float* dh, int64_t layer, const float* df, const int32_t* argmax, const uint8_t* mask,
                       int64_t B, int64_t T, int64_t C, FeatureKind kind, const std::vector<int64_t>& layers);

// Chunk pooling over D documents of K chunks: f[D*K, F] -> doc[D, F]; chunk_mask[D*K] marks real chunks (each
// document has at least one). argmax[D*F] (MAX) and weights[D*K] (ATTENTION) are saved for backward; w[F] is
// the attention vector (ATTENTION only).
void chunk_pool_forward(float* doc, int32_t* argmax, float* weights, const float* f,
                        const uint8_t* chunk_mask, const float* w, int64_t D, int64_t K, int64_t F,
                        ChunkPooling pooling);
// df[D*K, F] (written) and dw[F] (accumulated, ATTENTION) from ddoc[D, F].
void chunk_pool_backward(float* df, float* dw, const float* ddoc, const float* f, const int32_t* argmax,
                         const float* weights, const uint8_t* chunk_mask, const float* w, int64_t D,
                         int64_t K, int64_t F, ChunkPooling pooling);

}  // namespace bertfit

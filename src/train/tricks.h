// The competition tricks of `bertfit finetune` (issue 15) as settings: options named here, saved in
// training_args.json with the run's other settings, and turned into what implements them: the loss settings
// of the model's classification head (kernels/classification_loss.h, model/classification_head.cpp) and the
// training loop's step hooks (adversarial.h, ema.h). Each composes with the others and with layer features,
// chunk pooling, layer-wise rates, accumulation and resume.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/bert_model.h"
#include "train/training_loop.h"

namespace bertfit {

struct TrickArgs {
  // Losses.
  std::string
      class_weights;       // "": none; "auto": n / (K * count_c); else one weight per label, comma-separated
  double focal_gamma = 0;  // > 0: focal loss (not with label smoothing)
  double rdrop_alpha = 0;  // > 0: R-Drop, two dropout passes per document and alpha x their symmetric KL
  int64_t multi_sample_dropout =
      1;  // > 1: head dropout samples (at --classifier_dropout's rate), losses averaged
  // Adversarial training on the word embeddings.
  std::string adversarial = "none";  // none | fgm | pgd
  double adv_epsilon = 1.0;          // FGM: perturbation norm; PGD: ball radius
  double adv_alpha = 0.3;            // PGD: step norm
  int64_t adv_steps = 3;             // PGD: K
  // Weight averaging.
  double ema_decay = 0;  // > 0: evaluate and save the weights' EMA with this decay
  // Stratified k-fold cross-validation (cross_validation.h): k_folds >= 2 trains one model per fold; fold >=
  // 0 trains only that fold (what each fold of a cross-validation run is; its training_args.json reruns it).
  int64_t k_folds = 0;
  int64_t fold = -1;
  // Pseudo-labels (pseudo_labels.h): the rows of pseudo_label_data whose prediction in pseudo_label_file
  // is confident join the training data with their predicted label: probability >= the threshold
  // (single-label), every label's probability >= the threshold or <= 1 - it (multi-label), the ensemble's
  // std <= pseudo_label_max_std when that is > 0, else every row (regression).
  std::string pseudo_label_file;
  std::string pseudo_label_data;
  double pseudo_label_threshold = 0.95;
  double pseudo_label_max_std = 0;

  void to_json(nlohmann::ordered_json* j) const;
  // Throws ConfigError naming the option. label_smoothing: the run's (focal loss refuses it).
  void validate(double label_smoothing) const;
  // Documents per training micro-batch row group: 2 with R-Drop (each document is in the batch twice).
  int64_t rows_per_document() const { return rdrop_alpha > 0 ? 2 : 1; }
};

// The class weights for training data with these per-label counts (label ids in config.json's order): "auto"
// gives n / (K * count_c) (scikit-learn's "balanced"; an absent class gets 0), a list gives its values (one
// per label, each > 0), "" none. Throws ConfigError naming --class_weights.
std::vector<float> resolve_class_weights(const std::string& spec, const std::vector<int64_t>& counts,
                                         const std::vector<std::string>& labels);

// Sets the model's training-loss tricks (class weights resolved already).
void apply_loss_tricks(const TrickArgs& t, std::vector<float> class_weights, BertModel* model);

// The loop's step hooks the tricks need (adversarial training, then weight averaging).
std::vector<std::shared_ptr<StepHook>> make_trick_hooks(const TrickArgs& t);

// A line for the log naming the tricks in use ("" when none).
std::string describe_tricks(const TrickArgs& t);

}  // namespace bertfit

// Adversarial training on the word embeddings (issue 15), a step hook of the training loop:
//  - FGM (Miyato et al. 2017, as competitors write it): after the clean backward, the word-embedding matrix E
//    moves by r = epsilon * g / ||g|| (g: E's gradient of the step, ||.|| over the whole matrix), the step's
//    micro-batches run forward and backward again, their gradients ADD to the clean ones, and E is restored.
//  - PGD (Madry et al. 2018): K ascent steps E += alpha * g / ||g||, each followed by the projection of
//    E - E0 onto the ball of radius epsilon; g is the clean gradient for the first step and each adversarial
//    pass's own gradient for the next; the final gradients are the clean ones plus the last pass's.
// E is restored bit for bit (copied back, not subtracted). The adversarial passes reuse each micro-batch's
// dropout masks (its key), normalise by the step's loss items as the clean pass, and do not count in the
// logged loss. With gradient accumulation the perturbation follows the whole step's gradient.
#pragma once

#include <string>
#include <vector>

#include "train/training_loop.h"

namespace bertfit {

struct AdversarialOptions {
  enum class Kind { FGM, PGD };
  Kind kind = Kind::FGM;
  float epsilon = 1.0f;  // FGM: the perturbation's norm; PGD: the ball's radius
  float alpha = 0.3f;    // PGD: the norm of one ascent step
  int steps = 3;         // PGD: K
};

class AdversarialTraining : public StepHook {
 public:
  explicit AdversarialTraining(AdversarialOptions options) : o_(options) {}
  void after_backward(StepContext& ctx) override;
  // E_adv - E of the last adversarial pass of the last step (empty when the gradient was zero): for tests.
  const std::vector<float>& last_perturbation() const { return last_r_; }

 private:
  AdversarialOptions o_;
  std::vector<float> backup_, clean_grads_, last_r_;
};

}  // namespace bertfit

// Competition-trick settings and their wiring (tricks.h).
#include "train/tricks.h"

#include <cmath>
#include <sstream>

#include "bertfit/error.h"
#include "train/adversarial.h"
#include "train/ema.h"
#include "train/training_args.h"

namespace bertfit {

namespace {
void require(bool ok, const std::string& option, const std::string& why) {
  if (!ok) throw ConfigError("option --" + option + ": " + why);
}
}  // namespace

void TrickArgs::to_json(nlohmann::ordered_json* out) const {
  nlohmann::ordered_json& j = *out;
  BF_JSON_FIELDS(j, class_weights, focal_gamma, rdrop_alpha, multi_sample_dropout, adversarial, adv_epsilon,
                 adv_alpha, adv_steps, ema_decay, k_folds, fold, pseudo_label_file, pseudo_label_data,
                 pseudo_label_threshold, pseudo_label_max_std);
}

void TrickArgs::validate(double label_smoothing) const {
  require(focal_gamma >= 0 && std::isfinite(focal_gamma), "focal_gamma", "must be >= 0 (0: off)");
  require(focal_gamma == 0 || label_smoothing == 0, "focal_gamma",
          "focal loss does not combine with --label_smoothing_factor");
  require(rdrop_alpha >= 0 && std::isfinite(rdrop_alpha), "rdrop_alpha", "must be >= 0 (0: off)");
  require(multi_sample_dropout >= 1 && multi_sample_dropout <= 64, "multi_sample_dropout",
          "must be in [1, 64] (1: off)");
  check_choice("adversarial", adversarial, {"none", "fgm", "pgd"});
  require(adv_epsilon > 0 && std::isfinite(adv_epsilon), "adv_epsilon", "must be > 0");
  require(adv_alpha > 0 && std::isfinite(adv_alpha), "adv_alpha", "must be > 0");
  require(adv_steps >= 1 && adv_steps <= 100, "adv_steps", "must be in [1, 100]");
  require(ema_decay >= 0 && ema_decay < 1, "ema_decay", "must be in [0, 1) (0: off)");
  if (!class_weights.empty() && class_weights != "auto") resolve_class_weights(class_weights, {}, {});
}

std::vector<float> resolve_class_weights(const std::string& spec, const std::vector<int64_t>& counts,
                                         const std::vector<std::string>& labels) {
  if (spec.empty()) return {};
  const size_t K = counts.size();
  std::vector<float> w;
  if (spec == "auto") {
    int64_t n = 0;
    for (int64_t c : counts) n += c;
    for (int64_t c : counts)
      w.push_back(c > 0 ? static_cast<float>(static_cast<double>(n) / (static_cast<double>(K) * c)) : 0.0f);
    return w;
  }
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ') ++used;
    require(used == item.size() && used > 0 && v > 0 && std::isfinite(v), "class_weights",
            "\"" + item + "\" is not a positive number (expected auto or w0,w1,...)");
    w.push_back(static_cast<float>(v));
  }
  if (K > 0 && w.size() != K) {
    std::string names;
    for (const auto& l : labels) names += (names.empty() ? "" : ", ") + l;
    require(false, "class_weights",
            std::to_string(w.size()) + " weights for " + std::to_string(K) + " labels (" + names + ")");
  }
  return w;
}

void apply_loss_tricks(const TrickArgs& t, std::vector<float> class_weights, BertModel* model) {
  model->class_weights = std::move(class_weights);
  model->focal_gamma = static_cast<float>(t.focal_gamma);
  model->rdrop_alpha = static_cast<float>(t.rdrop_alpha);
  model->multi_sample_dropout = static_cast<int>(t.multi_sample_dropout);
}

std::vector<std::shared_ptr<StepHook>> make_trick_hooks(const TrickArgs& t) {
  std::vector<std::shared_ptr<StepHook>> hooks;
  if (t.adversarial != "none") {
    AdversarialOptions o;
    o.kind = t.adversarial == "pgd" ? AdversarialOptions::Kind::PGD : AdversarialOptions::Kind::FGM;
    o.epsilon = static_cast<float>(t.adv_epsilon);
    o.alpha = static_cast<float>(t.adv_alpha);
    o.steps = static_cast<int>(t.adv_steps);
    hooks.push_back(std::make_shared<AdversarialTraining>(o));
  }
  if (t.ema_decay > 0) hooks.push_back(std::make_shared<WeightAverage>(t.ema_decay));
  return hooks;
}

std::string describe_tricks(const TrickArgs& t) {
  std::string s;
  auto add = [&](const std::string& x) { s += (s.empty() ? "" : ", ") + x; };
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  if (!t.class_weights.empty()) add("class weights " + t.class_weights);
  if (t.focal_gamma > 0) add("focal loss gamma " + num(t.focal_gamma));
  if (t.rdrop_alpha > 0) add("R-Drop alpha " + num(t.rdrop_alpha));
  if (t.multi_sample_dropout > 1) add("multi-sample dropout x" + std::to_string(t.multi_sample_dropout));
  if (t.adversarial == "fgm") add("FGM epsilon " + num(t.adv_epsilon));
  if (t.adversarial == "pgd")
    add("PGD K " + std::to_string(t.adv_steps) + " alpha " + num(t.adv_alpha) + " epsilon " +
        num(t.adv_epsilon));
  if (t.ema_decay > 0) add("EMA decay " + num(t.ema_decay));
  return s.empty() ? "" : "tricks: " + s;
}

}  // namespace bertfit

// Learning-rate schedules exactly as HuggingFace's `get_scheduler` builds them (transformers
// optimization.py): a multiplier lambda(step) applied to each parameter group's base lr, as torch's LambdaLR
// does. Step counting as the HF Trainer: the lr used by optimizer step t (t = 0, 1, ...) is
// base_lr * lambda(t) (LambdaLR sets lambda(0) at construction and the Trainer calls scheduler.step() after
// each optimizer.step()). total_steps = the number of optimizer steps (after gradient accumulation).
//   linear:               t < w: t / max(1, w);  else max(0, (T - t) / max(1, T - w))
//   cosine:               t < w: t / max(1, w);  else max(0, 0.5 (1 + cos(pi * 2 c * p))), p = (t - w) /
//   max(1, T - w) constant:             1 constant_with_warmup: t < w: t / max(1, w);  else 1
// with w = warm-up steps, T = total steps, c = num_cycles (0.5: a half cosine from 1 to 0).
#pragma once

#include <cstdint>
#include <string>

namespace bertfit {

enum class ScheduleKind { LINEAR, COSINE, CONSTANT, CONSTANT_WITH_WARMUP };

// HF's names: "linear", "cosine", "constant", "constant_with_warmup"; throws ConfigError otherwise.
ScheduleKind parse_schedule_kind(const std::string& name);
std::string schedule_kind_name(ScheduleKind kind);

// Warm-up steps as TrainingArguments.get_warmup_steps: warmup_steps when > 0, else ceil(ratio * total_steps).
// Throws ConfigError for a negative value or a ratio outside [0, 1].
int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps);

class LrSchedule {
 public:
  // Throws ConfigError for total_steps < 1 (for schedules that decay), negative warm-up, or num_cycles <= 0.
  LrSchedule(ScheduleKind kind, int64_t total_steps, int64_t warmup_steps, double num_cycles = 0.5);
  double multiplier(int64_t step) const;
  double lr(double base_lr, int64_t step) const { return base_lr * multiplier(step); }
  ScheduleKind kind() const { return kind_; }
  int64_t total_steps() const { return total_; }
  int64_t warmup_steps() const { return warmup_; }

 private:
  ScheduleKind kind_;
  int64_t total_, warmup_;
  double num_cycles_;
};

}  // namespace bertfit
